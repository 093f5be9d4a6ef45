package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/store"
)

// The tests in this file drive the scheduler's real loop with a fake
// clock and no NATS: every turn is a command through the loop (inputs
// applied, then the turn's time-driven and scheduling work, the commit,
// and the effects handed to the sender), and the sender records what a
// turn would send. Worker events are applied by hand, and JetStream's
// answers are fed back to the loop as the NATS sender would. End-to-end
// behaviour with real workers is in e2e_test.go.

// fakeClock stands still until a test moves it. Its After never fires:
// the harness drives every turn.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time                       { return c.now }
func (c *fakeClock) After(time.Duration) <-chan time.Time { return nil }

// recorder is the harness's sender: it keeps what the loop sends, and
// answers as JetStream would when every publication is stored and every
// assignment still waits for a worker, except those in gone.
type recorder struct {
	clock *fakeClock
	// delay is how long after the commit JetStream answers a publication.
	delay time.Duration

	mu      sync.Mutex
	gone    map[wire.TryKey]bool
	seq     uint64
	assign  []*wire.Assignment
	cancels []wire.Cancel
	fb      feedback
}

func (r *recorder) send(e effects) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range e.assign {
		r.seq++
		r.assign = append(r.assign, o.a)
		r.fb.published = append(r.fb.published, publishResult{key: o.a.TryKey, gen: o.gen, seq: r.seq, at: r.clock.now.Add(r.delay)})
	}
	r.cancels = append(r.cancels, e.cancels...)
	for _, c := range e.checks {
		r.fb.checked = append(r.fb.checked, checkResult{key: c.key, gen: c.gen, seq: c.seq, pending: !r.gone[c.key]})
	}
}

// take returns what was sent since the last take.
func (r *recorder) take() ([]*wire.Assignment, []wire.Cancel, feedback) {
	r.mu.Lock()
	defer r.mu.Unlock()
	as, cs, fb := r.assign, r.cancels, r.fb
	r.assign, r.cancels, r.fb = nil, nil, feedback{}
	return as, cs, fb
}

type harness struct {
	t     testing.TB
	s     *Scheduler
	clock *fakeClock
	sent  *recorder
	// cancels are what the last turn sent.
	cancels []wire.Cancel
}

var t0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func newHarness(t testing.TB, dags ...string) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: t0}
	s := newScheduler(Config{Store: st, DataDir: dir, Clock: clock, Logger: slog.New(slog.DiscardHandler),
		HeartbeatTimeout: 30 * time.Second, LogLimit: 1 << 20})
	rec := &recorder{clock: clock}
	s.sender = rec
	set := &dag.Set{}
	catalog := plugins.Builtin()
	catalog["fake_sensor"] = &dag.PluginSpec{Name: "fake_sensor", Sensor: true}
	for i, src := range dags {
		d, err := dag.Parse("dag"+string(rune('a'+i))+".yaml", []byte(src), dag.Options{Plugins: catalog})
		if err != nil {
			t.Fatalf("DAG %d: %v", i, err)
		}
		set.DAGs = append(set.DAGs, d)
	}
	s.applySet(set)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.loop(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("loop: %v", err)
		}
		st.Close()
	})
	return &harness{t: t, s: s, clock: clock, sent: rec}
}

// turn runs fn on the loop goroutine as one turn's input. It returns
// the assignments sent, as call does.
func (h *harness) turn(fn func()) []*wire.Assignment {
	h.t.Helper()
	return h.call(func() { h.inLoop(fn) })
}

// call makes a call into the scheduler (its API, or a turn), then feeds
// the answers JetStream would give to what was sent back to the loop in
// the next turn. It returns the assignments sent meanwhile; the cancels
// are in h.cancels.
func (h *harness) call(fn func()) []*wire.Assignment {
	h.t.Helper()
	fn()
	as, cs, fb := h.sent.take()
	h.inLoop(func() { h.s.applyFeedback(fb) })
	more, more2, _ := h.sent.take()
	h.cancels = append(cs, more2...)
	return append(as, more...)
}

// inLoop runs fn in a turn of the loop and waits for the turn's commit.
func (h *harness) inLoop(fn func()) {
	h.t.Helper()
	_, err := h.s.do(context.Background(), func(time.Time) (any, error) {
		if fn != nil {
			fn()
		}
		return nil, nil
	})
	if err != nil {
		h.t.Fatalf("turn: %v", err)
	}
}

func (h *harness) advance(d time.Duration) { h.clock.now = h.clock.now.Add(d) }

