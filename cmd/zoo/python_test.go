package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pythonWithGRPC returns a python3 that imports grpc and google.protobuf:
// $ZOO_PYTHON, Debian's /usr/bin/python3, or python3 on PATH.
func pythonWithGRPC() (string, error) {
	var tried []string
	for _, py := range []string{os.Getenv("ZOO_PYTHON"), "/usr/bin/python3", "python3"} {
		if py == "" {
			continue
		}
		if out, err := exec.Command(py, "-c", "import grpc, google.protobuf").CombinedOutput(); err != nil {
			tried = append(tried, fmt.Sprintf("%s: %s", py, strings.TrimSpace(string(out))))
			continue
		}
		return py, nil
	}
	return "", fmt.Errorf("%s", strings.Join(tried, "; "))
}

// TestPythonPlugin runs examples/python-plugin, a plugin written in Python
// from the same .proto, through `zoo plugins install`, `zoo list`, `zoo
// info` and `zoo run`, as real subprocesses.
func TestPythonPlugin(t *testing.T) {
	py, err := pythonWithGRPC()
	if err != nil {
		// go test prints skips only with -v: say it on stderr as well, so
		// that a run without Python's gRPC cannot pass for a full one.
		msg := fmt.Sprintf("SKIP TestPythonPlugin: no python3 with gRPC (apt-get install python3-grpcio python3-protobuf): %v", err)
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	src, err := filepath.Abs(filepath.Join("..", "..", "examples", "python-plugin", "plugin.py"))
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(t.TempDir(), "zoo-plugin-pyecho")
	os.WriteFile(wrapper, []byte(fmt.Sprintf("#!/bin/sh\nexec %s %s\n", py, src)), 0o755)
	home := []string{"ZOO_HOME=" + t.TempDir()}
	r := zoo(t, home, "plugins", "install", wrapper)
	if r.code != 0 {
		t.Fatalf("install: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "list")
	if r.code != 0 || !hasRow(r.stdout, "PyEcho zoo-plugin-pyecho 0.1.0 test,infer -") {
		t.Fatalf("list: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "info", "pyecho")
	if r.code != 0 || !strings.Contains(r.stdout, "INFER.samples") || !strings.Contains(r.stdout, "labels:  2 (even ... odd)") {
		t.Fatalf("info: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	save := t.TempDir()
	r = zoo(t, home, "run", "PyEcho", "infer", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stdout, "sample0: even (0.8000)") || !strings.Contains(r.stdout, "sample1: odd (0.8000)") ||
		strings.Contains(r.stdout, "sample2") || !strings.Contains(r.stderr, "PyEcho in Python 3.") {
		t.Fatalf("run infer (default job: 2 samples): %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(save, "PyEcho_infer_result.json")); err != nil {
		t.Error(err)
	}
	r = zoo(t, home, "run", "PyEcho", "test", "--save_dir", save, "--set", "TEST.samples=3")
	if r.code != 0 || !strings.Contains(r.stdout, "videos: 3  Loss: 0.200000, top1_acc: 100.00") {
		t.Fatalf("run test: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zoo(t, home, "run", "PyEcho", "infer", "--save_dir", save, "--set", "INFER.samples=0")
	oneLineError(t, r, 1, "INFER.samples 0: must be at least 1")
}

// hasRow reports whether a table has a line whose fields are row's.
func hasRow(table, row string) bool {
	for _, l := range strings.Split(table, "\n") {
		if strings.Join(strings.Fields(l), " ") == row {
			return true
		}
	}
	return false
}
