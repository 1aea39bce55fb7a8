//go:build !unix

package weights

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// lockFile on systems without flock: an O_EXCL lock file. Unlike flock it
// survives a crash; remove the file by hand if a fetch was killed.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	p := path + ".excl"
	for {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return func() { os.Remove(p) }, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("weights: lock: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("weights: waiting for lock %s (remove it if no zoo is running): %w", p, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func isQuota(error) bool { return false }
