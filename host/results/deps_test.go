package results

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps enforces DEVELOPERS.md for this package: host/ never imports
// gorgonia or a plugin, and results needs nothing of zoo's at all.
func TestDeps(t *testing.T) {
	t.Parallel()
	checkDeps(t, ".", []string{"gorgonia.org/", "github.com/zoo-ml/zoo/"})
}

func checkDeps(t *testing.T, pkg string, forbidden []string) {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH: dependency policy not checked")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	self := ""
	if b, err := exec.Command(goBin, "list", pkg).Output(); err == nil {
		self = strings.TrimSpace(string(b))
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == self {
			continue
		}
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("%s imports %s, which DEVELOPERS.md forbids", self, dep)
			}
		}
	}
}
