// Package proc runs a stage's processes the way Kiln's plugins promise: each
// in a process group of its own, stdout and stderr merged into one pipe (so
// their order is kept), and the whole group ended when the task is
// cancelled (SIGTERM, then SIGKILL after KillGrace) and once its leader has
// exited, so nothing it started outlives the task unseen.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

const (
	// KillGrace is how long a cancelled task's process group has between
	// SIGTERM and SIGKILL.
	KillGrace = 2 * time.Second
	// drainTimeout bounds reading the output pipe after the process group
	// is dead, in case a process that left the group still holds it open.
	drainTimeout = 2 * time.Second
	// chunkSize is the most Run writes to its writer at once.
	chunkSize = 32 << 10
)

// Run starts cmd in a new process group, with its stdout and stderr merged
// into one pipe copied to w as the output comes, and waits for it to exit.
// It returns cmd.Wait's error: nil for exit status 0, an *exec.ExitError
// otherwise. If ctx is done first, Run stops the group (StopGroup) and
// returns an error wrapping context.Cause(ctx).
//
// A failing w does not stop the copying, so the process never blocks on a
// full pipe; its output is then dropped.
func Run(ctx context.Context, cmd *exec.Cmd, w io.Writer) error {
	// Both ends are *os.File, so os/exec starts no copying goroutines and
	// Wait returns when the leader exits, whoever else still holds the pipe.
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating output pipe: %w", err)
	}
	defer pr.Close()
	cmd.Stdout, cmd.Stderr = pw, pw
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	pgid := cmd.Process.Pid

	copied := make(chan struct{})
	go func() {
		defer close(copied)
		copyAll(w, pr)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	select {
	case err = <-exited:
	case <-ctx.Done():
		err = fmt.Errorf("cancelled (%w): %s", context.Cause(ctx), StopGroup(pgid, exited))
	}

	// The task is over when its leader exits: what it left running in its
	// group would otherwise outlive it, unseen.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-copied:
	case <-time.After(drainTimeout):
		pr.Close() // unblocks the reader
		<-copied
	}
	return err
}

// copyAll copies r to w until r ends, and goes on reading (dropping the
// output) once w fails.
func copyAll(w io.Writer, r io.Reader) {
	buf := make([]byte, chunkSize)
	broken := false
	for {
		n, err := r.Read(buf)
		if n > 0 && !broken {
			_, werr := w.Write(buf[:n])
			broken = werr != nil
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && !broken {
				fmt.Fprintf(w, "\nkiln: reading task output: %v\n", err)
			}
			return
		}
	}
}

// StopGroup sends SIGTERM to the process group pgid, gives it KillGrace to
// end, then sends SIGKILL, and says what it did. exited receives the result
// of waiting for the group's leader; StopGroup returns once the leader has
// exited.
func StopGroup(pgid int, exited <-chan error) string {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.NewTimer(KillGrace)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	leaderDone := false
	for {
		select {
		case <-exited:
			leaderDone = true
			exited = nil // received once; a nil channel blocks
		case <-tick.C:
		case <-deadline.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			if !leaderDone {
				<-exited
			}
			return fmt.Sprintf("process group killed (SIGTERM, then SIGKILL after %v)", KillGrace)
		}
		if leaderDone && !groupAlive(pgid) {
			return "process group killed (SIGTERM)"
		}
	}
}
