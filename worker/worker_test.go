package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
)

func TestRunsATry(t *testing.T) {
	h := newHarness(t)
	var seen host.Request
	fr := &fakeRunner{hook: func(_ string, req host.Request, log io.Writer) {
		seen = req
		io.WriteString(log, "hello\n")
	}}
	h.start(Config{Runner: fr, Name: "w1", BaseEnv: []string{"PATH=/bin", "KILN_DAG_ID=stale"}})
	k := newTry("t")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true", With: map[string]any{"x": "y"},
		Env: map[string]string{"KILN_DAG_ID": "dag", "A": "1"}})
	fin := h.wait(k, wire.EventFinished, 10*time.Second)

	if !fin.Success || fin.Error != "" || fin.ExitCode == nil || *fin.ExitCode != 0 {
		t.Errorf("finished = success %v, exit %v, error %q; want a success with exit code 0", fin.Success, fin.ExitCode, fin.Error)
	}
	if fin.worker != "w1" {
		t.Errorf("worker = %q, want w1", fin.worker)
	}
	if fin.LogBytes != 6 || fin.LogSent != 6 {
		t.Errorf("log bytes/sent = %d/%d, want 6/6", fin.LogBytes, fin.LogSent)
	}
	var kinds []wire.EventKind
	for _, e := range h.events(k) {
		kinds = append(kinds, e.Kind)
	}
	if diff := cmp.Diff([]wire.EventKind{wire.EventStarted, wire.EventLog, wire.EventFinished}, kinds); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if got := string(logOf(t, h.events(k))); got != "hello\n" {
		t.Errorf("log = %q", got)
	}
	out := envValue(seen.Env, "KILN_OUTPUT")
	wantEnv := []string{"PATH=/bin", "KILN_DAG_ID=dag", "A=1", "KILN_OUTPUT=" + out, "KILN_WORKDIR=" + seen.WorkDir, "KILN_PROJECT_DIR=" + envValue(seen.Env, "KILN_PROJECT_DIR"), "KILN_WORKER=w1"}
	if diff := cmp.Diff(wantEnv, seen.Env); diff != "" || out == "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	// The task's own part: without the worker's PATH, the assignment's
	// env in name order.
	wantTaskEnv := append([]string{"A=1", "KILN_DAG_ID=dag"}, wantEnv[3:]...)
	if diff := cmp.Diff(wantTaskEnv, seen.TaskEnv); diff != "" {
		t.Errorf("task env (-want +got):\n%s", diff)
	}
	if !filepath.IsAbs(seen.WorkDir) || filepath.Dir(seen.WorkDir) != h.dataDir() {
		t.Errorf("working directory %q, want a folder of the data folder %s", seen.WorkDir, h.dataDir())
	}
	if seen.Try != k.String() || seen.With["x"] != "y" {
		t.Errorf("request = %+v", seen)
	}
}

// TestTasksDoNotInheritSecrets: a worker's own KILN_SECRET_* variables do
// not reach its tasks (in kiln standalone the in-process workers share the
// server's environment); a task gets a secret only through its DAG's env.
func TestTasksDoNotInheritSecrets(t *testing.T) {
	t.Setenv("KILN_SECRET_DB", "db-pass-42")
	t.Setenv("KILN_TEST_PLAIN", "kept")
	h := newHarness(t)
	var seen host.Request
	h.start(Config{Runner: &fakeRunner{hook: func(_ string, req host.Request, _ io.Writer) { seen = req }}})
	k := newTry("env")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true", Env: map[string]string{"DB": "db-pass-42"}, Mask: []string{"db-pass-42"}})
	h.wait(k, wire.EventFinished, 10*time.Second)
	if v := envValue(seen.Env, "KILN_SECRET_DB"); v != "" {
		t.Errorf("task saw KILN_SECRET_DB=%q", v)
	}
	if envValue(seen.Env, "KILN_TEST_PLAIN") != "kept" || envValue(seen.Env, "DB") != "db-pass-42" {
		t.Errorf("env = %v, want the worker's other variables and the DAG's env", seen.Env)
	}
}

