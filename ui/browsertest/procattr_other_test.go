//go:build !linux

package browsertest

import "syscall"

// childAttr puts a child in its own process group, so that the test kills
// it with everything it started.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
