package shareddata

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "zoo")
	other := filepath.Join(tmp, "elsewhere", "zoo")
	for _, d := range []string{repo, other, filepath.Join(tmp, "shared", "data"), filepath.Join(tmp, "mine")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, env, root string
		want, wantErr   string
	}{
		{"beside the repository", "", repo, filepath.Join(tmp, "shared", "data"), ""},
		{"env wins", filepath.Join(tmp, "mine"), repo, filepath.Join(tmp, "mine"), ""},
		{"env missing", filepath.Join(tmp, "nope"), repo, "", "ZOO_SHARED_DATA=" + filepath.Join(tmp, "nope")},
		// A checkout with nothing beside it fails, whatever this machine
		// holds elsewhere: no fixed absolute fallback.
		{"nothing beside", "", other, "", "shared test data not found at " + filepath.Join(tmp, "elsewhere", "shared", "data") + " (beside the repository): set ZOO_SHARED_DATA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := find(tt.env, tt.root)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("find = %q, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("find = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