func TestFailureAndPanic(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	for _, tc := range []struct {
		plugin, err string
		code        *int
	}{
		{"fail", "exit status 3", ptr(3)},
		{"panic", "running plugin panic: panic: boom", nil},
		{"nosuch", `unknown plugin "nosuch"`, nil},
	} {
		k := newTry(tc.plugin)
		h.assign("default", wire.Assignment{TryKey: k, Plugin: tc.plugin})
		fin := h.wait(k, wire.EventFinished, 10*time.Second)
		if fin.Success || fin.Error != tc.err || !cmp.Equal(fin.ExitCode, tc.code) {
			t.Errorf("%s: finished = success %v, exit %v, error %q; want error %q, exit %v",
				tc.plugin, fin.Success, fin.ExitCode, fin.Error, tc.err, tc.code)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestSlotsBoundConcurrency checks that a worker never runs more tries
// than it has slots, from what it reports, and also never holds more
// assignments than that: the rest stay in the stream.
func TestSlotsBoundConcurrency(t *testing.T) {
	h := newHarness(t)
	fr := &fakeRunner{}
	h.start(Config{Runner: fr, Slots: 2})
	var keys []wire.TryKey
	for range 5 {
		k := newTry("sleep")
		keys = append(keys, k)
		h.assign("default", wire.Assignment{TryKey: k, Plugin: "sleep", With: map[string]any{"ms": 300}})
	}
	h.wait(keys[0], wire.EventStarted, 10*time.Second)
	h.wait(keys[1], wire.EventStarted, 10*time.Second)
	// A try's ack is confirmed while its started event goes out, so the
	// stream may count one as unacked a moment after it started; none of
	// the other three may leave it.
	deadline := time.Now().Add(5 * time.Second)
	for info := h.consumerInfo("default"); info.NumPending != 3 || info.NumAckPending != 0; info = h.consumerInfo("default") {
		if info.NumPending < 3 || time.Now().After(deadline) {
			t.Fatalf("while 2 run: %d assignments pending, %d delivered and unacked; want 3 and 0 (the worker holds none it cannot run)",
				info.NumPending, info.NumAckPending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, k := range keys {
		h.wait(k, wire.EventFinished, 10*time.Second)
	}
	if got := maxConcurrent(h.events(wire.TryKey{})); got != 2 {
		t.Errorf("at most %d tries ran at once, by the events; want 2", got)
	}
	if got := fr.maxRunning.Load(); got != 2 {
		t.Errorf("at most %d tries ran at once, by the runner; want 2", got)
	}

	// No slot leaked: two more still run side by side.
	more := []wire.TryKey{newTry("sleep"), newTry("sleep")}
	for _, k := range more {
		h.assign("default", wire.Assignment{TryKey: k, Plugin: "sleep", With: map[string]any{"ms": 300}})
	}
	var evs []received
	for _, k := range more {
		h.wait(k, wire.EventFinished, 10*time.Second)
		evs = append(evs, h.events(k)...)
	}
	if got := maxConcurrent(evs); got != 2 {
		t.Errorf("after a batch, %d of 2 new tries ran at once; want 2", got)
	}
}

// maxConcurrent is the most tries running at once by the worker's clock:
// from started to finished.
func maxConcurrent(evs []received) int {
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, e := range evs {
		switch e.Kind {
		case wire.EventStarted:
			edges = append(edges, edge{e.Time, +1})
		case wire.EventFinished:
			edges = append(edges, edge{e.Time, -1})
		}
	}
	slices.SortFunc(edges, func(a, b edge) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.d - b.d // an end before a start at the same instant
	})
	n, most := 0, 0
	for _, e := range edges {
		n += e.d
		most = max(most, n)
	}
	return most
}

func TestHeartbeatsWhileRunning(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	k := newTry("sleep")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "sleep", With: map[string]any{"ms": 600}, Heartbeat: 50 * time.Millisecond})
	h.wait(k, wire.EventFinished, 10*time.Second)
	evs := h.events(k)
	beats := 0
	for i, e := range evs {
		if e.Kind == wire.EventHeartbeat {
			beats++
			if i == 0 || i == len(evs)-1 {
				t.Errorf("a heartbeat at position %d of %d: outside started..finished", i, len(evs))
			}
		}
	}
	if beats < 6 {
		t.Errorf("%d heartbeats in 600 ms at a 50 ms interval, want at least 6", beats)
	}
}

func TestLogChunksReassemble(t *testing.T) {
	h := newHarness(t)
	var want bytes.Buffer
	fr := &fakeRunner{hook: func(_ string, _ host.Request, log io.Writer) {
		// Writes of all sizes, some with pauses so that the timer flushes.
		size := 1
		for want.Len() < 3<<20 {
			p := make([]byte, size)
			fillPattern(p, want.Len())
			want.Write(p)
			log.Write(p)
			size = size*7%150_000 + 1
			if want.Len()%5 == 0 {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}}
	h.start(Config{Runner: fr})
	k := newTry("log")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true", LogLimit: 10 << 20})
	fin := h.wait(k, wire.EventFinished, 30*time.Second)
	got := logOf(t, h.events(k))
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("reassembled log differs: %d bytes, want %d", len(got), want.Len())
	}
	if fin.LogBytes != int64(want.Len()) || fin.LogSent != int64(want.Len()) {
		t.Errorf("log bytes/sent = %d/%d, want %d", fin.LogBytes, fin.LogSent, want.Len())
	}
}

// TestLogFlushesWhileRunning checks that a line of log reaches the
// scheduler while the task still runs, not only at its end.
func TestLogFlushesWhileRunning(t *testing.T) {
	h := newHarness(t)
	k := newTry("log")
	sawLine := make(chan struct{})
	var waited atomic.Bool
	fr := &fakeRunner{hook: func(_ string, _ host.Request, log io.Writer) {
		io.WriteString(log, "first line\n")
		select {
		case <-sawLine:
		case <-time.After(5 * time.Second):
			waited.Store(true)
		}
	}}
	h.start(Config{Runner: fr})
	start := time.Now()
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
	ev := h.wait(k, wire.EventLog, 10*time.Second)
	close(sawLine)
	h.wait(k, wire.EventFinished, 10*time.Second)
	if waited.Load() {
		t.Fatal("the first line of log arrived only after the task ended")
	}
	t.Logf("first line arrived %s after the assignment was published", ev.at.Sub(start))
}

func TestLogLimit(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	const limit, total = 1 << 20, 5<<20 + 123
	k := newTry("print")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "print", LogLimit: limit,
		With: map[string]any{"bytes": total, "chunk": 50_000}})
	fin := h.wait(k, wire.EventFinished, 30*time.Second)
	note := fmt.Sprintf("\n[kiln: log truncated: %d bytes over the %d-byte limit were dropped]\n", total-limit, limit)
	if fin.LogBytes != total || fin.LogSent != int64(limit+len(note)) {
		t.Errorf("log bytes/sent = %d/%d, want %d/%d", fin.LogBytes, fin.LogSent, total, limit+len(note))
	}
	got := logOf(t, h.events(k))
	want := make([]byte, limit)
	fillPattern(want, 0)
	want = append(want, note...)
	if !bytes.Equal(got, want) {
		t.Errorf("log: %d bytes ending %q, want %d ending %q", len(got), tail(got), len(want), tail(want))
	}
}

func tail(b []byte) string { return string(b[max(0, len(b)-100):]) }

// TestLogMemoryFlat prints 200 MB and checks the worker's heap does not
// grow with it.
func TestLogMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("prints 200 MB")
	}
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	base, peak := sampleHeap(t)
	k := newTry("print")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "print", LogLimit: 1 << 20,
		With: map[string]any{"bytes": 200 << 20, "chunk": 32 << 10}})
	fin := h.wait(k, wire.EventFinished, 60*time.Second)
	if fin.LogBytes != 200<<20 {
		t.Errorf("log bytes = %d, want %d", fin.LogBytes, 200<<20)
	}
	grew := int64(peak()) - int64(base)
	t.Logf("live heap: %.1f MB before, peak %.1f MB while printing 200 MB", mb(base), mb(base+uint64(max(grew, 0))))
	if grew > 16<<20 {
		t.Errorf("live heap grew by %.1f MB while the task printed 200 MB", mb(uint64(grew)))
	}
}

