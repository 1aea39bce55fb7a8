package main_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// evilScript writes into dir a shell script named name that leaves a marker
// file when it is executed (then runs zoo-plugin-two, so that once pinned it
// is a working plugin), and returns the marker's path.
func evilScript(t *testing.T, dir, name string) string {
	t.Helper()
	marker := filepath.Join(t.TempDir(), name+".ran")
	script := "#!/bin/sh\ntouch " + marker + "\nexec " + filepath.Join(binDir, "zoo-plugin-two") + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return marker
}

func ran(marker string) bool {
	_, err := os.Stat(marker)
	return err == nil
}

var pinCommandRE = regexp.MustCompile("`(zoo plugins install [^`]*)`")

// runAdvice runs the first `zoo plugins install ...` command msg advises,
// with zoo of dir and that environment.
func runAdvice(t *testing.T, dir string, env []string, msg string) result {
	t.Helper()
	m := pinCommandRE.FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("no `zoo plugins install` command in:\n%s", msg)
	}
	args := strings.Fields(m[1])[1:]
	return zooAt(t, dir, env, args...)
}

// TestUnpinnedBesideZooNeverRuns: beside a zoo built with plain `go build`
// (as `go install` builds it, no pins), zoo's own plugins run, while a
// shell script and a Go binary of another module are never executed by
// list, run, info, weights list or plugins list: they are listed as
// unpinned with the command that pins them, and that command works.
func TestUnpinnedBesideZooNeverRuns(t *testing.T) {
	echo := filepath.Join(t.TempDir(), "zoo-plugin-echo")
	build := exec.Command("go", "build", "-o", echo, ".")
	build.Dir = filepath.Join("..", "..", "examples", "zoo-plugin-echo")
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/zoo-plugin-echo: %v\n%s", err, out)
	}
	dir := bundle(t, map[string]string{"zoo-plugin-two": "zoo-plugin-two"})
	if err := os.Link(echo, filepath.Join(dir, "zoo-plugin-echo")); err != nil {
		t.Fatal(err)
	}
	marker := evilScript(t, dir, "zoo-plugin-evil")
	pathDir := t.TempDir()
	pathMarker := evilScript(t, pathDir, "zoo-plugin-pathevil")
	env := []string{"ZOO_HOME=" + t.TempDir(), "ZOO_PLUGIN_PATH=" + pathDir}
	save := t.TempDir()

	r := zooAt(t, dir, env, "list")
	if r.code != 0 || !strings.Contains(r.stdout, "Alpha") || strings.Contains(r.stdout, "Echo") {
		t.Errorf("zoo list: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"unpinned: zoo-plugin-evil (" + filepath.Join(dir, "zoo-plugin-evil") + ") was not run: it is not a Go binary with build info; to trust it, run `zoo plugins install --in-place " + filepath.Join(dir, "zoo-plugin-evil") + "`",
		"unpinned: zoo-plugin-echo (" + filepath.Join(dir, "zoo-plugin-echo") + ") was not run: it was built from module example.com/zoo-plugin-echo, not zoo's github.com/zoo-ml/zoo",
		"unpinned: zoo-plugin-pathevil (" + filepath.Join(pathDir, "zoo-plugin-pathevil") + ") was not run: a plugin outside zoo's own directory must be pinned",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("zoo list does not say\n%s\nstderr:\n%s", want, r.stderr)
		}
	}
	for _, args := range [][]string{
		{"run", "alpha", "train", "--epoch", "1", "--save_dir", save},
		{"run", "alpha", "infer", "--save_dir", save},
		{"info", "alpha"},
		{"weights", "list"},
		{"plugins", "list"},
		{"run", "nosuchmodel", "infer"},
	} {
		r := zooAt(t, dir, env, args...)
		if args[1] != "nosuchmodel" && r.code != 0 {
			t.Errorf("zoo %v: %d\n%s", args, r.code, r.stderr)
		}
	}
	if ran(marker) || ran(pathMarker) {
		t.Fatalf("an unpinned plugin was executed (beside zoo: %v, in ZOO_PLUGIN_PATH: %v)", ran(marker), ran(pathMarker))
	}
	r = zooAt(t, dir, env, "plugins", "list")
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`zoo-plugin-two +bundled +[0-9a-f]{12} \(same build\)`),
		regexp.MustCompile(`zoo-plugin-evil +bundled +unpinned, not run`),
	} {
		if !want.MatchString(r.stdout) {
			t.Errorf("zoo plugins list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = zooAt(t, dir, env, "info", "alpha")
	if !strings.Contains(r.stdout, "(beside zoo, built from zoo's module at zoo's version)") {
		t.Errorf("zoo info alpha does not say how the plugin is trusted:\n%s", r.stdout)
	}

	// The advised command pins the script where it is; zoo then runs it
	// (it sorts before zoo-plugin-two, so it serves Alpha).
	r = zooAt(t, dir, env, "list")
	if a := runAdvice(t, dir, env, r.stderr[strings.Index(r.stderr, "unpinned: zoo-plugin-evil"):]); a.code != 0 {
		t.Fatalf("the advised pin command failed: %d\n%s", a.code, a.stderr)
	}
	os.Remove(marker)
	r = zooAt(t, dir, env, "run", "alpha", "train", "--epoch", "1", "--save_dir", t.TempDir())
	if r.code != 0 || !ran(marker) {
		t.Errorf("the pinned script does not serve Alpha: %d, ran %v\n%s", r.code, ran(marker), r.stderr)
	}
}

// TestTamperedBundledPluginAdvice: a plugin `make` pinned into zoo that has
// changed is refused with a command to trust it, and that command works.
func TestTamperedBundledPluginAdvice(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(binDir, "zoo-plugin-two"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "zoo"), "-ldflags",
		"-X github.com/zoo-ml/zoo/registry.bundledPins=zoo-plugin-two="+hex.EncodeToString(sum[:]), "./cmd/zoo")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build a pinned zoo: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo-plugin-two"), append(b, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"ZOO_HOME=" + t.TempDir()}
	r := zooAt(t, dir, env, "run", "alpha", "train", "--epoch", "1", "--save_dir", t.TempDir())
	oneLineError(t, r, 1, "zoo-plugin-two changed since it was pinned")
	// A copy in $ZOO_HOME/plugins (the old advice) is shadowed, and install
	// says so.
	c := zooAt(t, dir, env, "plugins", "install", filepath.Join(dir, "zoo-plugin-two"))
	if c.code != 0 || !strings.Contains(c.stderr, "note: zoo uses "+filepath.Join(dir, "zoo-plugin-two")+", found first, not this copy") {
		t.Errorf("install of a shadowed copy: %d\n%s", c.code, c.stderr)
	}
	if a := runAdvice(t, dir, env, r.stderr); a.code != 0 {
		t.Fatalf("the advised command failed: %d\n%s", a.code, a.stderr)
	}
	r = zooAt(t, dir, env, "run", "alpha", "train", "--epoch", "1", "--save_dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("after the advised command, run still fails: %d\n%s", r.code, r.stderr)
	}
	r = zooAt(t, dir, env, "plugins", "list")
	if !strings.Contains(r.stdout, "(lock)") {
		t.Errorf("zoo plugins list after pinning:\n%s", r.stdout)
	}
}

// TestHungPluginDoesNotSlowOthers: once a hung plugin beside zoo has cost
// its timeout, commands about other models do not start it again.
func TestHungPluginDoesNotSlowOthers(t *testing.T) {
	dir := bundle(t, map[string]string{"zoo-plugin-two": "zoo-plugin-two", "zoo-plugin-hang": "broken-hang"})
	home := "ZOO_HOME=" + t.TempDir()
	save := t.TempDir()
	// The first command pays the (short) timeout once.
	r := zooAt(t, dir, []string{home, "ZOO_PLUGIN_TIMEOUT=2s"}, "run", "alpha", "train", "--epoch", "1", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stderr, "plugin zoo-plugin-hang: describe: plugin zoo-plugin-hang did not answer") {
		t.Fatalf("first run beside a hung plugin: %d\n%s", r.code, r.stderr)
	}
	// The hang plugin would now hold each command for 60 s.
	slow := []string{home, "ZOO_PLUGIN_TIMEOUT=60s"}
	for _, args := range [][]string{
		{"run", "alpha", "test", "--save_dir", save},
		{"info", "beta"},
		{"weights", "list"},
	} {
		start := time.Now()
		r := zooAt(t, dir, slow, args...)
		took := time.Since(start)
		if r.code != 0 {
			t.Errorf("zoo %v: %d\n%s", args, r.code, r.stderr)
		}
		if took > 30*time.Second {
			t.Errorf("zoo %v took %v beside a hung plugin (ZOO_PLUGIN_TIMEOUT=60s)", args, took)
		}
	}
}

var startingRE = regexp.MustCompile(`starting plugin: path=(\S+)`)

// starts lists the plugin executables a zoo run at debug level started.
func starts(r result) []string {
	var out []string
	for _, m := range startingRE.FindAllStringSubmatch(r.stderr, -1) {
		out = append(out, filepath.Base(m[1]))
	}
	return out
}

// TestRunStartsOnePlugin: `zoo run MODEL` starts its plugin once, the
// process that answered Describe also runs the session; with the describe
// cache warm it starts no other plugin.
func TestRunStartsOnePlugin(t *testing.T) {
	dir := bundle(t, map[string]string{"zoo-plugin-two": "zoo-plugin-two", "zoo-plugin-crash": "zoo-plugin-crash", "zoo-plugin-oldminor": "zoo-plugin-oldminor"})
	env := []string{"ZOO_HOME=" + t.TempDir()}
	save := t.TempDir()
	r := zooAt(t, dir, env, "--log-level", "debug", "run", "alpha", "train", "--epoch", "1", "--save_dir", save)
	if r.code != 0 {
		t.Fatalf("cold run: %d\n%s", r.code, r.stderr)
	}
	n := 0
	for _, s := range starts(r) {
		if s == "zoo-plugin-two" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("cold cache: zoo-plugin-two started %d times, want 1 (all starts: %v)", n, starts(r))
	}
	r = zooAt(t, dir, env, "--log-level", "debug", "run", "alpha", "train", "--epoch", "1", "--save_dir", t.TempDir())
	if got := strings.Join(starts(r), " "); r.code != 0 || got != "zoo-plugin-two" {
		t.Errorf("warm cache: started %q, want only zoo-plugin-two once (exit %d)\n%s", got, r.code, r.stderr)
	}
}
