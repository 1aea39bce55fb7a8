package main_test

import (
	"archive/zip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestVersionGoInstall: `go install github.com/zoo-ml/zoo/cmd/zoo@VERSION`
// builds a zoo that says VERSION (from its build information: no Makefile
// sets -X there). The module is served from a file:// proxy made of this
// tree, its dependencies from the module cache's download directory, into
// a module cache of the test's own: no network, nothing left behind.
func TestVersionGoInstall(t *testing.T) {
	const ver = "v0.99.0-test"
	tmp := t.TempDir()
	at := filepath.Join(tmp, "proxy", "github.com", "zoo-ml", "zoo", "@v")
	if err := os.MkdirAll(at, 0o755); err != nil {
		t.Fatal(err)
	}
	moduleZip(t, filepath.Join("..", ".."), filepath.Join(at, ver+".zip"), "github.com/zoo-ml/zoo@"+ver+"/")
	gomod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{ver + ".mod": gomod, ver + ".info": []byte(`{"Version":"` + ver + `","Time":"2026-01-01T00:00:00Z"}`), "list": []byte(ver + "\n")} {
		if err := os.WriteFile(filepath.Join(at, name), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	modcache, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	// -trimpath: the build cache then serves the dependencies compiled by
	// an earlier run, although this module cache is new each time.
	install := exec.Command("go", "install", "-trimpath", "github.com/zoo-ml/zoo/cmd/zoo@"+ver)
	install.Dir = tmp
	install.Env = append(os.Environ(), "GOFLAGS=-modcacherw", "GOWORK=off", "GOTOOLCHAIN=local", "GOSUMDB=off",
		"GOMODCACHE="+filepath.Join(tmp, "mod"), "GOBIN="+filepath.Join(tmp, "bin"),
		"GOPROXY=file://"+filepath.Join(tmp, "proxy")+",file://"+filepath.Join(strings.TrimSpace(string(modcache)), "cache", "download"))
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install ...@%s: %v\n%s", ver, err, out)
	}
	if r := zooAt(t, filepath.Join(tmp, "bin"), nil, "--version"); r.code != 0 || r.stdout != "zoo version "+ver+"\n" {
		t.Errorf("zoo --version of a go install = %d %q, want %q", r.code, r.stdout, "zoo version "+ver)
	}
}

// moduleZip writes the module at root as a module zip (the go command's
// layout: every file under prefix), without what a module zip leaves out:
// .git, nested modules (examples/zoo-plugin-echo), git-ignored build
// outputs at the top.
func moduleZip(t *testing.T, root, dst, prefix string) {
	t.Helper()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			switch {
			case rel == ".":
				return nil
			case strings.Count(rel, "/") == 0 && strings.HasPrefix(rel, "."), rel == "bin", rel == "checkpoints", rel == "vendor", d.Name() == "__pycache__":
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || strings.HasPrefix(rel, ".") {
			return nil
		}
		w, err := zw.Create(prefix + rel)
		if err != nil {
			return err
		}
		r, err := os.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		t.Fatalf("module zip of %s: %v", root, err)
	}
}