// sampleHeap samples the live heap (as the last garbage collection found
// it) every 5 ms until the test ends; peak returns the highest sample so
// far. Garbage not yet collected does not count: flat means nothing is
// retained in proportion to the work.
func sampleHeap(t testing.TB) (base uint64, peak func() uint64) {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	base = read()
	var top atomic.Uint64
	top.Store(base)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if v := read(); v > top.Load() {
				top.Store(v)
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	return base, top.Load
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

// TestOutputsMasked: a secret a task writes to $KILN_OUTPUT is masked
// before the outputs leave the worker, as in its log, wherever it sits.
func TestOutputsMasked(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	for _, tc := range []struct {
		name, content string
		want          map[string]any
	}{
		{"lines", "leak=db-pass-42\nurl=postgres://u:db-pass-42@h/db\nok=1\n",
			map[string]any{"leak": "***", "url": "postgres://u:***@h/db", "ok": "1"}},
		{"json", `{"nested": {"list": ["db-pass-42", 1]}, "db-pass-42": true}`,
			map[string]any{"nested": map[string]any{"list": []any{"***", 1.0}}, "***": true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newTry("masked")
			h.assign("default", wire.Assignment{TryKey: k, Plugin: "outputs", Mask: []string{"db-pass-42"},
				With: map[string]any{"content": tc.content}})
			fin := h.wait(k, wire.EventFinished, 10*time.Second)
			if diff := cmp.Diff(tc.want, fin.Outputs); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutputs(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}, Slots: 4})
	for _, tc := range []struct {
		name, content string
		want          map[string]any
		err           string // a substring of the finished event's error
	}{
		{name: "lines", content: "A=1\nB=x=y\n\n# note\nC=\n", want: map[string]any{"A": "1", "B": "x=y", "C": ""}},
		{name: "json", content: ` {"n": 3, "s": "v", "l": [1, "a"]}` + "\n", want: map[string]any{"n": 3.0, "s": "v", "l": []any{1.0, "a"}}},
		{name: "none", content: ""},
		{name: "at limit", content: "K=" + strings.Repeat("v", MaxOutputBytes-3) + "\n", want: map[string]any{"K": strings.Repeat("v", MaxOutputBytes-3)}},
		{name: "oversized", content: "K=" + strings.Repeat("v", MaxOutputBytes) + "\n", err: "$KILN_OUTPUT holds 65539 bytes; a task's outputs are limited to 65536 bytes"},
		{name: "malformed", content: "A=1\njust words\n", err: `line 2: want KEY=VALUE or one JSON object, got "just words"`},
		{name: "bad json", content: `{"a": }`, err: "not a valid JSON object"},
		{name: "two json", content: `{"a": 1} {"b": 2}`, err: "more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newTry("outputs")
			h.assign("default", wire.Assignment{TryKey: k, Plugin: "outputs", With: map[string]any{"content": tc.content}})
			fin := h.wait(k, wire.EventFinished, 10*time.Second)
			if tc.err != "" {
				if fin.Success || !strings.Contains(fin.Error, tc.err) {
					t.Errorf("finished = success %v, error %q; want a failure with %q", fin.Success, fin.Error, tc.err)
				}
				if log := string(logOf(t, h.events(k))); !strings.Contains(log, tc.err) {
					t.Errorf("log %q does not say %q", log, tc.err)
				}
				return
			}
			if !fin.Success || fin.Error != "" {
				t.Errorf("finished = success %v, error %q", fin.Success, fin.Error)
			}
			if diff := cmp.Diff(tc.want, fin.Outputs); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	k := newTry("block")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "block", Timeout: 300 * time.Millisecond})
	start := h.wait(k, wire.EventStarted, 10*time.Second)
	fin := h.wait(k, wire.EventFinished, 10*time.Second)
	if fin.Success || fin.Error != "timed out after 300ms" {
		t.Errorf("finished = success %v, error %q; want a failure %q", fin.Success, fin.Error, "timed out after 300ms")
	}
	if took := fin.Time.Sub(start.Time); took < 300*time.Millisecond || took > 1300*time.Millisecond {
		t.Errorf("finished %s after it started, want about 300ms", took)
	}
}

func TestCancel(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	k, other := newTry("block"), newTry("block")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "block"})
	h.assign("default", wire.Assignment{TryKey: other, Plugin: "block", Timeout: time.Second})
	h.wait(k, wire.EventStarted, 10*time.Second)
	h.wait(other, wire.EventStarted, 10*time.Second)
	h.cancel(newTry("unknown"), "not this worker's") // ignored
	h.cancel(k, "cleared by alice")
	fin := h.wait(k, wire.EventFinished, 5*time.Second)
	if fin.Success || fin.Error != "cancelled: cleared by alice" {
		t.Errorf("finished = success %v, error %q", fin.Success, fin.Error)
	}
	// The other try ends all the same, at its timeout: that it says why
	// shows whether the cancel reached it.
	if fin := h.wait(other, wire.EventFinished, 10*time.Second); fin.Error != "timed out after 1s" {
		t.Errorf("the other try ended with %q, want its own timeout: cancelling one try ended another", fin.Error)
	}
}

// TestGracefulStop stops a worker while a try runs: the try finishes and
// is reported, Run returns only then, and an assignment published after
// the stop stays queued for another worker.
func TestGracefulStop(t *testing.T) {
	h := newHarness(t)
	rw := h.start(Config{Runner: &fakeRunner{}, Slots: 2})
	running, later := newTry("sleep"), newTry("later")
	h.assign("default", wire.Assignment{TryKey: running, Plugin: "sleep", With: map[string]any{"ms": 500}})
	h.wait(running, wire.EventStarted, 10*time.Second)

	rw.cancel()
	h.assign("default", wire.Assignment{TryKey: later, Plugin: "true"})
	var returned time.Time
	select {
	case err := <-rw.done:
		returned = time.Now()
		rw.done <- err // for the cleanup's stop
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the running try finished")
	}
	fin := h.wait(running, wire.EventFinished, 5*time.Second)
	if !fin.Success {
		t.Errorf("the running try ended with %q", fin.Error)
	}
	if fin.Time.After(returned) {
		t.Errorf("Run returned %s before the running try was reported finished", fin.Time.Sub(returned))
	}
	// A worker confirms its ack of an assignment, which removes it from
	// the stream, before it runs it, and Run has returned: had the
	// stopping worker taken the later one, it would be gone by now.
	st, err := h.js.Stream(h.ctx, wire.TasksStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("a stopping worker took an assignment: the tasks stream holds %d, want the later one; its events: %s",
			info.State.Msgs, h.summary(later))
	}

	// The assignment is still queued, and not waiting out an ack timeout:
	// the next worker gets it at once.
	start := time.Now()
	h.start(Config{Runner: &fakeRunner{}})
	h.wait(later, wire.EventFinished, 5*time.Second)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("the next worker got the assignment after %s", took)
	}
}

