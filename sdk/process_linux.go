package sdk

import "syscall"

// sysProcAttr starts a plugin in a process group of its own (so a terminal's
// Ctrl-C, `timeout` or `kill -TERM -PGID` reach only the host, which owns
// the signals and stops the plugin through the protocol) with SIGKILL as
// its parent-death signal (so it dies with the host however the host dies:
// kill -9, SIGPIPE, a panic).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
