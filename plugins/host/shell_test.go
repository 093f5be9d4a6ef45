package host_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/shell"
)

func TestShellResults(t *testing.T) {
	h := newHost(t)
	tests := []struct {
		name     string
		with     map[string]any
		wantOK   bool
		wantCode int // -1: no exit code
		wantLog  string
		wantErr  string
	}{
		{name: "echo", with: map[string]any{"command": "echo hello"}, wantOK: true, wantLog: "hello\n"},
		{name: "exit 3", with: map[string]any{"command": "echo failing; exit 3"}, wantCode: 3,
			wantLog: "failing\nkiln: exit status 3\n", wantErr: "exit status 3"},
		{name: "stdout and stderr in order",
			with:    map[string]any{"command": "echo out1; echo err1 >&2; echo out2; echo err2 >&2; printf end"},
			wantOK:  true,
			wantLog: "out1\nerr1\nout2\nerr2\nend"},
		{name: "other shell", with: map[string]any{"command": "echo $0", "shell": "/bin/bash"},
			wantOK: true, wantLog: "/bin/bash\n"},
		{name: "no command", with: map[string]any{"shell": "/bin/sh"}, wantCode: -1,
			wantLog: "kiln: invalid shell parameters: command is required\n", wantErr: "command is required"},
		{name: "unknown parameter", with: map[string]any{"command": "true", "comand": "x"}, wantCode: -1,
			wantErr: `unknown field "comand"`},
		{name: "shell not found", with: map[string]any{"command": "true", "shell": "/nonexistent/sh"}, wantCode: -1,
			wantErr: "starting /nonexistent/sh"},
		{name: "killed by a signal", with: map[string]any{"command": "kill -9 $$"}, wantCode: -1,
			wantErr: "killed by signal killed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, log := run(t, h, "shell", host.Request{With: tt.with})
			if res.Success != tt.wantOK {
				t.Errorf("Success = %v, want %v (error %q)", res.Success, tt.wantOK, res.Error)
			}
			switch {
			case tt.wantCode == -1 && res.ExitCode != nil:
				t.Errorf("ExitCode = %d, want none", *res.ExitCode)
			case tt.wantCode >= 0 && (res.ExitCode == nil || *res.ExitCode != tt.wantCode):
				t.Errorf("ExitCode = %v, want %d", res.ExitCode, tt.wantCode)
			}
			if tt.wantLog != "" && log != tt.wantLog {
				t.Errorf("log = %q, want %q", log, tt.wantLog)
			}
			if !strings.Contains(res.Error, tt.wantErr) || (tt.wantErr == "") != (res.Error == "") {
				t.Errorf("Error = %q, want it to contain %q", res.Error, tt.wantErr)
			}
		})
	}
}

func TestShellEnvAndWorkdir(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The task's environment is the request's plus `env`, and nothing of the
	// plugin's own (such as go-plugin's magic cookie).
	res, log := run(t, h, "shell", host.Request{
		With: map[string]any{
			"command": `echo "$FROM_REQ|$FROM_WITH|$NUM|$FLAG|$OVERRIDE|${KILN_STAGE_PLUGIN:-unset}"; pwd`,
			"env":     map[string]any{"FROM_WITH": "w", "NUM": 1.5, "FLAG": true, "OVERRIDE": "with"},
			"workdir": "sub",
		},
		Env:     []string{"FROM_REQ=r", "OVERRIDE=req", "PATH=/usr/bin:/bin"},
		WorkDir: dir,
	})
	want := "r|w|1.5|true|with|unset\n" + filepath.Join(dir, "sub") + "\n"
	if !res.Success || log != want {
		t.Errorf("got %+v, log %q; want success, log %q", res, log, want)
	}

	// Without `workdir`, the request's directory.
	res, log = run(t, h, "shell", host.Request{With: map[string]any{"command": "pwd"}, WorkDir: dir})
	if !res.Success || log != dir+"\n" {
		t.Errorf("got %+v, log %q; want success, log %q", res, log, dir+"\n")
	}

	// A directory that is not there fails the task, not the host.
	res, _ = run(t, h, "shell", host.Request{With: map[string]any{"command": "pwd", "workdir": "/nonexistent"}})
	if res.Success || !strings.Contains(res.Error, "/nonexistent") {
		t.Errorf("missing workdir: got %+v, want a failure naming it", res)
	}
}

