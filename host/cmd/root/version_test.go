package root

import (
	"runtime/debug"
	"testing"
)

func TestVersionOf(t *testing.T) {
	t.Parallel()
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	tests := []struct {
		name   string
		linked string
		bi     *debug.BuildInfo
		want   string
	}{
		{"make build", "v0.2.0-3-gc078884-dirty", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "v0.2.0-3-gc078884-dirty"},
		{"go install @version", "dev", &debug.BuildInfo{Main: debug.Module{Path: "github.com/zoo-ml/zoo", Version: "v0.2.0"}}, "v0.2.0"},
		{"go build in a checkout", "dev", &debug.BuildInfo{
			Main:     debug.Module{Version: "v0.2.1-0.20261130035200-c078884abcde+dirty"},
			Settings: vcs("vcs", "git", "vcs.revision", "c078884abcdef0123456789abcdef0123456789a", "vcs.time", "2026-11-30T03:52:00Z", "vcs.modified", "true"),
		}, "v0.2.1-0.20261130035200-c078884abcde+dirty (revision c078884abcdef0123456789abcdef0123456789a, modified, 2026-11-30T03:52:00Z)"},
		{"clean checkout, older go", "dev", &debug.BuildInfo{
			Main:     debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "c078884abcdef0123456789abcdef0123456789a", "vcs.modified", "false"),
		}, "(devel) (revision c078884abcdef0123456789abcdef0123456789a)"},
		{"-buildvcs=false", "dev", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "dev"},
		{"no build info", "dev", nil, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := versionOf(tt.linked, tt.bi); got != tt.want {
				t.Errorf("versionOf = %q, want %q", got, tt.want)
			}
		})
	}
}
