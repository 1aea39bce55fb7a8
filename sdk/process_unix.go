//go:build unix && !linux

package sdk

import "syscall"

// sysProcAttr starts a plugin in a process group of its own; without a
// parent-death signal outside Linux, the plugin side (sdk.Serve) exits when
// it sees its host gone.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
