package browsertest

import "syscall"

// childAttr puts a child in its own process group, so that the test kills
// it with everything it started, and has the kernel kill it should the
// test binary die first (a timeout, a Ctrl-C).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
