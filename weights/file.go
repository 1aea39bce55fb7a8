package weights

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zoo-ml/zoo/internal/fsx"
)

// ReadFile reads a one-variable parameter file. The tensor is named after
// the file. Bytes after the record are an error.
func ReadFile(path string) (*Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("weights: %s: not a regular file", path)
	}
	t, err := Decode(bufio.NewReaderSize(f, 64<<10), st.Size())
	if err != nil {
		return nil, withPath(err, path)
	}
	if used := recordSize(t); used != st.Size() {
		return nil, &FormatError{Path: path, Offset: used, Reason: fmt.Sprintf("%d trailing bytes after the record", st.Size()-used)}
	}
	t.Name = filepath.Base(path)
	return t, nil
}

// recordSize is the encoded size of t's record.
func recordSize(t *Tensor) int64 {
	n := int64(4 + 8 + 4 + 4 + len(appendDesc(nil, t.DType, t.Dims)) + len(t.Data))
	for _, l := range t.LoD {
		n += 8 + 8*int64(len(l))
	}
	return n
}

// readHeader reads the header of a one-variable file and checks that the
// file holds exactly the data the header claims, without reading it.
func readHeader(path string) (*header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("weights: %s: not a regular file", path)
	}
	rr := &recReader{r: bufio.NewReaderSize(f, 4096), limit: st.Size()}
	h, err := rr.header()
	if err != nil {
		return nil, withPath(err, path)
	}
	if end := rr.off + h.nbyte; end != st.Size() {
		return nil, &FormatError{Path: path, Offset: end, Reason: fmt.Sprintf("%d trailing bytes after the record", st.Size()-end)}
	}
	return h, nil
}

// WriteFile writes t to path atomically: a temporary file in the same
// directory, fsync, rename. A reader never sees a partial file.
func WriteFile(path string, t *Tensor) error {
	if err := t.validate(); err != nil {
		return err
	}
	return atomicWrite(path, func(w io.Writer) error { return Encode(w, t) })
}

// fileWriter is what every file this package writes goes through (parameter
// files, the lock file, downloads, unpacked archives). Tests replace it to
// make writes fail as on a full disk, without a small filesystem.
var fileWriter = func(f *os.File) io.Writer { return f }

func atomicWrite(path string, write func(io.Writer) error) error {
	err := fsx.WriteFile(path, fsx.Options{Wrap: fileWriter, BufferSize: 256 << 10}, write)
	if err != nil {
		return diskFull(fmt.Errorf("weights: %w", err), path, "")
	}
	return nil
}

// syncDir makes a rename durable. Errors are ignored: some filesystems
// refuse fsync on directories and the rename itself already succeeded.
func syncDir(dir string) { _ = fsx.SyncDir(dir) }

// checkName refuses variable names that are not a plain file name, so a
// name can never point outside its directory.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`+"\x00") {
		return fmt.Errorf("weights: bad variable name %q", name)
	}
	return nil
}

// isTemp reports whether a directory entry is one of our temporary files
// or other hidden files, which are never variables.
func isTemp(name string) bool { return strings.HasPrefix(name, ".") }

