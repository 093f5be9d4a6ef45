package worker

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// workdirPattern names the tries' working directories in the data folder;
// MkdirTemp replaces the * with a random number.
const workdirPattern = "kiln-try-*"

// newWorkdir makes a try's working directory: a new folder in the data
// folder with a random name, made in one step and readable by the
// worker's user only, so that in a shared folder such as /tmp no one can
// make it first or plant a file in it (docs/artifacts.md#how-files-move).
func (w *Worker) newWorkdir() (string, error) {
	dir, err := os.MkdirTemp(w.cfg.DataDir, workdirPattern)
	if err != nil {
		return "", fmt.Errorf("making the try's working directory: %w", err)
	}
	return dir, nil
}

// removeWorkdir removes a try's working directory, unless the worker keeps
// them. A task may have left folders it cannot write to (a Go module
// cache, a chmod 0500), so what RemoveAll cannot remove is made writable
// first, and removed again.
func (w *Worker) removeWorkdir(dir string, log *slog.Logger) {
	if dir == "" || w.cfg.KeepWorkdirs {
		return
	}
	if os.RemoveAll(dir) == nil {
		return
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		log.Warn("could not remove a try's working directory", "dir", dir, "error", err)
	}
}
