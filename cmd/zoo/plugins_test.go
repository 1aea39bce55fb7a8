package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/sdk"
)

// bundle makes a directory holding zoo and the named built plugins, as a
// zoo installed with those plugins beside it.
func bundle(t *testing.T, plugins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	link := func(from, to string) {
		if err := os.Link(filepath.Join(binDir, from), filepath.Join(dir, to)); err != nil {
			t.Fatal(err)
		}
	}
	link("zoo", "zoo")
	for as, built := range plugins {
		link(built, as)
	}
	return dir
}

// TestHungPlugin: a plugin that never answers Describe costs
// ZOO_PLUGIN_TIMEOUT, then `zoo list` names it and what to do, still lists
// the other plugins' models, and exits 1; `zoo plugins install` refuses it.
func TestHungPlugin(t *testing.T) {
	dir := bundle(t, map[string]string{"zoo-plugin-two": "zoo-plugin-two", "zoo-plugin-hang": "broken-hang"})
	r := zooAt(t, dir, []string{"ZOO_PLUGIN_TIMEOUT=1s"}, "list")
	oneLineError(t, r, 1, "plugin zoo-plugin-hang did not answer Describe within 1s: it hangs, or is slower than ZOO_PLUGIN_TIMEOUT allows")
	if !strings.Contains(r.stdout, "Alpha") {
		t.Errorf("the working plugin's models are not listed:\n%s", r.stdout)
	}
	// `zoo run` of another model is not held up past the timeout either.
	r = zooAt(t, dir, []string{"ZOO_PLUGIN_TIMEOUT=1s"}, "run", "alpha", "train", "--epoch", "1", "--save_dir", t.TempDir())
	if r.code != 0 {
		t.Errorf("run alpha beside a hung plugin: %d\n%s", r.code, r.stderr)
	}
	r = zoo(t, []string{"ZOO_PLUGIN_TIMEOUT=1s"}, "plugins", "install", filepath.Join(dir, "zoo-plugin-hang"))
	if r.code == 0 || !strings.Contains(r.stderr, "did not answer Describe within 1s") {
		t.Errorf("install of a hung plugin: %d\n%s", r.code, r.stderr)
	}
	r = zoo(t, []string{"ZOO_PLUGIN_TIMEOUT=soon"}, "list")
	oneLineError(t, r, 1, "ZOO_PLUGIN_TIMEOUT=soon: want a positive duration")
}

// TestDuplicateModelName: a second plugin serving Alpha and Beta loses to
// the first found, and `zoo list` says which serves the model.
func TestDuplicateModelName(t *testing.T) {
	dir := bundle(t, map[string]string{"zoo-plugin-two": "zoo-plugin-two", "zoo-plugin-two2": "zoo-plugin-two"})
	// zoo-plugin-two sorts before zoo-plugin-two2 in the same directory.
	r := zooAt(t, dir, nil, "list")
	if r.code != 0 {
		t.Fatalf("zoo list: %d\n%s", r.code, r.stderr)
	}
	want := "note: Alpha is also served by zoo-plugin-two2 (" + filepath.Join(dir, "zoo-plugin-two2") + "); zoo uses zoo-plugin-two (" + filepath.Join(dir, "zoo-plugin-two") + "), found first"
	if !strings.Contains(r.stderr, want) {
		t.Errorf("zoo list does not say who wins:\nwant %s\nstderr: %s", want, r.stderr)
	}
	if strings.Count(r.stdout, "Alpha") != 1 || !strings.Contains(r.stdout, "Alpha  zoo-plugin-two ") {
		t.Errorf("zoo list shows Alpha other than once, from zoo-plugin-two:\n%s", r.stdout)
	}
	r = zooAt(t, dir, nil, "list", "--json")
	if !strings.Contains(r.stdout, `"shadowed": [`) || !strings.Contains(r.stdout, "zoo-plugin-two2 (") {
		t.Errorf("zoo list --json lacks shadowed:\n%s", r.stdout)
	}
}

// TestOlderMinorPlugin: a plugin reporting protocol 1.0 is listed, `zoo
// info` says what it lacks, and it runs.
func TestOlderMinorPlugin(t *testing.T) {
	r := zoo(t, nil, "info", "oldie")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("protocol: 1.0 (older than zoo's 1.%d: no a built-in default job", sdk.ProtocolMinor)) {
		t.Errorf("zoo info oldie: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	save := t.TempDir()
	r = zoo(t, nil, "run", "oldie", "infer", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "sample0: yes (0.7500)") {
		t.Fatalf("zoo run oldie infer: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
