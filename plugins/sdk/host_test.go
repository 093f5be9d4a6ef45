package sdk_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
)

func TestDescribe(t *testing.T) {
	h := newHost(t)
	info, err := h.Describe(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	want := host.Info{Name: "sdktest", Version: "1.2.3", Schema: []byte(`{"type":"object"}`), Sensor: true}
	if info.Name != want.Name || info.Version != want.Version || string(info.Schema) != string(want.Schema) || info.Sensor != want.Sensor {
		t.Errorf("Describe = %+v (schema %s), want %+v (schema %s)", info, info.Schema, want, want.Schema)
	}
}

// TestRunOutcomes: Run's error becomes the host's Result and the log's
// last line.
func TestRunOutcomes(t *testing.T) {
	h := newHost(t)
	dir := t.TempDir()
	tests := []struct {
		name      string
		req       host.Request
		wantOK    bool
		wantPoke  bool
		wantCode  int // -1: none
		wantErr   string
		wantLogRE string
	}{
		{name: "success",
			req:    host.Request{With: map[string]any{"do": "succeed"}, Env: []string{"FOO=bar"}, WorkDir: dir, Try: "d/r/t#1"},
			wantOK: true, wantCode: -1,
			wantLogRE: `^pid=\d+\ntry d/r/t#1 in ` + regexp.QuoteMeta(dir) + `, FOO="bar"\n$`},
		{name: "env is the task's only",
			req:    host.Request{With: map[string]any{"do": "succeed"}, WorkDir: dir, Try: "d/r/t#2"},
			wantOK: true, wantCode: -1, wantLogRE: `FOO=""\n$`},
		{name: "failure", req: host.Request{With: map[string]any{"do": "fail"}}, wantCode: -1,
			wantErr: "the thing broke", wantLogRE: `^about to fail\nkiln: the thing broke\n$`},
		{name: "exit code", req: host.Request{With: map[string]any{"do": "exit", "code": 7}}, wantCode: 7,
			wantErr: "exit status 7", wantLogRE: `^kiln: exit status 7\n$`},
		{name: "not yet", req: host.Request{With: map[string]any{"do": "not-yet"}}, wantPoke: true, wantCode: -1,
			wantErr: "no file at /data/in.csv: condition not met yet"},
		{name: "unknown parameter", req: host.Request{With: map[string]any{"do": "succeed", "bogus": 1}}, wantCode: -1,
			wantErr: `invalid parameters: unknown field "bogus"`},
		{name: "wrong type", req: host.Request{With: map[string]any{"do": "exit", "code": "seven"}}, wantCode: -1,
			wantErr: `invalid parameters: code: got a JSON string, want int`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, log := run(t, h, tt.req)
			if res.Success != tt.wantOK || res.PokeAgain != tt.wantPoke {
				t.Errorf("Success, PokeAgain = %v, %v; want %v, %v (error %q)", res.Success, res.PokeAgain, tt.wantOK, tt.wantPoke, res.Error)
			}
			switch {
			case tt.wantCode == -1 && res.ExitCode != nil:
				t.Errorf("ExitCode = %d, want none", *res.ExitCode)
			case tt.wantCode >= 0 && (res.ExitCode == nil || *res.ExitCode != tt.wantCode):
				t.Errorf("ExitCode = %v, want %d", res.ExitCode, tt.wantCode)
			}
			if res.Error != tt.wantErr {
				t.Errorf("Error = %q, want %q", res.Error, tt.wantErr)
			}
			if tt.wantLogRE != "" && !regexp.MustCompile(tt.wantLogRE).MatchString(log) {
				t.Errorf("log = %q, want it to match %q", log, tt.wantLogRE)
			}
		})
	}
}

