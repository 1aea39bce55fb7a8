package weights

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrUnsafeArchive: an archive member that could write outside the
// target directory or is not a plain file, directory or inside link.
var ErrUnsafeArchive = errors.New("unsafe archive member")

// maxMembers caps the entries of an archive: a weights archive holds a few
// hundred variable files; a million tiny members is an inode bomb.
const maxMembers = 100_000

// extractTarGz unpacks a gzip-compressed tar stream into dst, an existing
// empty directory, refusing (with ErrUnsafeArchive) absolute names, ".."
// elements, links that are absolute or contain "..", device files, fifos
// and anything written through a symlink, and stopping (with an error)
// when the unpacked size would exceed limit bytes. name is the archive's
// path, for messages.
func extractTarGz(r io.Reader, dst, name string, limit int64) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("weights: %s: not a gzip archive: %w", name, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("weights: %s: bad tar archive: %w", name, err)
		}
		if n >= maxMembers {
			return fmt.Errorf("weights: %s: more than %d members: %w", name, maxMembers, ErrUnsafeArchive)
		}
		unsafe := func(why string) error {
			return fmt.Errorf("weights: %s: member %q: %s: %w", name, h.Name, why, ErrUnsafeArchive)
		}
		rel, err := memberPath(h.Name)
		if err != nil {
			return unsafe(err.Error())
		}
		if rel == "" {
			if h.Typeflag == tar.TypeDir {
				continue // "./"
			}
			return unsafe("empty name")
		}
		if err := realParents(dst, rel); err != nil {
			return unsafe(err.Error())
		}
		target := filepath.Join(dst, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(target, 0o755); err != nil && !isDir(target) {
				if noSpace(err) {
					return &DiskFullError{Path: storeDir(dst), Member: h.Name, Err: err}
				}
				return fmt.Errorf("weights: %s: %w", name, err)
			}
		case tar.TypeReg: // tar.Reader reports the legacy TypeRegA as TypeReg (or TypeDir)
			if h.Size > limit-total {
				return fmt.Errorf("weights: %s: unpacked size above the limit of %d bytes: %w", name, limit, ErrUnsafeArchive)
			}
			// O_EXCL: a member never overwrites an earlier one, nor
			// writes through a link planted by one.
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if noSpace(err) {
				return &DiskFullError{Path: storeDir(dst), Member: h.Name, Err: err}
			}
			if err != nil {
				return unsafe(fmt.Sprintf("cannot create: %v", errors.Unwrap(err)))
			}
			// Tell the disk's errors from the archive's: a full disk is
			// not a corrupt archive.
			fw := &errWriter{w: fileWriter(f)}
			w, err := io.Copy(fw, io.LimitReader(tr, h.Size))
			if cerr := f.Close(); err == nil {
				err = cerr
				fw.err = cerr
			}
			if err == nil && w != h.Size {
				err = io.ErrUnexpectedEOF
			}
			if err != nil && fw.err != nil {
				if noSpace(fw.err) {
					return &DiskFullError{Path: storeDir(dst), Member: h.Name, Err: fw.err}
				}
				return fmt.Errorf("weights: %s: unpack member %q: %w", name, h.Name, fw.err)
			}
			if err != nil {
				return fmt.Errorf("weights: %s: truncated or corrupt archive at member %q: %w", name, h.Name, err)
			}
			total += w
		case tar.TypeSymlink, tar.TypeLink:
			ln := h.Linkname
			if ln == "" || strings.HasPrefix(ln, "/") || strings.Contains(ln, `\`) || hasDotDot(ln) {
				return unsafe(fmt.Sprintf("link to %q points outside the archive", ln))
			}
			if h.Typeflag == tar.TypeSymlink {
				// Relative and descending only: it points at or below
				// its own directory, whatever other links it crosses.
				if err := os.Symlink(ln, target); err != nil {
					return unsafe(fmt.Sprintf("cannot create: %v", errors.Unwrap(err)))
				}
				continue
			}
			lrel, err := memberPath(ln)
			if err != nil || lrel == "" {
				return unsafe(fmt.Sprintf("hard link to %q", ln))
			}
			if err := realParents(dst, lrel); err != nil {
				return unsafe(err.Error())
			}
			src := filepath.Join(dst, filepath.FromSlash(lrel))
			if st, err := os.Lstat(src); err != nil || !st.Mode().IsRegular() {
				return unsafe(fmt.Sprintf("hard link to %q, not an earlier regular file", ln))
			}
			if err := os.Link(src, target); err != nil {
				return unsafe(fmt.Sprintf("cannot create: %v", errors.Unwrap(err)))
			}
		case tar.TypeXGlobalHeader:
			continue
		default:
			return unsafe(fmt.Sprintf("type %q is not a file, directory or link", h.Typeflag))
		}
	}
	return nil
}

// memberPath cleans an archive member name to a slash-separated relative
// path, refusing absolute names and any ".." element.
func memberPath(name string) (string, error) {
	if strings.Contains(name, `\`) || strings.ContainsRune(name, 0) {
		return "", errors.New("backslash or NUL in name")
	}
	if strings.HasPrefix(name, "/") || (len(name) > 1 && name[1] == ':') {
		return "", errors.New("absolute path")
	}
	if hasDotDot(name) {
		return "", errors.New(`".." in path`)
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// realParents checks that every parent of rel inside dst, where it exists,
// is a real directory and not a symlink, so nothing is written through a
// link. Missing parents are created.
func realParents(dst, rel string) error {
	dir := dst
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		st, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if !st.IsDir() {
			return fmt.Errorf("parent %q is not a directory", p)
		}
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.IsDir()
}

// errWriter remembers the error of its writer, so a copy's caller can tell
// a write error from a read error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.err = err
	}
	return n, err
}

// storeDir names, for messages, the directory an unpack directory
// (STORE/.NAME.tmp-*/.unpack) lives in: the store the user knows.
func storeDir(unpack string) string {
	d := filepath.Dir(filepath.Dir(unpack))
	if strings.HasPrefix(filepath.Base(filepath.Dir(unpack)), ".") && filepath.Base(unpack) == ".unpack" {
		return d
	}
	return unpack
}
