package worker

import (
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/internal/wire"
)

// TestKilnWorkerCommand runs `kiln worker` as its own process: it runs
// tries through the built-in shell plugin, and SIGTERM stops it gracefully.
func TestKilnWorkerCommand(t *testing.T) {
	h := newHarness(t)
	kw := h.startKilnWorker("--queue", "cli", "--slots", "2", "--name", "cli-worker", "--data", t.TempDir())
	cmd, stderr, exited := kw.cmd, kw.stderr, kw.exited

	bad := newTry("nosuch")
	h.assign("cli", wire.Assignment{TryKey: bad, Plugin: "nosuch"})
	if fin := h.wait(bad, wire.EventFinished, 20*time.Second); fin.Success || !strings.Contains(fin.Error, `unknown plugin "nosuch"`) {
		t.Errorf("unknown plugin: success %v, error %q", fin.Success, fin.Error)
	}

	k := newTry("cli")
	h.assign("cli", wire.Assignment{TryKey: k, Plugin: "shell",
		With: map[string]any{"command": `echo hi; sleep 0.5; echo X=1 > "$KILN_OUTPUT"`}})
	h.wait(k, wire.EventLog, 20*time.Second)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Only once the worker says it is stopping is it sure to take nothing new.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "letting running tasks finish") {
		if time.Now().After(deadline) {
			t.Fatalf("kiln worker did not say it is stopping; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	later := newTry("later")
	h.assign("cli", wire.Assignment{TryKey: later, Plugin: "shell", With: map[string]any{"command": "true"}})
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Errorf("kiln worker exited with %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("kiln worker did not exit after SIGTERM; stderr:\n%s", stderr.String())
	}
	fin := h.wait(k, wire.EventFinished, 5*time.Second)
	if !fin.Success || fin.worker != "cli-worker" || !cmp.Equal(fin.Outputs, map[string]any{"X": "1"}) {
		t.Errorf("finished = success %v, worker %q, outputs %v, error %q", fin.Success, fin.worker, fin.Outputs, fin.Error)
	}
	if evs := h.events(later); len(evs) > 0 {
		t.Errorf("a stopping kiln worker took an assignment: %s", h.summary(later))
	}
}

// kilnWorker is a `kiln worker` process a test started.
type kilnWorker struct {
	cmd    *exec.Cmd
	stderr *plugintest.LogBuffer
	// exited gets Wait's error once; whoever takes it puts it back.
	exited chan error
}

// startKilnWorker runs `kiln worker --nats URL` with the given flags on
// the harness's server, until the test ends.
func (h *harness) startKilnWorker(flags ...string) *kilnWorker {
	h.t.Helper()
	exe := kilnBinary(h.t)
	kw := &kilnWorker{
		cmd:    exec.Command(exe, append([]string{"worker", "--nats", h.url}, flags...)...),
		stderr: &plugintest.LogBuffer{},
		exited: make(chan error, 1),
	}
	kw.cmd.Stderr = kw.stderr
	if err := kw.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() { kw.exited <- kw.cmd.Wait() }()
	h.t.Cleanup(func() {
		kw.cmd.Process.Kill()
		<-kw.exited
	})
	return kw
}
