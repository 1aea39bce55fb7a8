package weights

import (
	"errors"
	"fmt"
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
