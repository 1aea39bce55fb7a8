package registry_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/registry"
	"github.com/zoo-ml/zoo/sdk"
)

// TestBuildMatches: beside zoo, an unpinned Go binary is run only when it
// was built from zoo's module at zoo's revision, or at zoo's version when
// zoo has no revision.
func TestBuildMatches(t *testing.T) {
	const mod = "github.com/zoo-ml/zoo"
	rev := registry.Build{Module: mod, Version: "v0.0.0-20261130-1a877be02fb2", Revision: "1a877be02fb2"}
	tagged := registry.Build{Module: mod, Version: "v1.2.0"}
	devel := registry.Build{Module: mod, Version: "(devel)"}
	tests := []struct {
		name       string
		self, file registry.Build
		want       bool
	}{
		{"same revision", rev, rev, true},
		{"same revision, other version string", rev, registry.Build{Module: mod, Version: "v0.0.0-x+dirty", Revision: rev.Revision}, true},
		{"other revision", rev, registry.Build{Module: mod, Version: rev.Version, Revision: "ffff"}, false},
		{"no revision beside a zoo with one", rev, tagged, false},
		{"same tag", tagged, tagged, true},
		{"other tag", tagged, registry.Build{Module: mod, Version: "v1.1.0"}, false},
		{"both unstamped", devel, devel, true},
		{"a revision beside an unstamped zoo", devel, registry.Build{Module: mod, Version: "(devel)", Revision: "abc"}, false},
		{"other module", tagged, registry.Build{Module: "example.com/evil", Version: "v1.2.0"}, false},
		{"zoo without build info", registry.Build{}, registry.Build{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.self.Matches(tc.file); got != tc.want {
				t.Errorf("%+v.Matches(%+v) = %v, want %v", tc.self, tc.file, got, tc.want)
			}
		})
	}
}

// evil writes a shell script plugin into dir that leaves a marker file when
// it is executed, and returns the marker's path.
func evil(t *testing.T, dir, name string) string {
	t.Helper()
	marker := filepath.Join(t.TempDir(), "ran")
	script := "#!/bin/sh\ntouch " + marker + "\nexec " + filepath.Join(binDir, "zoo-plugin-two") + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return marker
}

// TestUnpinnedIsNeverRun: beside zoo, a script and a Go binary of another
// build are listed as unpinned with the command that pins them, and no
// registry call runs them; the pin command makes the script usable.
func TestUnpinnedIsNeverRun(t *testing.T) {
	noOrphans(t)
	exe := place(t, map[string]string{"zoo-plugin-two": "two", "zoo-plugin-oldminor": "oldminor"})
	marker := evil(t, exe, "zoo-plugin-evil")
	r, _ := newRegistry(t, exe)
	// A zoo of another revision: oldminor, a Go build of zoo's module at
	// this one's, is a stranger to it.
	self := r.Self
	r.Self = registry.Build{Module: self.Module, Version: self.Version, Revision: "0123456789ab"}
	ps, err := r.Discover()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.Pin != nil {
			t.Errorf("%s pinned (%s) beside a zoo of another revision", p.Name, p.PinFrom)
		}
	}
	r.Self = self
	ctx := context.Background()
	models, problems, err := r.Survey(ctx)
	if err != nil || len(models) != 3 || len(problems) != 1 {
		t.Fatalf("Survey: %d models, problems %v, %v", len(models), problems, err)
	}
	ue, ok := problems[0].Err.(*registry.UnpinnedError)
	if !ok || ue.Plugin.Name != "zoo-plugin-evil" || !strings.Contains(ue.Error(), "it is not a Go binary with build info") ||
		!strings.Contains(ue.Error(), "`zoo plugins install --in-place "+filepath.Join(exe, "zoo-plugin-evil")+"`") {
		t.Fatalf("problem = %v", problems[0].Err)
	}
	if _, _, err := r.Models(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Lookup(ctx, "nosuchmodel", true); err == nil {
		t.Fatal("Lookup of an unknown model succeeded")
	}
	if _, err := r.Launch(ctx, ue.Plugin); err == nil {
		t.Fatal("Launch ran an unpinned plugin")
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the unpinned script was executed")
	}
	// The advice works: pinned where it is, it is run.
	if _, _, err := r.Install(ctx, ue.Plugin.Path, true, nil); err != nil {
		t.Fatalf("%s: %v", ue.Plugin.PinCommand(), err)
	}
	ps, _ = r.Discover()
	for _, p := range ps {
		if p.Name == "zoo-plugin-evil" && p.PinFrom != registry.PinLock {
			t.Errorf("after the pin command: %+v", p)
		}
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the pinned script was not run by install: %v", err)
	}
}

