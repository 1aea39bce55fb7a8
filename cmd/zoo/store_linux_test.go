//go:build linux

package main_test

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/zoo-ml/zoo/weights"
)

// smallDisk mounts a tmpfs of size bytes at a new directory and unmounts it
// at the end of the test. Mounting needs root: CI runs the tests as root,
// so there (CI or ZOO_TEST_REQUIRE_ROOT set) anything else is a failure;
// a developer's run as another user skips, and weights'
// TestDiskFullChangesNothing covers the same logic with ENOSPC injected.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" || os.Getenv("ZOO_TEST_REQUIRE_ROOT") != "" {
			t.Fatal("this test mounts a tmpfs and must run as root in CI (CI or ZOO_TEST_REQUIRE_ROOT is set)")
		}
		t.Skip("needs root to mount a small tmpfs; weights.TestDiskFullChangesNothing covers the logic without one")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %d-byte tmpfs on %s: %v\n%s", size, dir, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	return dir
}

// fillTo writes a filler file into dir so that exactly keep bytes (a
// multiple of the block size) stay free.
func fillTo(t *testing.T, dir string, keep int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	if free < keep {
		t.Fatalf("%s has %d bytes free, fewer than the %d to keep", dir, free, keep)
	}
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, free-keep)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := syscall.Statfs(dir, &st); err != nil || int64(st.Bavail)*st.Bsize != keep {
		t.Fatalf("after the filler %d bytes free, want %d (%v)", int64(st.Bavail)*st.Bsize, keep, err)
	}
}

// TestWeightsFullDisk is the repro: a 3 MB tmpfs as the store, a
// filler leaving room for the unpacked set but not for zoo-weights.lock.
// Import and fetch must fail with "no space left on device" naming the
// file, and leave the store exactly as it was; with the space back, fetch
// installs and pins the set.
func TestWeightsFullDisk(t *testing.T) {
	store := smallDisk(t, 3<<20)
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(store, &sfs); err != nil {
		t.Fatal(err)
	}
	page := sfs.Bsize // tmpfs counts whole pages
	n := 300_000      // 1.2 MB of FP32, random bits so that gzip cannot shrink the download
	vals := make([]float32, n)
	rng := rand.New(rand.NewSource(1))
	for i := range vals {
		vals[i] = math.Float32frombits(rng.Uint32())
	}
	w := paramFile(t, weights.NewFloat32("w", []int64{int64(n)}, vals))
	arch := tarGz(t, []string{"alpha_w/", "alpha_w/w"}, map[string][]byte{"alpha_w/w": w})
	archive := filepath.Join(t.TempDir(), "alpha_w.tar.gz")
	if err := os.WriteFile(archive, arch, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, _ := weightsServer(t, arch)
	env := storeEnv(store, srv.URL)
	pages := (int64(len(w)) + page - 1) / page

	// Room for the unpacked file, none for the lock file.
	fillTo(t, store, pages*page)
	before := storeSnapshot(t, store)
	r := zoo(t, env, "weights", "import", "alpha_w", archive)
	oneLineError(t, r, 1, "no space left on device")
	if !strings.Contains(r.stderr, filepath.Join(store, weights.LockFileName)) {
		t.Errorf("the error does not name the lock file:\n%s", r.stderr)
	}
	if after := storeSnapshot(t, store); !slices.Equal(before, after) {
		t.Errorf("a failed import changed the store:\nbefore %q\nafter  %q", before, after)
	}
	if row := listJSON(t, env); row.Present {
		t.Errorf("after a failed import alpha_w is listed as installed: %+v", row)
	}

	// Fetch: the download does not fit (or, with large pages, its
	// unpacking); the .part is removed and named.
	r = zoo(t, env, "weights", "fetch", "alpha_w")
	oneLineError(t, r, 1, "no space left on device")
	part := filepath.Join(store, ".alpha_w.tar.gz.part")
	if !strings.Contains(r.stderr, "removed the partial download "+part) && !strings.Contains(r.stderr, "removed the downloaded archive "+part) {
		t.Errorf("fetch on a full disk does not say it removed %s:\n%s", part, r.stderr)
	}
	if strings.Contains(r.stderr, "already installed") {
		t.Errorf("fetch found a half-installed set:\n%s", r.stderr)
	}
	if after := storeSnapshot(t, store); !slices.Equal(before, after) {
		t.Errorf("a failed fetch changed the store:\nbefore %q\nafter  %q", before, after)
	}

	// Room for half the file: unpacking fails, and says why.
	os.Remove(filepath.Join(store, "filler"))
	fillTo(t, store, pages/2*page)
	before = storeSnapshot(t, store)
	r = zoo(t, env, "weights", "import", "alpha_w", archive)
	oneLineError(t, r, 1, "no space left on device")
	if !strings.Contains(r.stderr, `unpack member "alpha_w/w" into `+store) || strings.Contains(r.stderr, "corrupt") {
		t.Errorf("a full disk while unpacking is reported as:\n%s", r.stderr)
	}
	if after := storeSnapshot(t, store); !slices.Equal(before, after) {
		t.Errorf("a failed import changed the store:\nbefore %q\nafter  %q", before, after)
	}

	// With the space back, fetch installs and records the set.
	os.Remove(filepath.Join(store, "filler"))
	if r := zoo(t, env, "weights", "fetch", "alpha_w"); r.code != 0 {
		t.Fatalf("fetch with room: %d\n%s", r.code, r.stderr)
	}
	if row := listJSON(t, env); !row.Present || !row.Verified {
		t.Errorf("after fetch: %+v, want installed and verified", row)
	}
}
