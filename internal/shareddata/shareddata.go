// Package shareddata finds the project's shared test data (real videos,
// real Paddle parameter files, label lists): $ZOO_SHARED_DATA, else
// ../shared/data beside the repository (where CI clones it). Tests that
// need it fail, never skip, without it.
package shareddata

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the shared data directory or fails the test.
func Dir(t testing.TB) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	d, err := find(os.Getenv("ZOO_SHARED_DATA"), filepath.Join(filepath.Dir(self), "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// find is Dir's rule: env when set (and then it must exist), else
// shared/data beside the repository root. No machine's absolute path:
// another checkout must say where its data is.
func find(env, root string) (string, error) {
	if env != "" {
		if _, err := os.Stat(env); err != nil {
			return "", fmt.Errorf("ZOO_SHARED_DATA=%s: %v", env, err)
		}
		return env, nil
	}
	d := filepath.Join(root, "..", "shared", "data")
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("shared test data not found at %s (beside the repository): set ZOO_SHARED_DATA", d)
	}
	return d, nil
}
