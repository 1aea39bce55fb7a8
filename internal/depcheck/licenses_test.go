package depcheck

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLicensesListed: every module a zoo binary or test links has a row in
// docs/licenses.md at the version go.mod selects, so that no dependency
// arrives (or is upgraded) without its licence being checked.
func TestLicensesListed(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/licenses.md")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "list", "-deps", "-test", "-tags", "openblas",
		"-f", "{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}", "../../...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" || seen[line] {
			continue
		}
		seen[line] = true
		path, version, _ := strings.Cut(line, " ")
		if !strings.Contains(string(doc), "| "+path+" | "+version+" |") {
			t.Errorf("%s %s has no row in docs/licenses.md: check its licence (in its module-cache copy) and add it", path, version)
		}
	}
	if len(seen) < 10 {
		t.Fatalf("go list found %d modules; the query is wrong:\n%s", len(seen), out)
	}
}