// trigger creates a manual run and returns it with the assignments made.
func (h *harness) trigger(dagID string, params map[string]any) (*store.Run, []*wire.Assignment) {
	h.t.Helper()
	var r *store.Run
	var err error
	as := h.call(func() { r, err = h.s.Trigger(context.Background(), dagID, TriggerRequest{Params: params}) })
	if err != nil {
		h.t.Fatalf("trigger %s: %v", dagID, err)
	}
	return r, as
}

// event applies an event of worker w1 about a's try.
func (h *harness) event(a *wire.Assignment, kind wire.EventKind, ok bool, outputs map[string]any) []*wire.Assignment {
	return h.eventFrom("w1", a, kind, ok, outputs)
}

// eventFrom applies an event of the named worker about a's try.
func (h *harness) eventFrom(worker string, a *wire.Assignment, kind wire.EventKind, ok bool, outputs map[string]any) []*wire.Assignment {
	ev := wire.Event{TryKey: a.TryKey, Kind: kind, Time: h.clock.Now(), Success: ok, Outputs: outputs}
	if kind == wire.EventFinished && !ok {
		ev.Error = "exit status 1"
	}
	return h.turn(func() { h.s.applyEvent(eventMsg{ev: ev, worker: worker}) })
}

// run runs an assignment to its end: started, then finished.
// It returns what both turns dispatched.
func (h *harness) run(a *wire.Assignment, ok bool, outputs map[string]any) []*wire.Assignment {
	as := h.event(a, wire.EventStarted, true, nil)
	return append(as, h.event(a, wire.EventFinished, ok, outputs)...)
}

func (h *harness) states(dagID, runID string) map[string]store.TaskState {
	ar := h.s.active[runKey{dagID, runID}]
	out := map[string]store.TaskState{}
	if ar == nil {
		tis, _ := h.s.cfg.Store.TaskInstances(dagID, runID)
		for _, ti := range tis {
			out[ti.Key()] = ti.State
		}
		return out
	}
	for id, ti := range ar.tis {
		out[id] = ti.State
	}
	return out
}

func (h *harness) runState(dagID, runID string) store.RunState {
	if ar := h.s.active[runKey{dagID, runID}]; ar != nil {
		return ar.run.State
	}
	r, err := h.s.cfg.Store.GetRun(dagID, runID)
	if err != nil {
		h.t.Fatal(err)
	}
	return r.State
}

func taskIDs(as []*wire.Assignment) string {
	var ids []string
	for _, a := range as {
		ids = append(ids, a.TaskID)
	}
	return strings.Join(ids, ",")
}

func TestOutputsReachDownstreamTemplates(t *testing.T) {
	h := newHarness(t, `
id: outs
params: {region: {type: string, default: eu}}
env: {BASE: "/data/{{ .ds }}"}
tasks:
  - {id: extract, plugin: shell, with: {command: "echo"}}
  - id: train
    depends_on: [extract]
    plugin: shell
    env: {OUT: "{{ .env.BASE }}/model"}
    with: {command: "train --rows {{ .outputs.extract.rows }} --region {{ .params.region }} --try {{ .try_number }}"}
`)
	r, as := h.trigger("outs", map[string]any{"region": "us"})
	if taskIDs(as) != "extract" {
		t.Fatalf("first assignments = %s, want extract", taskIDs(as))
	}
	next := h.run(as[0], true, map[string]any{"rows": "42"})
	if len(next) != 1 || next[0].TaskID != "train" {
		t.Fatalf("after extract: %s, want train at once", taskIDs(next))
	}
	a := next[0]
	if got := a.With["command"]; got != "train --rows 42 --region us --try 1" {
		t.Errorf("command = %q", got)
	}
	ds := r.LogicalDate.Format(time.DateOnly)
	for k, want := range map[string]string{"BASE": "/data/" + ds, "OUT": "/data/" + ds + "/model", "KILN_TASK_ID": "train", "KILN_TRY_NUMBER": "1", "KILN_DS": ds, "KILN_RUN_ID": r.RunID} {
		if a.Env[k] != want {
			t.Errorf("env %s = %q, want %q", k, a.Env[k], want)
		}
	}
	h.run(a, true, nil)
	if got := h.runState("outs", r.RunID); got != store.RunSuccess {
		t.Errorf("run state = %s, want success", got)
	}
}

