package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExamplePluginOutsideModule builds examples/zoo-plugin-echo, a module
// of its own that imports only zoo's sdk, installs it with `zoo plugins
// install`, and runs it through `zoo list`, `zoo info` and `zoo run`.
func TestExamplePluginOutsideModule(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "zoo-plugin-echo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "examples", "zoo-plugin-echo")
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/zoo-plugin-echo: %v\n%s", err, out)
	}
	home := []string{"ZOO_HOME=" + t.TempDir()}
	r := zoo(t, home, "plugins", "install", bin)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "Echo") {
		t.Fatalf("install: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "list")
	if r.code != 0 || !strings.Contains(r.stdout, "Echo    zoo-plugin-echo") || !strings.Contains(r.stdout, "ResNet") {
		t.Fatalf("list: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	save := t.TempDir()
	r = zoo(t, home, "run", "Echo", "infer", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "hello: odd (0.7500)") || !strings.Contains(r.stderr, "Echo, confidence 0.75") {
		t.Fatalf("run Echo infer: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	list := filepath.Join(t.TempDir(), "lines.txt")
	os.WriteFile(list, []byte("abc 1\nabcd 1\nno label here\n"), 0o644)
	r = zoo(t, home, "run", "Echo", "test", "--filelist", list, "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "top1_acc: 50.00") || !strings.Contains(r.stderr, "lines.txt:3") {
		t.Fatalf("run Echo test: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "Echo", "infer", "--save_dir", save, "--set", "MODEL.confidence=2")
	oneLineError(t, r, 1, "MODEL.confidence 2: want a value in (0.5, 1]")
}