func TestSetOutputThroughHost(t *testing.T) {
	h := newHost(t)
	out := filepath.Join(t.TempDir(), "out")
	env := []string{"KILN_OUTPUT=" + out}
	for _, kv := range [][2]string{{"rows", "12"}, {"table", "sales"}} {
		res, _ := run(t, h, host.Request{With: map[string]any{"do": "output", "key": kv[0], "value": kv[1]}, Env: env})
		if !res.Success {
			t.Fatalf("setting %s: %+v", kv[0], res)
		}
	}
	res, _ := run(t, h, host.Request{With: map[string]any{"do": "output", "key": "bad key", "value": "x"}, Env: env})
	if res.Success || !strings.Contains(res.Error, "invalid key") {
		t.Errorf("bad key: %+v, want a failure", res)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "rows=12\ntable=sales\n"; string(got) != want {
		t.Errorf("outputs = %q, want %q", got, want)
	}
}

// TestLogOrder: a log of many writes, some larger than a message, arrives
// whole and in order.
func TestLogOrder(t *testing.T) {
	h := newHost(t)
	for _, n := range []int{1, 1000, 20000} {
		res, log := run(t, h, host.Request{With: map[string]any{"do": "lines", "lines": n}})
		if !res.Success {
			t.Fatalf("%d lines: %+v", n, res)
		}
		if want := lines(n); log != want {
			t.Errorf("%d lines: got %d bytes of log, want %d; first difference at byte %d",
				n, len(log), len(want), firstDiff(log, want))
		}
	}
}

// TestConcurrentTasks: tasks running at once on one plugin process each
// get their own log, whole.
func TestConcurrentTasks(t *testing.T) {
	h := newHost(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			n := 500 * (i + 1)
			var log plugintest.LogBuffer
			res, err := h.Run(context.Background(), "test", host.Request{With: map[string]any{"do": "lines", "lines": n}}, &log)
			if err != nil || !res.Success {
				t.Errorf("task %d: %+v, %v", i, res, err)
			}
			if got := log.String(); got != lines(n) {
				t.Errorf("task %d: got %d bytes of log, want %d", i, len(got), len(lines(n)))
			}
		})
	}
	wg.Wait()
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestCancel: cancelling the host's Run cancels Run's ctx in the plugin.
func TestCancel(t *testing.T) {
	h := newHost(t)
	for _, how := range []string{"cancel", "timeout"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if how == "timeout" {
				ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
			}
			var log plugintest.LogBuffer
			done := make(chan host.Result, 1)
			go func() {
				res, err := h.Run(ctx, "test", host.Request{With: map[string]any{"do": "block"}, WorkDir: dir}, &log)
				if err != nil {
					t.Errorf("Run: %v", err)
				}
				done <- res
			}()
			plugintest.WaitFor(t, "task started", 10*time.Second, func() bool { return strings.Contains(log.String(), "blocking") })
			if how == "cancel" {
				cancel()
			}
			select {
			case res := <-done:
				if res.Success || !strings.Contains(res.Error, "cancelled") {
					t.Errorf("Run = %+v, want a cancelled failure", res)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			var got []byte
			plugintest.WaitFor(t, "the plugin's ctx cancelled", 5*time.Second, func() bool {
				got, _ = os.ReadFile(filepath.Join(dir, "cancelled"))
				return len(got) > 0
			})
			if string(got) != "context canceled" {
				t.Errorf("the plugin's ctx ended with %q, want %q", got, "context canceled")
			}
		})
	}
}

// TestPanic: a panic in Run crashes the plugin process, after the log
// written before it reached the host; the host reports the panic and the
// next task runs on a new process.
func TestPanic(t *testing.T) {
	h := newHost(t)
	res, log := run(t, h, host.Request{With: map[string]any{"do": "succeed"}})
	firstPid := pidOf(t, log)
	if !res.Success {
		t.Fatalf("first task: %+v", res)
	}

	res, log = run(t, h, host.Request{With: map[string]any{"do": "panic", "lines": 2000}})
	const panicText = "plugin test crashed: panic: boom: the test stage was asked to panic"
	if res.Success || !strings.HasPrefix(res.Error, panicText) {
		t.Errorf("panicking task: %+v, want an error starting %q", res, panicText)
	}
	if want := lines(2000) + "kiln: " + res.Error + "\n"; log != want {
		t.Errorf("panicking task's log: got %d bytes, want %d (all its lines, then the crash); first difference at byte %d",
			len(log), len(want), firstDiff(log, want))
	}
	t.Logf("crash report: %s", res.Error)

	res, log = run(t, h, host.Request{With: map[string]any{"do": "succeed"}})
	if !res.Success {
		t.Fatalf("task after the crash: %+v", res)
	}
	if pid := pidOf(t, log); pid == firstPid {
		t.Errorf("task after the crash ran on the crashed process %s", pid)
	}
}

func pidOf(t testing.TB, log string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^pid=(\d+)$`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no pid=N line in log %q", log)
	}
	return m[1]
}

// TestMainRejectsBadSchema: Main exits 1, saying why, when the schema is
// not JSON.
func TestMainRejectsBadSchema(t *testing.T) {
	cmd := plugintest.SelfCommand("bad-schema")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1; output %q", err, out)
	}
	if !strings.Contains(string(out), "plugin bad: invalid Schema: not valid JSON") {
		t.Errorf("output %q does not say the schema is not valid JSON", out)
	}
}