func TestWorkersShareAQueue(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}, Name: "w1", Slots: 1})
	h.start(Config{Runner: &fakeRunner{}, Name: "w2", Slots: 1})
	var keys []wire.TryKey
	for range 6 {
		k := newTry("sleep")
		keys = append(keys, k)
		h.assign("default", wire.Assignment{TryKey: k, Plugin: "sleep", With: map[string]any{"ms": 150}})
	}
	by := map[string]int{}
	for _, k := range keys {
		by[h.wait(k, wire.EventFinished, 10*time.Second).worker]++
	}
	if by["w1"] == 0 || by["w2"] == 0 || by["w1"]+by["w2"] != 6 {
		t.Errorf("tries by worker = %v, want both to run some of the 6", by)
	}
	for _, name := range []string{"w1", "w2"} {
		var mine []received
		for _, e := range h.events(wire.TryKey{}) {
			if e.worker == name {
				mine = append(mine, e)
			}
		}
		if got := maxConcurrent(mine); got > 1 {
			t.Errorf("%s ran %d tries at once with 1 slot", name, got)
		}
	}
}

func TestQueuesAreSeparate(t *testing.T) {
	h := newHarness(t)
	// One slot: the worker runs one try at a time, reports it finished
	// before it frees the slot, and gives the slot to the pull that has
	// waited longest. Had it pulled from default too, it would have got
	// cpu, stored first, before gpu (one consumer over both subjects
	// delivers in stream order) or before gpu2 (a default pull waits for
	// the slot from the start): cpu's events would come before gpu2's.
	h.start(Config{Runner: &fakeRunner{}, Queues: []string{"gpu"}, Slots: 1})
	cpu, gpu, gpu2 := newTry("cpu"), newTry("gpu"), newTry("gpu")
	h.assign("default", wire.Assignment{TryKey: cpu, Plugin: "true"})
	h.assign("gpu", wire.Assignment{TryKey: gpu, Plugin: "true"})
	h.wait(gpu, wire.EventFinished, 10*time.Second)
	h.assign("gpu", wire.Assignment{TryKey: gpu2, Plugin: "true"})
	h.wait(gpu2, wire.EventFinished, 10*time.Second)
	if evs := h.events(cpu); len(evs) > 0 {
		t.Fatalf("a gpu worker ran a default task: %s", h.summary(cpu))
	}
	if _, err := wire.EnsureTaskConsumer(h.ctx, h.js, "default"); err != nil {
		t.Fatal(err)
	}
	if info := h.consumerInfo("default"); info.NumPending != 1 {
		t.Errorf("default queue: %d pending, want the 1 assignment", info.NumPending)
	}
}

