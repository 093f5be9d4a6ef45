package proc

import (
	"errors"
	"syscall"
)

// groupAliveBySignal reports whether any process, zombies included, is in
// the process group.
func groupAliveBySignal(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}
