// Package diskfull tells the errors of a full disk from others. Kiln
// stops with the reason when its data folder is full, rather than retry
// writes that cannot succeed (docs/operations.md#damaged-or-full-data-folder).
package diskfull

import (
	"errors"
	"syscall"
)

// Is reports whether err says that a write found no room: no space left
// on the device (ENOSPC), or a disk quota used up (EDQUOT).
func Is(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}
