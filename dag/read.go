package dag

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxFileSize bounds a DAG file (docs/dag-format.md#files-and-folders):
// anything larger is a mistake, not a DAG, and with maxDepth it bounds
// what parsing and checking one file can cost.
const maxFileSize = 1 << 20

// readDAGFile reads a DAG file: a regular file, or a symbolic link to one,
// of at most maxFileSize bytes. Anything else named like a DAG file (a
// FIFO, a device such as /dev/zero, a socket, a folder) is refused before
// it is opened. As the file may be replaced between that check and the
// open, it is opened without blocking (a FIFO opened for reading would
// wait for a writer), checked again, and read no further than the cap.
func readDAGFile(path string) ([]byte, *Error) {
	fail := func(format string, args ...any) ([]byte, *Error) {
		return nil, &Error{File: path, Line: 1, Col: 1, Msg: fmt.Sprintf(format, args...)}
	}
	info, err := os.Stat(path)
	if err != nil {
		return fail("reading: %v", err)
	}
	if !info.Mode().IsRegular() {
		return fail("%s", notRegular(path, info.Mode()))
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fail("reading: %v", err)
	}
	defer f.Close()
	if info, err = f.Stat(); err != nil {
		return fail("reading: %v", err)
	}
	if !info.Mode().IsRegular() {
		return fail("%s", notRegular(path, info.Mode()))
	}
	src, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return fail("reading: %v", err)
	}
	if len(src) > maxFileSize {
		return fail("%s", tooLarge)
	}
	return src, nil
}

var tooLarge = fmt.Sprintf("larger than %d bytes (1 MiB), the limit for a DAG file", maxFileSize)

// notRegular says what path is instead of a regular file, and where a
// symbolic link leads.
func notRegular(path string, mode fs.FileMode) string {
	what := describeMode(mode)
	if l, err := os.Lstat(path); err == nil && l.Mode()&fs.ModeSymlink != 0 {
		if target, err := os.Readlink(path); err == nil {
			what = fmt.Sprintf("a symbolic link to %s, %s", target, what)
		} else {
			what = "a symbolic link to " + what
		}
	}
	return fmt.Sprintf("not a regular file but %s: a DAG file must be a regular file or a symbolic link to one", what)
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "a special file"
}
