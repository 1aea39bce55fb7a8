package video

import (
	"io"
	"os"
	"syscall"
)

// setPipeSize grows ffmpeg's stdout pipe from Linux's 64 KiB to 1 MiB, so
// that ffmpeg writes a frame in a few system calls instead of blocking
// every 64 KiB for the reader to catch up. Failure (the size above
// /proc/sys/fs/pipe-max-size) leaves the pipe as it was.
func setPipeSize(r io.Reader) {
	f, ok := r.(*os.File)
	if !ok {
		return
	}
	const fSetPipeSz = 1031 // F_SETPIPE_SZ
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, f.Fd(), fSetPipeSz, 1<<20)
}
