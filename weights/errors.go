package weights

import (
	"errors"
	"fmt"
	"syscall"
)

// Sentinel errors, for errors.Is.
var (
	// ErrFormat: a file is not a valid Paddle parameter file (truncated,
	// unknown version, absurd dims, trailing bytes, old layout).
	ErrFormat = errors.New("bad paddle parameter file")
	// ErrMismatch: a needed variable is missing or has the wrong dtype or dims.
	ErrMismatch = errors.New("variable mismatch")
)

// FormatError describes a malformed parameter record. Path is empty when
// the record did not come from a file; Offset is the byte offset in the
// file (or stream) where the problem was found.
type FormatError struct {
	Path   string
	Offset int64
	Reason string
}

func (e *FormatError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("weights: %s (offset %d)", e.Reason, e.Offset)
	}
	return fmt.Sprintf("weights: %s: %s (offset %d)", e.Path, e.Reason, e.Offset)
}

// Is makes errors.Is(err, ErrFormat) true for every *FormatError.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// withPath fills in the path of a FormatError coming from Decode, and
// wraps any other error (a read error) with the path.
func withPath(err error, path string) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		if fe.Path != "" {
			return err
		}
		c := *fe
		c.Path = path
		return &c
	}
	return fmt.Errorf("weights: %s: %w", path, trimPrefix(err))
}

// ErrNoSpace: a write the disk refused because it (or the user's quota) is
// full. Errors wrapping it also wrap the system's ENOSPC.
var ErrNoSpace = errors.New("no space left on device")

// DiskFullError is a write refused for want of space. Path is the file zoo
// was writing (or, while unpacking, the store directory the archive
// member was going into) and Member the archive member, if any.
type DiskFullError struct {
	Path   string
	Member string
	Err    error // the system's error, wrapping ENOSPC
}

func (e *DiskFullError) Error() string {
	what := "write " + e.Path
	if e.Member != "" {
		what = fmt.Sprintf("unpack member %q into %s", e.Member, e.Path)
	}
	return "weights: " + what + ": no space left on device; free space on that disk or set ZOO_WEIGHTS_DIR to a larger one"
}

func (e *DiskFullError) Unwrap() []error { return []error{ErrNoSpace, e.Err} }

// noSpace reports whether err is the disk or the quota being full.
func noSpace(err error) bool {
	return errors.Is(err, ErrNoSpace) || errors.Is(err, syscall.ENOSPC) || isQuota(err)
}

// diskFull returns a *DiskFullError for a full disk and err otherwise.
func diskFull(err error, path, member string) error {
	if err == nil || !noSpace(err) {
		return err
	}
	var de *DiskFullError
	if errors.As(err, &de) {
		return de
	}
	return &DiskFullError{Path: path, Member: member, Err: err}
}