// ListDir returns the sorted names of the variables (regular files not
// starting with ".") in a one-file-per-variable directory. A symlink to a
// regular file counts as one, wherever it points: DVC, git-annex and the
// Hugging Face cache keep their files as links into an object store. A
// dangling link is listed too, so reading it names the missing target (a
// git-annex file not yet fetched) instead of calling the variable missing.
func ListDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	var names []string
	for _, e := range ents {
		if isTemp(e.Name()) {
			continue
		}
		if e.Type()&os.ModeSymlink != 0 {
			if st, err := os.Stat(filepath.Join(dir, e.Name())); err == nil && !st.Mode().IsRegular() {
				continue
			}
		} else if !e.Type().IsRegular() {
			continue
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// ReadDir reads the named variables from a one-file-per-variable
// directory; with names nil it reads every variable ListDir finds.
func ReadDir(dir string, names []string) (map[string]*Tensor, error) {
	if names == nil {
		var err error
		if names, err = ListDir(dir); err != nil {
			return nil, err
		}
	}
	out := make(map[string]*Tensor, len(names))
	for _, n := range names {
		if err := checkName(n); err != nil {
			return nil, err
		}
		t, err := ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		out[n] = t
	}
	return out, nil
}

// WriteDir writes one file per variable into dir, atomically as a whole:
// the files go into a temporary sibling directory, are fsynced, and the
// directory is renamed into place. An existing dir is replaced (moved
// aside first, removed after the rename), so readers see either the old or
// the new set, never a mix. Checkpoints rely on this.
func WriteDir(dir string, tensors map[string]*Tensor) error {
	return WriteDirWith(dir, tensors, nil)
}

// WriteDirWith is WriteDir where extra, when not nil, also writes into the
// temporary directory (files that must arrive with the parameters or not
// at all) before it is renamed into place.
func WriteDirWith(dir string, tensors map[string]*Tensor, extra func(tmp string) error) error {
	for name, t := range tensors {
		if err := checkName(name); err != nil {
			return err
		}
		if err := t.validate(); err != nil {
			return err
		}
	}
	return replaceDir(dir, func(tmp string) error {
		for name, t := range tensors {
			if err := WriteFile(filepath.Join(tmp, name), t); err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(tmp)
		}
		return nil
	})
}

// replaceDir fills a temporary sibling of dir with fill and renames it
// into place. On error dir is left as it was.
func replaceDir(dir string, fill func(tmp string) error) (err error) {
	dir = filepath.Clean(dir)
	parent, base := filepath.Split(dir)
	if parent == "" {
		parent = "."
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	if err = os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("weights: %w", err)
	}
	if err = fill(tmp); err != nil {
		return err
	}
	syncDir(tmp)
	var old string
	if _, serr := os.Lstat(dir); serr == nil {
		old = filepath.Join(parent, "."+base+".old-"+filepath.Base(tmp)[len(base)+6:])
		if err = os.Rename(dir, old); err != nil {
			return fmt.Errorf("weights: replace %s: %w", dir, err)
		}
	}
	if err = os.Rename(tmp, dir); err != nil {
		if old != "" {
			os.Rename(old, dir)
		}
		return fmt.Errorf("weights: replace %s: %w", dir, err)
	}
	syncDir(parent)
	if old != "" {
		os.RemoveAll(old)
	}
	return nil
}

// ReadCombined reads a combined parameter file (__params__, .pdiparams):
// records with no names, in the sorted order of the variable names, as
// Paddle's save_combine writes them. names is the complete list of the
// file's variables, in any order; a record count that does not match is
// an error.
func ReadCombined(path string, names []string) (map[string]*Tensor, error) {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	if i := dupIndex(sorted); i >= 0 {
		return nil, fmt.Errorf("weights: %s: variable %q listed twice", path, sorted[i])
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	out := make(map[string]*Tensor, len(sorted))
	var off int64
	for i, name := range sorted {
		if off == st.Size() {
			return nil, &FormatError{Path: path, Offset: off, Reason: fmt.Sprintf("%d records, want %d (ends before %q)", i, len(sorted), name)}
		}
		t, err := Decode(br, st.Size()-off)
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				c := *fe
				c.Path, c.Offset = path, off+fe.Offset
				c.Reason = fmt.Sprintf("record %d (%s): %s", i, name, fe.Reason)
				return nil, &c
			}
			return nil, fmt.Errorf("weights: %s: record %d (%s): %w", path, i, name, err)
		}
		t.Name = name
		out[name] = t
		off += recordSize(t)
	}
	if off != st.Size() {
		return nil, &FormatError{Path: path, Offset: off, Reason: fmt.Sprintf("%d trailing bytes after %d records", st.Size()-off, len(sorted))}
	}
	return out, nil
}

func dupIndex(sorted []string) int {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return i
		}
	}
	return -1
}

// WriteCombined writes the tensors as one combined file, atomically, in
// sorted-name order.
func WriteCombined(path string, tensors map[string]*Tensor) error {
	names := make([]string, 0, len(tensors))
	for n, t := range tensors {
		if err := t.validate(); err != nil {
			return err
		}
		names = append(names, n)
	}
	slices.Sort(names)
	return atomicWrite(path, func(w io.Writer) error {
		for _, n := range names {
			if err := Encode(w, tensors[n]); err != nil {
				return err
			}
		}
		return nil
	})
}
