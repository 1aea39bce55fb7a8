// Package golden compares a test's output with a committed file and, with
// `go test -update`, rewrites the file. Standard library only (testing
// and flag), imported by tests alone.
package golden

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

// Update is the -update flag of a test binary that imports this package.
var Update = flag.Bool("update", false, "rewrite golden files under testdata")

// Check fails t unless got equals the file at path; with -update it writes
// got there first.
func Check(t testing.TB, path string, got []byte) {
	t.Helper()
	if *Update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -run %s -update rewrites it):\n%s", path, t.Name(), got)
	}
}