// TestDescribeCache: the second lookup of a model starts no plugin; a
// corrupt entry is ignored and rewritten; a changed file is asked again; a
// failed Describe is remembered but not as good, and Survey asks again.
func TestDescribeCache(t *testing.T) {
	noOrphans(t)
	exe := place(t, map[string]string{"zoo-plugin-two": "two", "zoo-plugin-hang": "hang"})
	r, _ := newRegistry(t, exe)
	r.CallTimeout = time.Second
	ctx := context.Background()

	m, problems, err := r.Lookup(ctx, "beta", true)
	cold := m
	t.Cleanup(cold.Release) // a failed check below must not leave the plugin behind
	if err != nil || m.Info.Name != "Beta" || len(problems) != 1 || !strings.Contains(problems[0].Err.Error(), "did not answer Describe within 1s") {
		t.Fatalf("cold Lookup: %+v %v %v", m.Info.Name, problems, err)
	}
	c, err := r.Start(ctx, &m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	// The process that answered Describe is the one Start hands out.
	if _, _, err := c.Open(ctx, openAlpha); err != nil {
		t.Fatalf("Open on the kept plugin: %v", err)
	}
	c.Kill()
	m.Release()

	start := time.Now()
	m, problems, err = r.Lookup(ctx, "alpha", true)
	warm := m
	t.Cleanup(warm.Release)
	if err != nil || m.Info.Name != "Alpha" || len(problems) != 1 || !strings.Contains(problems[0].Err.Error(), "remembered from an earlier run") {
		t.Fatalf("warm Lookup: %+v %v %v", m.Info.Name, problems, err)
	}
	if took := time.Since(start); took >= time.Second {
		t.Errorf("warm Lookup took %v: it waited for the hung plugin", took)
	}
	m.Release()
	entries, _ := filepath.Glob(filepath.Join(r.Home, "cache", "describe", "*.json"))
	if len(entries) != 2 {
		t.Fatalf("cache entries %v, want one for each plugin", entries)
	}
	// Survey asks the hung plugin again.
	_, problems, _ = r.Survey(ctx)
	if len(problems) != 1 || strings.Contains(problems[0].Err.Error(), "remembered") {
		t.Errorf("Survey problems %v, want the hung plugin asked again", problems)
	}

	// A corrupt entry is ignored and rewritten.
	ps, _ := r.Discover()
	var two registry.Plugin
	for _, p := range ps {
		if p.Name == "zoo-plugin-two" {
			two = p
		}
	}
	entry := filepath.Join(r.Home, "cache", "describe", hexOf(two.Pin)+".json")
	if err := os.WriteFile(entry, []byte(`{"format":1,"models":[{"Name":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, _, err := r.Lookup(ctx, "alpha", false); err != nil || m.Info.Name != "Alpha" {
		t.Fatalf("Lookup over a corrupt entry: %v", err)
	}
	var e map[string]any
	if b, _ := os.ReadFile(entry); json.Unmarshal(b, &e) != nil || e["models"] == nil {
		t.Errorf("corrupt entry not rewritten: %s", b)
	}

	// Another file under the same name is asked, not looked up by name.
	os.Remove(filepath.Join(exe, "zoo-plugin-two"))
	if err := os.Link(filepath.Join(binDir, "zoo-plugin-oldminor"), filepath.Join(exe, "zoo-plugin-two")); err != nil {
		t.Fatal(err)
	}
	if m, _, err := r.Lookup(ctx, "oldie", false); err != nil || m.Info.Name != "Oldie" {
		t.Fatalf("Lookup after the file changed: %+v %v", m.Info.Name, err)
	}
	if _, _, err := r.Lookup(ctx, "alpha", false); err == nil {
		t.Error("Alpha still found after its plugin was replaced")
	}
}

var openAlpha = sdk.OpenRequest{Model: "Alpha", Mode: sdk.ModeInfer}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// TestRememberedFailureIsRetried: a failure the cache remembers (say a
// timeout under load) does not make a model unknown for good: when no
// other plugin serves the model, the plugin is asked again.
func TestRememberedFailureIsRetried(t *testing.T) {
	noOrphans(t)
	r, _ := newRegistry(t, place(t, map[string]string{"zoo-plugin-two": "two"}))
	ps, err := r.Discover()
	if err != nil || len(ps) != 1 {
		t.Fatalf("Discover: %v %v", ps, err)
	}
	entry := filepath.Join(r.Home, "cache", "describe", hexOf(ps[0].Pin)+".json")
	os.MkdirAll(filepath.Dir(entry), 0o755)
	bad := fmt.Sprintf(`{"format":%d,"host_protocol_minor":%d,"sha256":%q,"error":"plugin zoo-plugin-two: describe: it was too slow once"}`,
		1, sdk.ProtocolMinor, hexOf(ps[0].Pin))
	if err := os.WriteFile(entry, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, problems, _ := r.Models(context.Background())
	if len(problems) != 1 || !strings.Contains(problems[0].Err.Error(), "too slow once (remembered from an earlier run") {
		t.Fatalf("Models problems %v, want the remembered failure", problems)
	}
	m, problems, err := r.Lookup(context.Background(), "alpha", false)
	if err != nil || m.Info.Name != "Alpha" || len(problems) != 0 {
		t.Fatalf("Lookup: %q %v %v", m.Info.Name, problems, err)
	}
	if _, problems, _ := r.Models(context.Background()); len(problems) != 0 {
		t.Errorf("the good answer was not cached: %v", problems)
	}
}

// TestCacheOfAnotherProtocolMinorIgnored: an entry written by a zoo of
// another protocol minor may lack fields this zoo's sdk.ModelInfo has, so
// it is asked again rather than trusted.
func TestCacheOfAnotherProtocolMinorIgnored(t *testing.T) {
	noOrphans(t)
	r, _ := newRegistry(t, place(t, map[string]string{"zoo-plugin-two": "two"}))
	ps, err := r.Discover()
	if err != nil || len(ps) != 1 {
		t.Fatalf("Discover: %v %v", ps, err)
	}
	entry := filepath.Join(r.Home, "cache", "describe", hexOf(ps[0].Pin)+".json")
	os.MkdirAll(filepath.Dir(entry), 0o755)
	old := fmt.Sprintf(`{"format":%d,"host_protocol_minor":%d,"sha256":%q,"models":[{"name":"Ghost"}]}`,
		1, sdk.ProtocolMinor+1, hexOf(ps[0].Pin))
	if err := os.WriteFile(entry, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Lookup(context.Background(), "ghost", false); err == nil {
		t.Fatal("a cache entry of another protocol minor was trusted")
	}
	if m, _, err := r.Lookup(context.Background(), "alpha", false); err != nil || m.Info.Name != "Alpha" {
		t.Fatalf("Lookup alpha: %q %v", m.Info.Name, err)
	}
}
