//go:build !unix

package driver

import "os"

// tryLock: systems without flock run unlocked (OpenSaveDir says so).
func tryLock(*os.File) error { return errNoLock }
