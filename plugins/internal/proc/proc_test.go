package proc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sh(script string) *exec.Cmd { return exec.Command("/bin/sh", "-c", script) }

func TestRunMergesOutput(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), sh("echo one; echo two >&2; echo three"), &out); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "one\ntwo\nthree\n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestRunExitStatus(t *testing.T) {
	err := Run(context.Background(), sh("exit 4"), &bytes.Buffer{})
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("Run = %v, want an *exec.ExitError with code 4", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("gone") }

// TestRunFailingWriter checks that a process whose output has nowhere to go
// does not block on a full pipe.
func TestRunFailingWriter(t *testing.T) {
	if err := Run(context.Background(), sh("head -c 1000000 /dev/zero"), failingWriter{}); err != nil {
		t.Fatal(err)
	}
}

// TestRunKillsLeftovers checks that what the process leaves running in its
// group is killed when it exits.
func TestRunKillsLeftovers(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	if err := Run(context.Background(), sh("sleep 60 & echo $!"), &out); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run took %v", took)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	waitGone(t, pid)
}

func TestRunCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := Run(ctx, sh("sleep 60 & sleep 60"), &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "process group killed (SIGTERM)") {
		t.Errorf("Run = %v, want a cancelled error saying SIGTERM killed the group", err)
	}
	if took := time.Since(start); took > KillGrace {
		t.Errorf("Run took %v", took)
	}
}

// waitGone waits for pid to be gone or a zombie.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); alive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d still runs", pid)
		}
	}
}

// alive reports whether pid is a live process, a zombie counting as dead.
func alive(pid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return syscall.Kill(pid, 0) == nil // no /proc: zombies count as alive
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	f := bytes.Fields(stat[i+1:])
	return len(f) > 0 && f[0][0] != 'Z' && f[0][0] != 'X'
}
