package host_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
)

// TestCrashingPlugin: a plugin process that panics fails the tasks it was
// running, with the panic in their result and log, and the next task runs
// on a new process.
func TestCrashingPlugin(t *testing.T) {
	h := newHost(t)
	res, log := run(t, h, "crash", host.Request{With: map[string]any{"echo": "first"}})
	if !res.Success || !strings.HasSuffix(log, "\nfirst\n") {
		t.Fatalf("first task: %+v, log %q", res, log)
	}
	firstPid := intAfter(t, log, "pid")

	// A task in flight on the same process when it crashes.
	var blockedLog plugintest.LogBuffer
	blocked := make(chan host.Result, 1)
	go func() {
		res, err := h.Run(context.Background(), "crash", host.Request{With: map[string]any{"block": true}}, &blockedLog)
		if err != nil {
			t.Errorf("blocked Run: %v", err)
		}
		blocked <- res
	}()
	plugintest.WaitFor(t, "blocked task started", 5*time.Second, func() bool { return strings.Contains(blockedLog.String(), "pid=") })

	res, log = run(t, h, "crash", host.Request{With: map[string]any{"panic": true}})
	const panicText = "panic: boom: the crash plugin was asked to panic"
	if res.Success || !strings.HasPrefix(res.Error, "plugin crash crashed: "+panicText) {
		t.Errorf("panicking task: %+v, want an error that starts with the crash and its panic", res)
	}
	// The "pid=" line may be lost with the process: it only ends with the error.
	if !strings.HasSuffix("\n"+log, "\nkiln: "+res.Error+"\n") {
		t.Errorf("panicking task's log %q does not end with its error", log)
	}
	t.Logf("crash report: %s", res.Error)

	select {
	case res := <-blocked:
		if res.Success || !strings.Contains(res.Error, panicText) {
			t.Errorf("task in flight: %+v, want the crash", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("task in flight did not end with the crash")
	}

	res, log = run(t, h, "crash", host.Request{With: map[string]any{"echo": "after"}})
	if !res.Success || !strings.HasSuffix(log, "\nafter\n") {
		t.Fatalf("task after the crash: %+v, log %q", res, log)
	}
	if pid := intAfter(t, log, "pid"); pid == firstPid {
		t.Errorf("task after the crash ran on the crashed process %d", pid)
	}
}

func TestUnknownPlugin(t *testing.T) {
	h := newHost(t)
	var log plugintest.LogBuffer
	_, err := h.Run(context.Background(), "nope", shellCmd("true"), &log)
	if !errors.Is(err, host.ErrUnknownPlugin) {
		t.Errorf("Run(nope) error = %v, want ErrUnknownPlugin", err)
	}
	// A plugin whose process exits at once: the error quotes its stderr.
	_, err = h.Run(context.Background(), "missing", shellCmd("true"), &log)
	if err == nil || !strings.Contains(err.Error(), `unknown plugin "missing"`) {
		t.Errorf("Run(missing) error = %v, want kiln's complaint", err)
	}
	if _, err := h.Describe(context.Background(), "nope"); !errors.Is(err, host.ErrUnknownPlugin) {
		t.Errorf("Describe(nope) error = %v, want ErrUnknownPlugin", err)
	}
}

// TestClose: Close kills the plugin processes and the tasks they run.
func TestClose(t *testing.T) {
	h := host.New(host.Config{Command: command})
	_, log := run(t, h, "shell", shellCmd("echo ppid=$PPID"))
	pluginPid := intAfter(t, log, "ppid")

	var taskLog plugintest.LogBuffer
	done := make(chan host.Result, 1)
	go func() {
		res, _ := h.Run(context.Background(), "shell", shellCmd("sleep 30 & echo child=$!; sleep 30"), &taskLog)
		done <- res
	}()
	plugintest.WaitFor(t, "task started", 5*time.Second, func() bool { return strings.Contains(taskLog.String(), "\nchild=") })
	child := intAfter(t, taskLog.String(), "child")

	start := time.Now()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Close took %v", time.Since(start).Round(time.Millisecond))
	select {
	case res := <-done:
		if res.Success || !strings.Contains(res.Error, "closed") {
			t.Errorf("task in flight: %+v, want a failure saying the host closed", res)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("task in flight did not end")
	}
	plugintest.WaitFor(t, "plugin and task gone", 3*time.Second, func() bool { return processGone(pluginPid) && processGone(child) })

	if _, err := h.Run(context.Background(), "shell", shellCmd("true"), &taskLog); !errors.Is(err, host.ErrClosed) {
		t.Errorf("Run after Close: %v, want ErrClosed", err)
	}
}

// TestLogger: go-plugin's and the plugin's logging reach the host's logger,
// at debug level only.
func TestLogger(t *testing.T) {
	rec := &recordingHandler{}
	h := host.New(host.Config{Command: command, Logger: slog.New(rec)})
	run(t, h, "shell", shellCmd("true"))
	h.Close()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.levels) == 0 {
		t.Error("no log records")
	}
	for _, l := range rec.levels {
		if l != slog.LevelDebug {
			t.Errorf("a record at %v, want all at debug", l)
		}
	}
}

// TestPokeAgain: a sensor's "not yet" reaches the Result, with its reason
// or a default one, as the log's last line.
func TestPokeAgain(t *testing.T) {
	h := newHost(t)
	for _, tt := range []struct{ notYet, wantErr string }{
		{"no file matches /in/*.csv", "no file matches /in/*.csv"},
		{"-", "condition not met yet"},
	} {
		res, log := run(t, h, "crash", host.Request{With: map[string]any{"not_yet": tt.notYet}})
		if res.Success || !res.PokeAgain || res.Error != tt.wantErr {
			t.Errorf("not_yet %q: %+v, want PokeAgain with error %q", tt.notYet, res, tt.wantErr)
		}
		if !strings.HasSuffix(log, "\nkiln: "+tt.wantErr+"\n") {
			t.Errorf("not_yet %q: log %q does not end with the reason", tt.notYet, log)
		}
	}
	res, _ := run(t, h, "crash", host.Request{With: map[string]any{"echo": "x"}})
	if !res.Success || res.PokeAgain {
		t.Errorf("a plain task: %+v, want success without PokeAgain", res)
	}
}

// TestStuckPluginRetired: a task that hangs or logs without end, ignoring
// cancellation, fails alone when its time is up, with a clear message; its
// process takes no new task, and is killed once its other tasks end (after
// a grace period that lets a plugin stop what it was cancelled for).
func TestStuckPluginRetired(t *testing.T) {
	for _, stuck := range []string{"hang", "flood"} {
		t.Run(stuck, func(t *testing.T) {
			h := newHost(t)

			// A well-behaved task on the same process, still running when
			// the stuck one is given up.
			var otherLog plugintest.LogBuffer
			other, stopOther := context.WithCancel(context.Background())
			defer stopOther()
			otherDone := make(chan host.Result, 1)
			go func() {
				res, _ := h.Run(other, "crash", host.Request{With: map[string]any{"block": true}}, &otherLog)
				otherDone <- res
			}()
			plugintest.WaitFor(t, "other task started", 5*time.Second, func() bool { return strings.Contains(otherLog.String(), "pid=") })
			stuckPid := intAfter(t, otherLog.String(), "pid")

			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			var log byteCounter
			start := time.Now()
			res, err := h.Run(ctx, "crash", host.Request{With: map[string]any{stuck: true}}, &log)
			if err != nil {
				t.Fatal(err)
			}
			if res.Success || !strings.Contains(res.Error, "task cancelled: context deadline exceeded") {
				t.Errorf("stuck task: %+v, want a failure saying it was cancelled at its deadline", res)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("stuck task took %v to fail", took)
			}

			res, next := run(t, h, "crash", host.Request{With: map[string]any{"echo": "next"}})
			if !res.Success {
				t.Fatalf("next task: %+v", res)
			}
			if pid := intAfter(t, next, "pid"); pid == stuckPid {
				t.Errorf("next task ran on the retired process %d", pid)
			}
			if processGone(stuckPid) {
				t.Fatal("the retired process was killed while another task still ran on it")
			}

			stopOther()
			<-otherDone
			plugintest.WaitFor(t, "retired process killed", 15*time.Second, func() bool { return processGone(stuckPid) })
		})
	}
}

// byteCounter counts what is written to it, for logs too big to keep.
type byteCounter struct{ n atomic.Int64 }

func (w *byteCounter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}