// TestSeveralQueuesShareSlots runs a worker of two queues with two slots:
// a busy queue gets the slots the idle one does not use, the idle one is
// still served, and the slots bound both together.
func TestSeveralQueuesShareSlots(t *testing.T) {
	h := newHarness(t)
	fr := &fakeRunner{}
	h.start(Config{Runner: fr, Queues: []string{"default", "gpu"}, Slots: 2})
	var keys []wire.TryKey
	for range 6 {
		k := newTry("busy")
		keys = append(keys, k)
		h.assign("default", wire.Assignment{TryKey: k, Plugin: "sleep", With: map[string]any{"ms": 200}})
	}
	g := newTry("gpu")
	h.assign("gpu", wire.Assignment{TryKey: g, Plugin: "sleep", With: map[string]any{"ms": 200}})
	for _, k := range append(keys, g) {
		h.wait(k, wire.EventFinished, 20*time.Second)
	}
	if got := fr.maxRunning.Load(); got != 2 {
		t.Errorf("at most %d tries ran at once, want 2", got)
	}
}

func TestMalformedAssignmentIsDropped(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	if _, err := h.js.Publish(h.ctx, wire.TaskSubject("default"), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := h.js.Publish(h.ctx, wire.TaskSubject("default"), []byte(`{"dag_id":"d","plugin":"true"}`)); err != nil {
		t.Fatal(err)
	}
	k := newTry("good")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
	h.wait(k, wire.EventFinished, 10*time.Second)
	h.waitSettled("default") // the bad assignments were dropped
}

// TestUnreportableTryNotRun: a try whose DAG id cannot stand in an event
// subject is dropped without running, since its worker could never report
// it; before, it ran and held a slot for good.
func TestUnreportableTryNotRun(t *testing.T) {
	h := newHarness(t)
	var ran sync.Map
	h.start(Config{Runner: &fakeRunner{hook: func(_ string, req host.Request, _ io.Writer) { ran.Store(req.Try, true) }}})
	var bad []wire.TryKey
	for _, id := range []string{"x.", ".x", "..", "a..b", "a b", "a*", "a>"} {
		k := wire.TryKey{DAGID: id, RunID: "manual__1", TaskID: "t", Try: 1}
		bad = append(bad, k)
		h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
	}
	good := newTry("good")
	h.assign("default", wire.Assignment{TryKey: good, Plugin: "true"})
	h.wait(good, wire.EventFinished, 10*time.Second)
	h.waitSettled("default")
	// Every assignment has been taken and settled: the bad ones did not run.
	for _, k := range bad {
		if _, ok := ran.Load(k.String()); ok {
			t.Errorf("try %s ran", k)
		}
	}
}

// TestWorkerBeforeServer starts a worker before its NATS server exists.
func TestWorkerBeforeServer(t *testing.T) {
	h := newHarness(t)
	port := h.srv.Addr().String()
	h.srv.Shutdown() // the harness's server goes away; a new one comes later
	h.start(Config{Runner: &fakeRunner{}, NATSURL: "nats://" + port, Name: "early"})
	awaitDial(t, port, "kiln-worker early") // the scenario: the worker waits for a server
	h.startServer(port)
	k := newTry("late")
	deadline := time.Now().Add(10 * time.Second)
	for { // the harness's own connection needs to come back first
		ctx, cancel := context.WithTimeout(h.ctx, time.Second)
		_, err := h.js.Stream(ctx, wire.TasksStream)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness did not reconnect: %v", err)
		}
	}
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
	h.wait(k, wire.EventFinished, 15*time.Second)
}

