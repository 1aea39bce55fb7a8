// Package fsx holds the file system helpers every zoo package that writes
// files shares: an atomic file write (temporary sibling, fsync, rename,
// directory fsync), a directory fsync and the sha256 of a file. It imports
// only the standard library, so any package may use it (internal/depcheck).
package fsx

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Options tune WriteFile. The zero value writes a file of mode 0644 into an
// existing directory.
type Options struct {
	// Perm is the file's mode (0644 when zero).
	Perm os.FileMode
	// MkdirAll creates the file's directory (mode 0755) first.
	MkdirAll bool
	// Wrap, when set, is what the data goes through on its way to the
	// temporary file; tests use it to make writes fail as on a full disk.
	Wrap func(*os.File) io.Writer
	// BufferSize is the write buffer's size (bufio's default when zero).
	BufferSize int
}

// WriteFile writes a file through write and puts it at path only once it
// is complete and synced: the data goes to a temporary file ".BASE.tmp-*"
// in the same directory (so the rename cannot cross file systems), which is
// fsynced, renamed over path, and the directory fsynced. On any error path
// is left as it was, the temporary file is removed, and the error reads
// "write PATH: ..." on one line and wraps the cause. write is not called
// when no temporary file could be created.
func WriteFile(path string, o Options, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	perm := o.Perm
	if perm == 0 {
		perm = 0o644
	}
	if o.MkdirAll {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	var w io.Writer = f
	if o.Wrap != nil {
		w = o.Wrap(f)
	}
	size := o.BufferSize
	if size <= 0 {
		size = 4096
	}
	bw := bufio.NewWriterSize(w, size)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced. That is
	// best effort: some file systems cannot sync a directory, and the
	// file's data is already safe.
	_ = SyncDir(dir)
	return nil
}

// WriteBytes is WriteFile for data already in memory.
func WriteBytes(path string, o Options, data []byte) error {
	return WriteFile(path, o, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// SyncDir fsyncs a directory, which makes the renames and creations in it
// durable. Callers that cannot act on the error (some file systems refuse
// to sync a directory) may ignore it.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SHA256 returns the sha256 of the file at path. An error wraps the cause
// (errors.Is(err, fs.ErrNotExist) works) and names the file.
func SHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), nil
}