func TestWhenSkipCascades(t *testing.T) {
	h := newHarness(t, `
id: when
params: {go: {type: boolean, default: false}}
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
  - {id: gate, plugin: shell, with: {command: "true"}, depends_on: [a], when: params.go}
  - {id: after_gate, plugin: shell, with: {command: "true"}, depends_on: [gate]}
  - {id: deeper, plugin: shell, with: {command: "true"}, depends_on: [after_gate]}
  - {id: join, plugin: shell, with: {command: "true"}, depends_on: [a, deeper], trigger_rule: none_failed_min_one_success}
`)
	r, as := h.trigger("when", nil)
	next := h.run(as[0], true, nil)
	if taskIDs(next) != "join" {
		t.Errorf("after a: assignments %s, want join only", taskIDs(next))
	}
	want := map[string]store.TaskState{"a": store.TaskSuccess, "gate": store.TaskSkipped, "after_gate": store.TaskSkipped, "deeper": store.TaskSkipped, "join": store.TaskQueued}
	if got := h.states("when", r.RunID); !equalStates(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	h.run(next[0], true, nil)
	if got := h.runState("when", r.RunID); got != store.RunSuccess {
		t.Errorf("run = %s, want success (skipped counts as done)", got)
	}
}

func equalStates(a, b map[string]store.TaskState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRetriesWithBackoffReachTry3(t *testing.T) {
	h := newHarness(t, `
id: retry
tasks:
  - {id: flaky, plugin: shell, with: {command: "false"}, retries: 2, retry_delay: 10s, retry_exponential_backoff: true}
  - {id: down, plugin: shell, with: {command: "true"}, depends_on: [flaky]}
`)
	r, as0 := h.trigger("retry", nil)
	a := as0[0]
	if next := h.run(a, false, nil); len(next) != 0 {
		t.Fatalf("retried at once: %s", taskIDs(next))
	}
	if got := h.states("retry", r.RunID)["flaky"]; got != store.TaskUpForRetry {
		t.Fatalf("after try 1: %s, want up_for_retry", got)
	}
	h.advance(9 * time.Second)
	if as := h.turn(nil); len(as) != 0 {
		t.Fatalf("retried before retry_delay: %s", taskIDs(as))
	}
	h.advance(time.Second)
	as := h.turn(nil)
	if len(as) != 1 || as[0].Try != 2 {
		t.Fatalf("after 10s: %v, want try 2", as)
	}
	h.run(as[0], false, nil)
	h.advance(19 * time.Second) // backoff doubles: 20s
	if as := h.turn(nil); len(as) != 0 {
		t.Fatalf("try 3 before 20s: %v", as)
	}
	h.advance(time.Second)
	as = h.turn(nil)
	if len(as) != 1 || as[0].Try != 3 {
		t.Fatalf("want try 3, got %v", as)
	}
	h.run(as[0], false, nil)
	want := map[string]store.TaskState{"flaky": store.TaskFailed, "down": store.TaskUpstreamFailed}
	if got := h.states("retry", r.RunID); !equalStates(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if got := h.runState("retry", r.RunID); got != store.RunFailed {
		t.Errorf("run = %s, want failed", got)
	}
	tries, err := h.s.cfg.Store.Tries("retry", r.RunID, "flaky")
	if err != nil || len(tries) != 3 {
		t.Fatalf("tries = %d (%v), want 3", len(tries), err)
	}
	for _, tr := range tries {
		if tr.State != store.TaskFailed {
			t.Errorf("try %d = %s, want failed", tr.Number, tr.State)
		}
	}
}

func TestStaleResultIgnored(t *testing.T) {
	h := newHarness(t, `
id: stale
tasks: [{id: a, plugin: shell, with: {command: "x"}, retries: 1, retry_delay: 1s}]
`)
	r, as := h.trigger("stale", nil)
	try1 := as[0]
	h.event(try1, wire.EventStarted, true, nil)
	h.advance(31 * time.Second) // the worker went silent
	h.turn(nil)
	if got := h.states("stale", r.RunID)["a"]; got != store.TaskUpForRetry {
		t.Fatalf("after heartbeat timeout: %s, want up_for_retry", got)
	}
	if c := h.cancels; len(c) != 1 || c[0].TryKey != try1.TryKey {
		t.Errorf("cancels = %v, want one for the silent try", c)
	}
	h.advance(time.Second)
	try2 := h.turn(nil)[0]
	// The zombie worker's late success for try 1 must not count.
	h.event(try1, wire.EventFinished, true, map[string]any{"zombie": "yes"})
	if got := h.states("stale", r.RunID)["a"]; got != store.TaskQueued {
		t.Fatalf("after a stale result: %s, want still queued for try 2", got)
	}
	h.run(try2, true, nil)
	ti, err := h.s.cfg.Store.GetTaskInstance("stale", r.RunID, "a")
	if err != nil || ti.State != store.TaskSuccess || ti.TryNumber != 2 || ti.Outputs["zombie"] != nil {
		t.Errorf("task instance = %+v (%v), want success on try 2 without the zombie's outputs", ti, err)
	}
	tries, _ := h.s.cfg.Store.Tries("stale", r.RunID, "a")
	if len(tries) != 2 || tries[0].State != store.TaskFailed || !strings.Contains(tries[0].Error, "heartbeat") {
		t.Errorf("tries = %+v, want try 1 failed for its heartbeat", tries)
	}
	log, _ := os.ReadFile(h.s.LogPath(try1.TryKey))
	if !strings.Contains(string(log), "stopped sending heartbeats") {
		t.Errorf("try 1 log = %q, want the heartbeat note", log)
	}
}

func TestPoolLimitsConcurrency(t *testing.T) {
	h := newHarness(t, `
id: pooled
tasks:
  - {id: t1, plugin: shell, with: {command: "x"}, pool: gpu}
  - {id: t2, plugin: shell, with: {command: "x"}, pool: gpu}
  - {id: t3, plugin: shell, with: {command: "x"}, pool: gpu, priority: 5}
  - {id: t4, plugin: shell, with: {command: "x"}, pool: gpu}
  - {id: big, plugin: shell, with: {command: "x"}, pool: gpu, pool_slots: 3}
`)
	if err := h.s.SetPool(context.Background(), "gpu", 2); err != nil {
		t.Fatal(err)
	}
	_, as := h.trigger("pooled", nil)
	if taskIDs(as) != "t3,t1" {
		t.Fatalf("first wave = %s, want t3 (priority) then t1", taskIDs(as))
	}
	next := h.run(as[0], true, nil)
	if taskIDs(next) != "t2" {
		t.Fatalf("after t3: %s, want t2", taskIDs(next))
	}
	if got := taskIDs(h.run(as[1], true, nil)); got != "t4" {
		t.Fatalf("after t1: %s, want t4", got)
	}
	if got := taskIDs(h.run(next[0], true, nil)); got != "" {
		t.Fatalf("after t2: %s, want nothing: big needs 3 slots of 2 and never fits", got)
	}
}

func TestDependsOnPast(t *testing.T) {
	h := newHarness(t, `
id: past
max_active_runs: 2
tasks: [{id: load, plugin: shell, with: {command: "x"}, depends_on_past: true}]
`)
	ld1, ld2 := t0.Add(-2*time.Hour), t0.Add(-time.Hour)
	var r1, r2 *store.Run
	as := h.turn(func() {
		r1, _ = h.s.trigger("past", TriggerRequest{LogicalDate: &ld1}, h.clock.Now())
		r2, _ = h.s.trigger("past", TriggerRequest{LogicalDate: &ld2}, h.clock.Now())
	})
	if len(as) != 1 || as[0].RunID != r1.RunID {
		t.Fatalf("assignments = %v, want only the older run's task", as)
	}
	next := h.run(as[0], false, nil)
	if len(next) != 0 {
		t.Fatalf("the later run started although the earlier one failed: %v", next)
	}
	if got := h.states("past", r2.RunID)["load"]; got != store.TaskScheduled {
		t.Fatalf("later run's task = %s, want scheduled (held)", got)
	}
	// Clearing the failed one and succeeding releases the later run.
	as = h.turn(func() {
		if _, err := h.s.clear("past", r1.RunID, ClearRequest{OnlyFailed: true}, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
	})
	if len(as) != 1 || as[0].RunID != r1.RunID || as[0].Try != 2 {
		t.Fatalf("after clear: %v, want the older run's try 2", as)
	}
	next = h.run(as[0], true, nil)
	if len(next) != 1 || next[0].RunID != r2.RunID {
		t.Fatalf("after the earlier success: %v, want the later run's task", next)
	}
}

func TestMaxActiveRunsAndDuplicates(t *testing.T) {
	h := newHarness(t, `
id: limited
max_active_runs: 1
tasks: [{id: a, plugin: shell, with: {command: "x"}}]
`)
	ld := t0.Add(-time.Hour)
	var err error
	h.turn(func() { _, err = h.s.trigger("limited", TriggerRequest{LogicalDate: &ld}, h.clock.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	h.turn(func() { _, err = h.s.trigger("limited", TriggerRequest{LogicalDate: &ld}, h.clock.Now()) })
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second trigger for the same logical date: err = %v, want ErrConflict", err)
	}
	r2, _ := h.trigger("limited", nil)
	if got := h.runState("limited", r2.RunID); got != store.RunQueued {
		t.Errorf("second run = %s, want queued behind max_active_runs", got)
	}
	h.turn(func() { _, err = h.s.trigger("nope", TriggerRequest{}, h.clock.Now()) })
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown DAG: err = %v, want ErrNotFound", err)
	}
}

func TestTemplateErrorFailsTheTry(t *testing.T) {
	h := newHarness(t, `
id: tmpl
tasks:
  - {id: a, plugin: shell, with: {command: "x"}}
  - {id: b, plugin: shell, depends_on: [a], with: {command: "use {{ .outputs.a.missing }}"}}
`)
	r, as := h.trigger("tmpl", nil)
	if next := h.run(as[0], true, map[string]any{"other": 1}); len(next) != 0 {
		t.Fatalf("b was dispatched despite its template error: %v", next)
	}
	if got := h.states("tmpl", r.RunID)["b"]; got != store.TaskFailed {
		t.Errorf("b = %s, want failed", got)
	}
	log, _ := os.ReadFile(h.s.LogPath(wire.TryKey{DAGID: "tmpl", RunID: r.RunID, TaskID: "b", Try: 1}))
	if !strings.Contains(string(log), "missing") {
		t.Errorf("b's log = %q, want the template error", log)
	}
}

func TestCatchupCreatesEndedIntervals(t *testing.T) {
	for _, tc := range []struct {
		catchup bool
		want    []string
	}{
		{true, []string{"2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09"}},
		{false, []string{"2026-03-09"}},
	} {
		h := newHarness(t, `
id: daily
schedule: "@daily"
start_date: 2026-03-05
catchup: `+map[bool]string{true: "true", false: "false"}[tc.catchup]+`
tasks: [{id: a, plugin: shell, with: {command: "x"}}]
`)
		h.turn(nil) // t0 is 2026-03-10 12:00: five days have ended
		runs, _, err := h.s.cfg.Store.ListRuns(store.RunQuery{DAGID: "daily"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := len(runs) - 1; i >= 0; i-- {
			got = append(got, runs[i].LogicalDate.Format(time.DateOnly))
			if runs[i].RunType != "scheduled" || !strings.HasPrefix(runs[i].RunID, "scheduled__") {
				t.Errorf("run %s type %s", runs[i].RunID, runs[i].RunType)
			}
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("catchup=%v: runs %v, want %v", tc.catchup, got, tc.want)
		}
		// Nothing more until the next interval ends.
		h.advance(11*time.Hour + 59*time.Minute)
		h.turn(nil)
		if runs, n, _ := h.s.cfg.Store.ListRuns(store.RunQuery{DAGID: "daily"}); n != len(tc.want) {
			t.Errorf("before midnight: %d runs, want %d", len(runs), len(tc.want))
		}
		h.advance(time.Minute)
		h.turn(nil)
		if _, n, _ := h.s.cfg.Store.ListRuns(store.RunQuery{DAGID: "daily"}); n != len(tc.want)+1 {
			t.Errorf("at midnight: %d runs, want %d", n, len(tc.want)+1)
		}
	}
}

func TestSchedulerEnforcesTimeoutWhenTheWorkerDoesNot(t *testing.T) {
	h := newHarness(t, `
id: stuck
tasks: [{id: a, plugin: shell, with: {command: "x"}, timeout: 1m}]
`)
	r, as := h.trigger("stuck", nil)
	h.event(as[0], wire.EventStarted, true, nil)
	for range 3 { // heartbeats keep coming, but the task overruns
		h.advance(29 * time.Second)
		h.event(as[0], wire.EventHeartbeat, true, nil)
	}
	if got := h.states("stuck", r.RunID)["a"]; got != store.TaskRunning {
		t.Fatalf("after 87s: %s, want still running (timeout 1m + heartbeat timeout 30s)", got)
	}
	h.advance(4 * time.Second)
	h.event(as[0], wire.EventHeartbeat, true, nil)
	if got := h.states("stuck", r.RunID)["a"]; got != store.TaskFailed {
		t.Fatalf("after 91s: %s, want failed", got)
	}
	if c := h.cancels; len(c) != 1 || !strings.Contains(c[0].Reason, "timed out") {
		t.Errorf("cancels = %v, want one for the overrun", c)
	}
}