// awaitDial stands in for a NATS server at addr until the connection
// named name has dialed it, and closes every connection after reading
// its CONNECT: the dialer found no server there.
func awaitDial(t *testing.T, addr, name string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	ln.(*net.TCPListener).SetDeadline(deadline)
	for {
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("waiting for %s to dial %s: %v", name, addr, err)
		}
		c.SetDeadline(deadline)
		_, err = io.WriteString(c, "INFO {\"server_id\":\"stand-in\",\"proto\":1,\"max_payload\":1048576}\r\n")
		var line string
		if err == nil {
			line, err = bufio.NewReader(c).ReadString('\n')
		}
		c.Close()
		var connect struct {
			Name string `json:"name"`
		}
		if rest, ok := strings.CutPrefix(line, "CONNECT "); err == nil && ok &&
			json.Unmarshal([]byte(rest), &connect) == nil && connect.Name == name {
			return
		}
	}
}

// TestWorkerWaitsForTheStreams starts a worker before the scheduler has
// created the streams: it creates none itself (a worker's NATS permissions
// would not let it), waits, and runs what is assigned once they exist.
func TestWorkerWaitsForTheStreams(t *testing.T) {
	h := newBareHarness(t)
	logs := &plugintest.LogBuffer{}
	h.start(Config{Runner: &fakeRunner{}, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	waitFor(t, func() bool {
		return strings.Contains(logs.String(), "waiting for the scheduler to create stream KILN_TASKS")
	})
	for _, name := range []string{wire.TasksStream, wire.EventsStream} {
		if _, err := h.js.Stream(h.ctx, name); !errors.Is(err, jetstream.ErrStreamNotFound) {
			t.Fatalf("stream %s: %v, want not found: the worker must not create it", name, err)
		}
	}
	h.createStreams()
	k := newTry("late")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
	h.wait(k, wire.EventFinished, 15*time.Second)
}

// TestServerRestart restarts NATS under a running worker: it reconnects
// and pulls again.
func TestServerRestart(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: &fakeRunner{}})
	first := newTry("before")
	h.assign("default", wire.Assignment{TryKey: first, Plugin: "true"})
	h.wait(first, wire.EventFinished, 10*time.Second)

	addr := h.srv.Addr().String()
	h.srv.Shutdown()
	h.startServer(addr)
	k := newTry("after")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(h.ctx, time.Second)
		_, err := h.js.Stream(ctx, wire.TasksStream)
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness did not reconnect: %v", err)
		}
	}
	start := h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
	fin := h.wait(k, wire.EventFinished, 15*time.Second)
	t.Logf("after the restart the try finished %s after it was published", fin.at.Sub(start))
}

func TestConfigChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"no runner", Config{NATSURL: "nats://x"}, "no Runner"},
		{"no url", Config{Runner: &fakeRunner{}}, "no NATS URL"},
		{"bad queue", Config{Runner: &fakeRunner{}, NATSURL: "nats://x", Queues: []string{"a.b"}}, `invalid queue "a.b"`},
		{"bad slots", Config{Runner: &fakeRunner{}, NATSURL: "nats://x", Slots: -1}, "need at least 1"},
		{"bad name", Config{Runner: &fakeRunner{}, NATSURL: "nats://x", Name: "host.example.com"}, `invalid worker name "host.example.com"`},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: New = %v, want an error with %q", tc.name, err, tc.err)
		}
	}
	w, err := New(Config{Runner: &fakeRunner{}, NATSURL: "nats://x", Queues: []string{"b", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w.cfg.Queues, []string{"a", "b"}) || w.cfg.Slots != DefaultSlots || wire.CheckWorker(w.Name()) != nil {
		t.Errorf("defaults: queues %v, slots %d, name %q", w.cfg.Queues, w.cfg.Slots, w.Name())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := w.Run(ctx); err != nil {
		t.Errorf("Run with an ended context: %v", err)
	}
	if err := w.Run(ctx); err == nil {
		t.Error("a second Run succeeded")
	}
}

// TestCancelBeforeDelivery cancels a try before its assignment reaches the
// worker: the worker takes it and reports it cancelled without running it.
func TestCancelBeforeDelivery(t *testing.T) {
	h := newHarness(t)
	k := newTry("late")
	var ran atomic.Bool
	fr := &fakeRunner{hook: func(_ string, req host.Request, _ io.Writer) {
		if req.Try == k.String() {
			ran.Store(true)
		}
	}}
	h.start(Config{Runner: fr, Queues: []string{"gpu"}})
	// The worker is up once it has run something.
	warm := newTry("warm")
	h.assign("gpu", wire.Assignment{TryKey: warm, Plugin: "true"})
	h.wait(warm, wire.EventFinished, 10*time.Second)

	h.cancel(k, "run deleted")
	h.nc.Flush()
	h.assign("gpu", wire.Assignment{TryKey: k, Plugin: "true"})
	fin := h.wait(k, wire.EventFinished, 10*time.Second)
	if fin.Success || fin.Error != "cancelled: run deleted" {
		t.Errorf("finished = success %v, error %q", fin.Success, fin.Error)
	}
	if ran.Load() {
		t.Error("the cancelled try ran")
	}
}

// TestConsumerDeletedUnderWorker deletes the queue's consumer under a
// running worker: the worker makes the consumer again and runs what is
// assigned next. Deleted while a pull request waits on it, the request is
// refused (409); deleted while every slot is busy, the next request finds
// no consumer to answer it (503).
func TestConsumerDeletedUnderWorker(t *testing.T) {
	name := wire.TaskConsumerName("default")
	pullWaiting := func(h *harness) func() bool {
		return func() bool {
			c, err := h.js.Consumer(h.ctx, wire.TasksStream, name)
			if err != nil {
				return false
			}
			info, err := c.Info(h.ctx)
			return err == nil && info.NumWaiting > 0
		}
	}
	tests := []struct {
		name string
		// deleteConsumer deletes the consumer at the moment the case is
		// about, and returns what lets the worker pull again.
		deleteConsumer func(t *testing.T, h *harness) (resume func())
	}{
		{"while a pull request waits", func(t *testing.T, h *harness) func() {
			waitFor(t, pullWaiting(h))
			if err := h.js.DeleteConsumer(h.ctx, wire.TasksStream, name); err != nil {
				t.Fatal(err)
			}
			return func() {}
		}},
		{"while every slot is busy", func(t *testing.T, h *harness) func() {
			busy := newTry("busy")
			h.assign("default", wire.Assignment{TryKey: busy, Plugin: "block"})
			h.wait(busy, wire.EventStarted, 10*time.Second)
			waitFor(t, func() bool { return !pullWaiting(h)() })
			if err := h.js.DeleteConsumer(h.ctx, wire.TasksStream, name); err != nil {
				t.Fatal(err)
			}
			return func() { h.cancel(busy, "test done with it") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			h.start(Config{Runner: &fakeRunner{}, Slots: 1})
			resume := tt.deleteConsumer(t, h)
			k := newTry("after_delete")
			h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
			resume()
			h.wait(k, wire.EventFinished, 20*time.Second)
		})
	}
}
