//go:build !linux

package video

import "io"

func setPipeSize(io.Reader) {}
