package fsx

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.json")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFile(path, Options{}, func(w io.Writer) error {
		io.WriteString(w, "partial")
		return boom
	})
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "write "+path+": ") {
		t.Errorf("error = %v, want it to wrap boom and name %s", err, path)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("failed write changed the file to %q", b)
	}
	if err := WriteBytes(path, Options{}, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("file = %q, want new", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, %v; want 0644", fi.Mode(), err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only out.json (temp files left behind?)", len(entries))
	}
	missing := filepath.Join(dir, "missing", "x")
	err = WriteFile(missing, Options{}, func(io.Writer) error { return nil })
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "write "+missing) {
		t.Errorf("write into missing dir: %v", err)
	}
}

// TestWriteFileOptions: Perm, MkdirAll and Wrap (a writer failing like a
// full disk leaves nothing behind).
func TestWriteFileOptions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "a", "b", "plugin")
	if err := WriteFile(path, Options{Perm: 0o755, MkdirAll: true}, func(w io.Writer) error { _, err := w.Write([]byte("x")); return err }); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode = %v, %v; want 0755", fi.Mode(), err)
	}
	full := errors.New("no space left on device")
	wrap := func(*os.File) io.Writer { return failWriter{full} }
	err := WriteFile(path, Options{Wrap: wrap}, func(w io.Writer) error { _, err := w.Write(make([]byte, 1<<20)); return err })
	if !errors.Is(err, full) {
		t.Errorf("error = %v, want the wrapped writer's", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "x" {
		t.Errorf("failed write changed the file to %q", b)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("dir holds %d entries, want 1 (temp files left behind?)", len(entries))
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// TestWriteFileUnwritableDir uses a file where the directory should be:
// unlike a read-only directory, that fails for root too.
func TestWriteFileUnwritableDir(t *testing.T) {
	t.Parallel()
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(notDir, "metrics.png")
	called := false
	err := WriteFile(path, Options{}, func(io.Writer) error { called = true; return nil })
	if err == nil || !strings.HasPrefix(err.Error(), "write "+path+": ") || strings.Contains(err.Error(), "\n") {
		t.Errorf("error = %v, want one line naming %s", err, path)
	}
	if called {
		t.Error("write func called although no temp file could be created")
	}
}

func TestSyncDirAndSHA256(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := SyncDir(dir); err != nil {
		t.Errorf("SyncDir: %v", err)
	}
	if err := SyncDir(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SyncDir of a missing dir: %v", err)
	}
	path := filepath.Join(dir, "f")
	os.WriteFile(path, []byte("zoo"), 0o644)
	want := sha256.Sum256([]byte("zoo"))
	if got, err := SHA256(path); err != nil || !bytes.Equal(got, want[:]) {
		t.Errorf("SHA256 = %x, %v; want %x", got, err, want)
	}
	if _, err := SHA256(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SHA256 of a missing file: %v", err)
	}
}
