//go:build !unix

package sdk

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }

func killGroup(int) {}
