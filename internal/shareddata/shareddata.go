// Package shareddata finds the project's shared test data (real videos,
// real Paddle parameter files, label lists): $ZOO_SHARED_DATA, else
// ../shared/data beside the repository (where CI clones it), else
// /work/shared/data. Tests that need it fail, never skip, without it.
package shareddata

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the shared data directory or fails the test.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("ZOO_SHARED_DATA"); d != "" {
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("ZOO_SHARED_DATA=%s: %v", d, err)
		}
		return d
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	cands := []string{filepath.Join(root, "..", "shared", "data"), "/work/shared/data"}
	for _, c := range cands {
		if fi, err := os.Stat(c); err == nil && fi.IsDir() {
			return c
		}
	}
	t.Fatalf("shared test data not found in %v: set ZOO_SHARED_DATA", cands)
	return ""
}
