package main_test

// Writing a plugin (issue 12): install in one step, flags that never
// vanish, failures that point at their cause, a host that checks what
// plugins send, and signals that never hang zoo, with
// internal/testplugins/rude and the examples as real subprocesses.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	rudeOnce sync.Once
	rudeErr  error
)

// rude builds internal/testplugins/rude into binDir as broken-rude (not
// a zoo-plugin- name, so other tests never see it) and returns its path.
func rude(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "broken-rude")
	rudeOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", path, "./internal/testplugins/rude")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			rudeErr = fmt.Errorf("build rude: %v\n%s", err, out)
		}
	})
	if rudeErr != nil {
		t.Fatal(rudeErr)
	}
	return path
}

// rudeCopy copies the rude plugin to a directory of its own as
// zoo-plugin-rude, outside zoo's.
func rudeCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(rude(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "zoo-plugin-rude")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestInstallInPlaceRuns: `zoo plugins install --in-place PATH` is the one
// step that makes a plugin listed and runnable, with no ZOO_PLUGIN_PATH.
func TestInstallInPlaceRuns(t *testing.T) {
	path := rudeCopy(t)
	home := []string{"ZOO_HOME=" + t.TempDir()}
	r := zoo(t, home, "plugins", "install", "--in-place", path)
	if r.code != 0 {
		t.Fatalf("install --in-place: %d\n%s", r.code, r.stderr)
	}
	r = zoo(t, home, "list")
	if r.code != 0 || !strings.Contains(r.stdout, "Rude") {
		t.Fatalf("zoo list after install --in-place lacks Rude: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "rude", "train", "--save_dir", t.TempDir())
	if r.code != 0 {
		t.Fatalf("run after install --in-place: %d\n%s", r.code, r.stderr)
	}
	r = zoo(t, home, "plugins", "list")
	if !strings.Contains(r.stdout, path) || !strings.Contains(r.stdout, "in place") {
		t.Errorf("plugins list does not show the in-place pin:\n%s", r.stdout)
	}
}

// TestInstallNeedsNeighbours: a Python plugin whose modules lie beside it
// fails to start once copied into $ZOO_HOME/plugins; install says so with
// the plugin's own error and the command that works, which then does.
func TestInstallNeedsNeighbours(t *testing.T) {
	py, err := pythonWithGRPC()
	if err != nil {
		t.Fatalf("no python3 with gRPC (scripts/deps.sh installs python3-grpcio): %v", err)
	}
	dir := t.TempDir()
	ex := filepath.Join("..", "..", "examples", "python-plugin")
	for _, f := range []string{"plugin.py", "zoo_plugin_v1_pb2.py"} {
		b, err := os.ReadFile(filepath.Join(ex, f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, f), b, 0o644)
	}
	exe := filepath.Join(dir, "zoo-plugin-pyecho")
	os.WriteFile(exe, []byte("#!"+py+"\nimport os, sys\nsys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\nimport plugin\nplugin.main()\n"), 0o755)
	home := []string{"ZOO_HOME=" + t.TempDir()}
	r := zoo(t, home, "plugins", "install", exe)
	oneLineError(t, r, 1, "ModuleNotFoundError: No module named 'plugin'")
	oneLineError(t, r, 1, "zoo plugins install --in-place "+exe)
	r = zoo(t, home, "plugins", "install", "--in-place", exe)
	if r.code != 0 {
		t.Fatalf("install --in-place: %d\n%s", r.code, r.stderr)
	}
	r = zoo(t, home, "run", "PyEcho", "infer", "--save_dir", t.TempDir())
	if r.code != 0 || !strings.Contains(r.stdout, "sample0: even") {
		t.Fatalf("run PyEcho: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestUndeclaredFlag: a Paddle flag whose key the model does not declare
// is a usage error naming the flag and the model's keys, not a no-op.
func TestUndeclaredFlag(t *testing.T) {
	r := zoo(t, nil, "run", "beta", "infer", "--batch_size", "2", "--save_dir", t.TempDir())
	oneLineError(t, r, 2, "--batch_size: model Beta has no batch_size key in [INFER] for infer, so the flag would do nothing (it declares no config keys)")
	dir := bundle(t, nil)
	os.Link(rude(t), filepath.Join(dir, "zoo-plugin-rude"))
	for _, flag := range []string{"--learning_rate", "--batch_size"} {
		r = zooAt(t, dir, nil, "run", "rude", "train", flag, "3", "--save_dir", t.TempDir())
		oneLineError(t, r, 2, flag+": model Rude has no "+strings.TrimPrefix(flag, "--")+" key in [TRAIN] or [VALID] for train, so the flag would do nothing (it declares TRAIN.epoch, TRAIN.steps)")
	}
	r = zooAt(t, dir, nil, "run", "rude", "train", "--epoch", "2", "--save_dir", t.TempDir())
	if r.code != 0 || !strings.Contains(r.stdout, "Epoch 1") {
		t.Errorf("--epoch 2 on a model that declares TRAIN.epoch: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestPluginFailuresPointAtCause: each way rude gets the contract wrong
// reaches the user as one line naming the plugin and what it did, with the
// detail (a panic's stack, stdout) at --log-level debug.
func TestPluginFailuresPointAtCause(t *testing.T) {
	dir := bundle(t, nil)
	if err := os.Link(rude(t), filepath.Join(dir, "zoo-plugin-rude")); err != nil {
		t.Fatal(err)
	}
	env := func(mode string, more ...string) []string { return append([]string{"ZOO_TEST_RUDE=" + mode}, more...) }

	t.Run("panic", func(t *testing.T) {
		r := zooAt(t, dir, env("panic"), "run", "rude", "train", "--save_dir", t.TempDir())
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if want := "zoo: plugin zoo-plugin-rude failed during Run: plugin panic: assignment to entry in nil map"; r.code != 1 || lines[len(lines)-1] != want || strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("exit %d, want 1 and the last line %q and no stack\n%s", r.code, want, r.stderr)
		}
		r = zooAt(t, dir, env("panic"), "run", "rude", "train", "--save_dir", t.TempDir(), "--log-level", "debug")
		if !strings.Contains(r.stderr, "internal/testplugins/rude/main.go:") || !strings.Contains(r.stderr, "goroutine ") {
			t.Errorf("no file:line and stack of the panic at debug:\n%s", r.stderr)
		}
	})
	t.Run("stdout", func(t *testing.T) {
		r := zooAt(t, dir, env("stdout"), "run", "rude", "train", "--save_dir", t.TempDir(), "--log-level", "debug")
		if r.code != 0 || !strings.Contains(r.stderr, "plugin zoo-plugin-rude stdout: rude: hello from stdout") {
			t.Errorf("the plugin's stdout line is not in the debug log: %d\n%s", r.code, r.stderr)
		}
	})
	t.Run("slowstart", func(t *testing.T) {
		r := zooAt(t, dir, env("slowstart", "ZOO_PLUGIN_TIMEOUT=2s"), "run", "rude", "train", "--save_dir", t.TempDir())
		oneLineError(t, r, 1, "plugin zoo-plugin-rude: did not complete the start-up handshake within 2s: it hangs at start-up, or starts slower than ZOO_PLUGIN_TIMEOUT allows")
	})
	t.Run("scores", func(t *testing.T) {
		save := t.TempDir()
		if r := zooAt(t, dir, nil, "run", "rude", "train", "--save_dir", save); r.code != 0 {
			t.Fatalf("train: %d\n%s", r.code, r.stderr)
		}
		r := zooAt(t, dir, env("scores"), "run", "rude", "infer", "--save_dir", save)
		oneLineError(t, r, 1, "plugin zoo-plugin-rude returned scores for sample0 that are not probabilities (score 1.5 is outside [0, 1])")
		r = zooAt(t, dir, nil, "run", "rude", "infer", "--save_dir", save)
		if r.code != 0 || !strings.Contains(r.stdout, "sample0: yes (0.7500)") {
			t.Errorf("probabilities refused: %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("baddefault", func(t *testing.T) {
		want := `plugin zoo-plugin-rude declares model Rude wrongly: schema default: `
		r := zooAt(t, dir, env("baddefault"), "info", "rude")
		oneLineError(t, r, 1, want)
		oneLineError(t, r, 1, "TRAIN.steps")
		r = zooAt(t, dir, env("baddefault"), "run", "rude", "train", "--save_dir", t.TempDir())
		oneLineError(t, r, 1, want)
		r = zoo(t, env("baddefault"), "plugins", "install", rudeCopy(t))
		oneLineError(t, r, 1, want)
	})
	t.Run("shadow", func(t *testing.T) {
		r := zoo(t, env("alpha"), "plugins", "install", rudeCopy(t))
		if r.code != 0 || !strings.Contains(r.stderr, "warning: model Alpha is also served by zoo-plugin-two ("+filepath.Join(binDir, "zoo-plugin-two")+"), found first") {
			t.Errorf("install of a plugin whose model name is taken: %d\n%s", r.code, r.stderr)
		}
	})
}

// TestRudePluginSignals: a plugin that dies of SIGINT and ignores
// cancellation never hangs zoo: whether the signal reaches both (a
// scheduler signals every process) or zoo alone (the plugin then never
// finishes its Run, and Save misses ZOO_PLUGIN_TIMEOUT), zoo ends within
// 20 s and no plugin is left.
func TestRudePluginSignals(t *testing.T) {
	for _, both := range []bool{true, false} {
		t.Run(fmt.Sprint("plugin too=", both), func(t *testing.T) {
			dir := bundle(t, nil)
			if err := os.Link(rude(t), filepath.Join(dir, "zoo-plugin-rude")); err != nil {
				t.Fatal(err)
			}
			z := startZoo(t, dir, []string{"ZOO_TEST_RUDE=sigint", "ZOO_PLUGIN_TIMEOUT=5s"},
				"run", "rude", "train", "--save_dir", t.TempDir(), "--log_interval", "1")
			z.waitLine(t, "[TRAIN] Epoch 0, iter 0 ")
			plugin := pluginOf(t, z.cmd.Process.Pid, "zoo-plugin-rude")
			start := time.Now()
			z.cmd.Process.Signal(syscall.SIGINT)
			if both {
				syscall.Kill(plugin, syscall.SIGINT)
			}
			select {
			case <-z.done:
			case <-time.After(20 * time.Second):
				out, errs := z.output()
				t.Fatalf("zoo still running 20 s after SIGINT\nstdout:\n%s\nstderr:\n%s", out, errs)
			}
			t.Logf("zoo ended %v after SIGINT, exit %d", time.Since(start), z.code)
			code := z.wait(t)
			if code == 0 {
				out, errs := z.output()
				t.Errorf("zoo exited 0 after losing its plugin\n%s\n%s", out, errs)
			}
			gone(t, plugin, "the rude plugin")
		})
	}
}

// TestGoExampleTrains: examples/zoo-plugin-echo, a module of its own with
// a replace directive, installed in place, trains Parity, resumes from a
// checkpoint, tests and infers through zoo.
func TestGoExampleTrains(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "zoo-plugin-echo")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "examples", "zoo-plugin-echo")
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build in examples/zoo-plugin-echo: %v\n%s", err, out)
	}
	home := []string{"ZOO_HOME=" + t.TempDir()}
	if r := zoo(t, home, "plugins", "install", "--in-place", bin); r.code != 0 {
		t.Fatalf("install --in-place: %d\n%s", r.code, r.stderr)
	}
	save := t.TempDir()
	r := zoo(t, home, "run", "Parity", "train", "--epoch", "2", "--save_dir", save, "--log_interval", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "saved checkpoint "+filepath.Join(save, "Parity_epoch1")) {
		t.Fatalf("train: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "Parity", "train", "--epoch", "4", "--save_dir", save, "--resume", filepath.Join(save, "Parity_epoch1"))
	if r.code != 0 || !strings.Contains(r.stdout, "Parity_epoch3") || strings.Contains(r.stdout, "Epoch 0") {
		t.Fatalf("resume: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "Parity", "test", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "top1_acc: 100.00") {
		t.Fatalf("test: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "Parity", "infer", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "hello: odd (0.") || !strings.Contains(r.stdout, "plugin: even (0.") {
		t.Fatalf("infer: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestPythonExampleTrains: examples/python-plugin, installed with `zoo
// plugins install` through its wrapper, trains PyParity, resumes from a
// checkpoint, tests and infers; an exception in it is one line naming the
// plugin and the call, with the Python traceback at --log-level debug.
func TestPythonExampleTrains(t *testing.T) {
	py, err := pythonWithGRPC()
	if err != nil {
		t.Fatalf("no python3 with gRPC (scripts/deps.sh installs python3-grpcio): %v", err)
	}
	src, err := filepath.Abs(filepath.Join("..", "..", "examples", "python-plugin", "plugin.py"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "zoo-plugin-pyecho")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexec %s %s\n", py, src)), 0o755)
	home := []string{"ZOO_HOME=" + t.TempDir()}
	if r := zoo(t, home, "plugins", "install", wrapper); r.code != 0 {
		t.Fatalf("install: %d\n%s", r.code, r.stderr)
	}
	save := t.TempDir()
	r := zoo(t, home, "run", "PyParity", "train", "--epoch", "2", "--save_dir", save, "--log_interval", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "saved checkpoint "+filepath.Join(save, "PyParity_epoch1")) {
		t.Fatalf("train: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "PyParity", "train", "--epoch", "4", "--save_dir", save, "--resume", filepath.Join(save, "PyParity_epoch1"))
	if r.code != 0 || !strings.Contains(r.stdout, "PyParity_epoch3") || strings.Contains(r.stdout, "Epoch 0") {
		t.Fatalf("resume: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "PyParity", "test", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "top1_acc: 100.00") {
		t.Fatalf("test: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "PyParity", "infer", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "sample0: even (0.") || !strings.Contains(r.stdout, "sample1: odd (0.") {
		t.Fatalf("infer: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "PyParity", "train", "--save_dir", t.TempDir(), "--set", "TRAIN.fail_at=1")
	oneLineError(t, r, 1, "plugin zoo-plugin-pyecho failed during Run: RuntimeError: TRAIN.fail_at: failing at step 1 on purpose")
	r = zoo(t, home, "run", "PyParity", "train", "--save_dir", t.TempDir(), "--set", "TRAIN.fail_at=1", "--log-level", "debug")
	if !strings.Contains(r.stderr, "Traceback (most recent call last)") || !strings.Contains(r.stderr, "plugin.py") {
		t.Errorf("no Python traceback at debug:\n%s", r.stderr)
	}
}
