package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/zoo-ml/zoo/"

// stdlibOnly forbids every import path with a dot in its first element:
// anything outside the standard library.
const stdlibOnly = "<non-standard>"

// rules: for each package pattern, the import-path prefixes none of its
// packages may depend on (directly or not).
var rules = []struct {
	pkgs      string
	forbidden []string
}{
	{"sdk/...", []string{mod + "host", mod + "registry", mod + "weights", mod + "nn", mod + "video", mod + "plugins", "gorgonia.org/"}},
	{"registry/...", []string{mod + "host", mod + "weights", mod + "nn", mod + "video", mod + "plugins", "gorgonia.org/"}},
	// host/ reaches video only through dataset, for `zoo data`
	// (TestHostVideoImports); video is pure Go over an ffmpeg child.
	{"host/...", []string{mod + "nn", mod + "plugins", "gorgonia.org/"}},
	{"dataset/...", []string{mod + "host", mod + "sdk", mod + "registry", mod + "weights", mod + "nn", mod + "plugins", "gorgonia.org/"}},
	{"host/config", []string{mod}},
	{"host/results", []string{mod}},
	{"weights/...", []string{stdlibOnly}},
	{"video/...", []string{mod, "gorgonia.org/"}},
	{"nn/...", []string{mod + "host", mod + "sdk", mod + "registry", mod + "plugins", mod + "video", mod + "cmd"}},
}

func TestDependencyRules(t *testing.T) {
	for _, r := range rules {
		t.Run(r.pkgs, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../../"+r.pkgs).CombinedOutput()
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", r.pkgs, err, out)
			}
			self := strings.TrimSuffix(mod+r.pkgs, "/...")
			for _, dep := range strings.Fields(string(out)) {
				if dep == self || strings.HasPrefix(dep, self+"/") {
					continue
				}
				for _, f := range r.forbidden {
					first, _, _ := strings.Cut(dep, "/")
					if f == stdlibOnly && strings.Contains(first, ".") || strings.HasPrefix(dep, f) {
						t.Errorf("%s depends on %s, which DEVELOPERS.md forbids", r.pkgs, dep)
					}
				}
			}
		})
	}
}

// TestHostVideoImports: in host/, only host/cmd/data imports dataset, and
// no package imports video itself: the reader stays the plugins' and
// dataset's.
func TestHostVideoImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "../../host/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list host/...: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			if imp == mod+"video" || strings.HasPrefix(imp, mod+"video/") {
				t.Errorf("%s imports %s; host/ reads videos only through dataset", f[0], imp)
			}
			if imp == mod+"dataset" && f[0] != mod+"host/cmd/data" {
				t.Errorf("%s imports dataset; only host/cmd/data does", f[0])
			}
		}
	}
}