// TestShellCancelKillsGroup cancels a task whose shell has a background
// child: the whole process group must die at once, not just the shell.
func TestShellCancelKillsGroup(t *testing.T) {
	h := newHost(t)
	tests := []struct {
		name    string
		command string
		within  time.Duration
	}{
		{"SIGTERM", `sleep 30 & echo child=$!; echo shell=$$; sleep 30`, time.Second},
		// A group that ignores SIGTERM gets SIGKILL after the grace period.
		{"SIGKILL", `trap "" TERM; sleep 30 & echo child=$!; echo shell=$$; sleep 30`, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var log plugintest.LogBuffer
			done := make(chan host.Result, 1)
			go func() {
				res, err := h.Run(ctx, "shell", shellCmd(tt.command), &log)
				if err != nil {
					t.Errorf("Run: %v", err)
				}
				done <- res
			}()
			plugintest.WaitFor(t, "task started", 5*time.Second, func() bool { return strings.Contains(log.String(), "\nshell=") })
			child, sh := intAfter(t, log.String(), "child"), intAfter(t, log.String(), "shell")

			start := time.Now()
			cancel()
			var res host.Result
			select {
			case res = <-done:
			case <-time.After(time.Second):
				t.Fatal("Run did not return within 1s of the cancel")
			}
			if res.Success || !strings.Contains(res.Error, "cancelled") {
				t.Errorf("result %+v, want a failure that says cancelled", res)
			}
			if !strings.HasSuffix(log.String(), "kiln: "+res.Error+"\n") {
				t.Errorf("log %q does not end with the result's error", log.String())
			}
			plugintest.WaitFor(t, "shell and its child killed", tt.within, func() bool { return processGone(sh) && processGone(child) })
			t.Logf("group gone %v after the cancel", time.Since(start).Round(time.Millisecond))

			// The next task finds the plugin unharmed.
			res, out := run(t, h, "shell", shellCmd("echo still here"))
			if !res.Success || out != "still here\n" {
				t.Errorf("next task: %+v, log %q", res, out)
			}
		})
	}
}

// countingWriter counts a task's log and checks it without keeping it.
type countingWriter struct {
	n, maxChunk int
	bad         bool // a byte other than 'x' or '\n'
	peakHeap    uint64
	nextSample  int
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if bytes.HasPrefix(p, []byte("kiln: running: ")) {
		return len(p), nil // the command, logged first on its own
	}
	w.n += len(p)
	w.maxChunk = max(w.maxChunk, len(p))
	if bytes.Trim(p, "x\n") != nil && len(bytes.Trim(p, "x\n")) > 0 {
		w.bad = true
	}
	if w.n >= w.nextSample {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		w.peakHeap = max(w.peakHeap, ms.HeapInuse)
		w.nextSample += 4 << 20
	}
	return len(p), nil
}

// TestShellLargeOutput streams 50 MiB through the plugin: the host must see
// all of it, in bounded chunks, without its heap growing with it.
func TestShellLargeOutput(t *testing.T) {
	h := newHost(t)
	run(t, h, "shell", shellCmd("true")) // launch first: measure the task only

	const size = 50 << 20
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := &countingWriter{}
	start := time.Now()
	res, err := h.Run(context.Background(), "shell", shellCmd(fmt.Sprintf("yes xxxxxxxxxxxxxxx | head -c %d", size)), w)
	if err != nil || !res.Success {
		t.Fatalf("Run: %+v, %v", res, err)
	}
	elapsed := time.Since(start)
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)

	if w.n != size || w.bad {
		t.Errorf("log: %d bytes (bad bytes: %v), want %d bytes of yes", w.n, w.bad, size)
	}
	if w.maxChunk > 32<<10 {
		t.Errorf("largest log chunk %d bytes, want at most 32 KiB", w.maxChunk)
	}
	peak := int64(w.peakHeap) - int64(before.HeapInuse)
	kept := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("50 MiB in %v (%.0f MiB/s); largest chunk %d B; heap in use: %d MiB before, peak +%d MiB, after +%d MiB",
		elapsed.Round(time.Millisecond), float64(size>>20)/elapsed.Seconds(), w.maxChunk,
		before.HeapInuse>>20, peak>>20, kept>>20)
	if peak > 16<<20 || kept > 4<<20 {
		t.Errorf("heap in use grew by %d MiB at peak and %d MiB after; want it flat", peak>>20, kept>>20)
	}
}

// TestShellReuse: consecutive and concurrent tasks share one plugin process,
// the parent of each task's shell.
func TestShellReuse(t *testing.T) {
	h := newHost(t)
	_, first := run(t, h, "shell", shellCmd("echo ppid=$PPID"))
	_, second := run(t, h, "shell", shellCmd("echo ppid=$PPID"))
	pid := intAfter(t, first, "ppid")
	if got := intAfter(t, second, "ppid"); got != pid {
		t.Fatalf("second task ran under plugin pid %d, first under %d: not reused", got, pid)
	}

	const n = 8
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Go(func() {
			res, log := run(t, h, "shell", shellCmd(fmt.Sprintf("echo task=%d; sleep 0.3; echo ppid=$PPID", i)))
			if !res.Success || intAfter(t, log, "task") != i {
				t.Errorf("task %d: %+v, log %q", i, res, log)
			}
			if got := intAfter(t, log, "ppid"); got != pid {
				t.Errorf("task %d ran under plugin pid %d, want %d", i, got, pid)
			}
		})
	}
	wg.Wait()
	if elapsed := time.Since(start); elapsed > n*300*time.Millisecond {
		t.Errorf("%d concurrent 0.3 s tasks took %v: not run at once", n, elapsed)
	}
}

func TestShellDescribe(t *testing.T) {
	h := newHost(t)
	info, err := h.Describe(context.Background(), "shell")
	if err != nil {
		t.Fatal(err)
	}
	if info.Name != shell.Name || info.Version != shell.Version || !bytes.Equal(info.Schema, shell.Schema) || info.Sensor {
		t.Errorf("Describe = %+v (schema %d bytes), want shell's own", info, len(info.Schema))
	}
}

// TestBuildsAsRun: the builds a host lists are those its tasks report
// running with: the version, and the executable's SHA-256.
func TestBuildsAsRun(t *testing.T) {
	h := host.New(host.Config{Command: command, List: func() []host.Executable {
		return []host.Executable{{Name: "shell", Version: shell.Version, Path: kilnExe}, {Name: "gone", Version: "1.0.0", Path: filepath.Join(t.TempDir(), "nothing")}}
	}})
	t.Cleanup(func() { h.Close() })
	res, _ := run(t, h, "shell", shellCmd("true"))
	want := map[string]host.Build{"shell": res.Build, "gone": {Version: "1.0.0"}}
	if got := h.Builds(); !maps.Equal(want, got) || len(res.Build.SHA256) != 64 {
		t.Errorf("Builds = %+v, want %+v, as the try ran with", got, want)
	}
}

// TestShellLeftovers: a task is over when its shell exits; what it left
// running in its process group is killed rather than holding the task open.
func TestShellLeftovers(t *testing.T) {
	h := newHost(t)
	start := time.Now()
	res, log := run(t, h, "shell", shellCmd("sleep 30 & echo child=$!"))
	if !res.Success || time.Since(start) > 2*time.Second {
		t.Errorf("got %+v after %v; want success at once", res, time.Since(start))
	}
	child := intAfter(t, log, "child")
	plugintest.WaitFor(t, "background child killed", 2*time.Second, func() bool { return processGone(child) })
}
