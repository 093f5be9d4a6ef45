package scheduler

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

const markDAG = `
id: mk
on_success: [{plugin: shell, with: {command: "run ok"}}]
on_failure: [{plugin: shell, with: {command: "run failed"}}]
tasks:
  - id: a
    plugin: shell
    with: {command: "x"}
    on_success: [{plugin: shell, with: {command: "a ok"}}]
    on_failure: [{plugin: shell, with: {command: "a failed"}}]
  - {id: b, plugin: shell, with: {command: "x"}, depends_on: [a]}
  - {id: c, plugin: shell, with: {command: "x"}, depends_on: [b]}
  - {id: side, plugin: shell, with: {command: "x"}}
`

// marked is what a mark did in its turn.
type marked struct {
	changed []string
	err     error
	assign  []*wire.Assignment
	cancels []wire.Cancel
}

// mark runs fn in a turn and returns what it returned, with the turn's
// assignments and cancels.
func (h *harness) mark(fn func(now time.Time) ([]string, error)) marked {
	h.t.Helper()
	var m marked
	m.assign = h.turn(func() { m.changed, m.err = fn(h.clock.Now()) })
	m.cancels = h.cancels
	return m
}

func assignment(as []*wire.Assignment, task string) *wire.Assignment {
	for _, a := range as {
		if a.TaskID == task {
			return a
		}
	}
	return nil
}

func cancelled(cs []wire.Cancel) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.TaskID)
	}
	slices.Sort(out)
	return out
}

func noCallbacks(t *testing.T, as []*wire.Assignment) {
	t.Helper()
	for _, a := range as {
		if strings.Contains(a.TaskID, ".on_") {
			t.Errorf("callback %s was queued; marking by hand fires none", a.TaskID)
		}
	}
}

func TestMarkRunSuccessStopsTriesInFlight(t *testing.T) {
	h := newHarness(t, markDAG)
	r, as := h.trigger("mk", nil)
	a, side := assignment(as, "a"), assignment(as, "side")
	if a == nil || side == nil {
		t.Fatalf("first assignments = %s, want a and side", taskIDs(as))
	}
	h.event(a, wire.EventStarted, true, nil) // a runs, side is still queued

	m := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markRun("mk", r.RunID, store.RunSuccess, now)
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	if got := strings.Join(m.changed, ","); got != "a,b,c,side" {
		t.Errorf("changed = %s, want a,b,c,side", got)
	}
	if got := cancelled(m.cancels); !slices.Equal(got, []string{"a", "side"}) {
		t.Errorf("cancels for %v, want a and side", got)
	}
	if len(m.assign) != 0 {
		t.Errorf("assignments after marking: %s, want none (no tasks, no callbacks)", taskIDs(m.assign))
	}
	want := map[string]store.TaskState{"a": store.TaskSuccess, "b": store.TaskSuccess, "c": store.TaskSuccess, "side": store.TaskSuccess}
	if got := h.states("mk", r.RunID); !equalStates(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if got := h.runState("mk", r.RunID); got != store.RunSuccess {
		t.Errorf("run = %s, want success", got)
	}
	tr, err := h.s.cfg.Store.GetTry("mk", r.RunID, "a", 1)
	if err != nil || tr.State != store.TaskSuccess || tr.EndDate == nil || !strings.Contains(tr.Error, "marked success by hand while running") {
		t.Errorf("try a/1 = %+v (%v), want ended success with the reason", tr, err)
	}
	if tr, _ := h.s.cfg.Store.GetTry("mk", r.RunID, "side", 1); tr == nil || tr.State != store.TaskSuccess {
		t.Errorf("try side/1 = %+v, want success: a queued try ends too", tr)
	}
	for _, c := range m.cancels {
		if !strings.Contains(c.Reason, "marked success by hand") {
			t.Errorf("cancel of %s: reason %q, want it to say why (the worker logs it)", c.TaskID, c.Reason)
		}
	}

	// The stopped try's worker reports a failure late: it is fenced off.
	noCallbacks(t, h.event(a, wire.EventFinished, false, nil))
	if got := h.states("mk", r.RunID)["a"]; got != store.TaskSuccess {
		t.Errorf("a after its stale result = %s, want success", got)
	}
	if tr, _ := h.s.cfg.Store.GetTry("mk", r.RunID, "a", 1); tr.State != store.TaskSuccess {
		t.Errorf("try a/1 after its stale result = %s, want success", tr.State)
	}

	// Again: nothing to change.
	m = h.mark(func(now time.Time) ([]string, error) {
		return h.s.markRun("mk", r.RunID, store.RunSuccess, now)
	})
	if m.err != nil || len(m.changed) != 0 || len(m.cancels) != 0 {
		t.Errorf("marking a successful run success: changed %v, cancels %v, err %v; want nothing", m.changed, m.cancels, m.err)
	}
	if _, ok := h.s.active[runKey{"mk", r.RunID}]; ok {
		t.Error("the finished run stays loaded in the loop after a no-op mark")
	}
}

func TestMarkRunFailed(t *testing.T) {
	h := newHarness(t, markDAG)
	r, as := h.trigger("mk", nil)
	h.run(assignment(as, "side"), true, nil)
	m := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markRun("mk", r.RunID, store.RunFailed, now)
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	noCallbacks(t, m.assign)
	if got := strings.Join(m.changed, ","); got != "a,b,c" {
		t.Errorf("changed = %s, want a,b,c (side had succeeded)", got)
	}
	if got := cancelled(m.cancels); !slices.Equal(got, []string{"a"}) {
		t.Errorf("cancels for %v, want a (queued)", got)
	}
	want := map[string]store.TaskState{"a": store.TaskFailed, "b": store.TaskFailed, "c": store.TaskFailed, "side": store.TaskSuccess}
	if got := h.states("mk", r.RunID); !equalStates(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if got := h.runState("mk", r.RunID); got != store.RunFailed {
		t.Errorf("run = %s, want failed", got)
	}
	ti, _ := h.s.cfg.Store.GetTaskInstance("mk", r.RunID, "b")
	if ti.Error != "marked failed by hand" {
		t.Errorf("b's error = %q, want it to say it was marked", ti.Error)
	}

	// Clearing what failed picks the run up where marking stopped it.
	as = h.turn(func() {
		if _, err := h.s.clear("mk", r.RunID, ClearRequest{OnlyFailed: true}, h.clock.Now()); err != nil {
			t.Fatal(err)
		}
	})
	if a := assignment(as, "a"); a == nil || a.Try != 2 {
		t.Fatalf("after clearing: %v, want a's try 2", as)
	}

	// Mark the run success, then failed: every task ended well, so that
	// is refused.
	if m := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markRun("mk", r.RunID, store.RunSuccess, now)
	}); m.err != nil {
		t.Fatal(m.err)
	}
	err := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markRun("mk", r.RunID, store.RunFailed, now)
	}).err
	if !errors.Is(err, ErrConflict) {
		t.Errorf("failing a run whose tasks all succeeded: err = %v, want ErrConflict", err)
	}
	if got := h.runState("mk", r.RunID); got != store.RunSuccess {
		t.Errorf("run after the refused mark = %s, want success", got)
	}
}

func TestMarkFailedTaskSuccessLetsDownstreamRun(t *testing.T) {
	h := newHarness(t, markDAG)
	r, as := h.trigger("mk", nil)
	h.run(assignment(as, "side"), true, nil)
	h.run(assignment(as, "a"), false, nil)
	want := map[string]store.TaskState{"a": store.TaskFailed, "b": store.TaskUpstreamFailed, "c": store.TaskUpstreamFailed, "side": store.TaskSuccess}
	if got := h.states("mk", r.RunID); !equalStates(got, want) {
		t.Fatalf("states = %v, want %v", got, want)
	}
	if got := h.runState("mk", r.RunID); got != store.RunFailed {
		t.Fatalf("run = %s, want failed", got)
	}

	m := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markTasks("mk", r.RunID, []string{"a"}, store.TaskSuccess, now)
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	if got := strings.Join(m.changed, ","); got != "a,b,c" {
		t.Errorf("changed = %s, want a (marked), b and c (cleared downstream)", got)
	}
	if len(m.cancels) != 0 {
		t.Errorf("cancels = %v, want none: nothing was in flight", m.cancels)
	}
	next := m.assign
	if got := taskIDs(next); got != "b" {
		t.Fatalf("assignments = %s, want b at once", got)
	}
	if got := h.runState("mk", r.RunID); got != store.RunRunning {
		t.Errorf("run = %s, want running again", got)
	}
	c := assignment(h.run(next[0], true, nil), "c")
	if c == nil {
		t.Fatal("c was not dispatched after b")
	}
	h.run(c, true, nil)
	if got := h.runState("mk", r.RunID); got != store.RunSuccess {
		t.Errorf("run = %s, want success", got)
	}
}

func TestMarkRunningTaskFailed(t *testing.T) {
	h := newHarness(t, markDAG)
	r, as := h.trigger("mk", nil)
	a := assignment(as, "a")
	h.event(a, wire.EventStarted, true, nil)
	h.run(assignment(as, "side"), true, nil)

	m := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markTasks("mk", r.RunID, []string{"a"}, store.TaskFailed, now)
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	if got := strings.Join(m.changed, ","); got != "a" {
		t.Errorf("changed = %s, want a", got)
	}
	if got := cancelled(m.cancels); !slices.Equal(got, []string{"a"}) {
		t.Errorf("cancels for %v, want a", got)
	}
	// The run goes on under its trigger rules: b and c cannot run, so the
	// run fails, and its own on_failure runs (a's does not: it was marked).
	var cbs []string
	for _, x := range m.assign {
		cbs = append(cbs, x.TaskID)
	}
	if got := strings.Join(cbs, ","); got != "@run.on_failure.1" {
		t.Errorf("assignments = %s, want only the run's on_failure", got)
	}
	want := map[string]store.TaskState{"a": store.TaskFailed, "b": store.TaskUpstreamFailed, "c": store.TaskUpstreamFailed, "side": store.TaskSuccess}
	if got := h.states("mk", r.RunID); !equalStates(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if got := h.runState("mk", r.RunID); got != store.RunFailed {
		t.Errorf("run = %s, want failed", got)
	}
	// A late success of the stopped try does not count.
	h.event(a, wire.EventFinished, true, map[string]any{"late": "yes"})
	ti, _ := h.s.cfg.Store.GetTaskInstance("mk", r.RunID, "a")
	if ti.State != store.TaskFailed || ti.Outputs != nil {
		t.Errorf("a = %s with outputs %v, want failed without the late outputs", ti.State, ti.Outputs)
	}
}

func TestMarkLastTaskOfFinishedRun(t *testing.T) {
	h := newHarness(t, `
id: last
tasks:
  - {id: a, plugin: shell, with: {command: "x"}}
  - {id: b, plugin: shell, with: {command: "x"}, depends_on: [a]}
`)
	r, as := h.trigger("last", nil)
	b := assignment(h.run(as[0], true, nil), "b")
	h.run(b, false, nil)
	if got := h.runState("last", r.RunID); got != store.RunFailed {
		t.Fatalf("run = %s, want failed", got)
	}
	m := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markTasks("last", r.RunID, []string{"b"}, store.TaskSuccess, now)
	})
	if m.err != nil || strings.Join(m.changed, ",") != "b" {
		t.Fatalf("changed = %v, err = %v; want b", m.changed, m.err)
	}
	if len(m.assign) != 0 {
		t.Errorf("assignments = %s, want none", taskIDs(m.assign))
	}
	// Every task is done again: the run takes the state they give it at
	// once, without waiting for a slot under max_active_runs.
	run, err := h.s.cfg.Store.GetRun("last", r.RunID)
	if err != nil || run.State != store.RunSuccess || run.EndDate == nil {
		t.Errorf("run = %+v (%v), want success with an end date", run, err)
	}
}

func TestMarkRefusals(t *testing.T) {
	h := newHarness(t, markDAG)
	r, _ := h.trigger("mk", nil)
	ctx := context.Background()
	// Bad requests are refused before they reach the loop.
	if _, err := h.s.MarkRun(ctx, "mk", r.RunID, "running"); !errors.Is(err, ErrInvalid) {
		t.Errorf("MarkRun running: err = %v, want ErrInvalid", err)
	}
	if _, err := h.s.MarkTasks(ctx, "mk", r.RunID, []string{"a"}, store.TaskSkipped); !errors.Is(err, ErrInvalid) {
		t.Errorf("MarkTasks skipped: err = %v, want ErrInvalid", err)
	}
	if _, err := h.s.MarkTasks(ctx, "mk", r.RunID, nil, store.TaskSuccess); !errors.Is(err, ErrInvalid) {
		t.Errorf("MarkTasks without tasks: err = %v, want ErrInvalid", err)
	}
	for name, fn := range map[string]func(now time.Time) ([]string, error){
		"unknown run": func(now time.Time) ([]string, error) {
			return h.s.markRun("mk", "manual__nope", store.RunSuccess, now)
		},
		"unknown DAG": func(now time.Time) ([]string, error) {
			return h.s.markTasks("nope", r.RunID, []string{"a"}, store.TaskSuccess, now)
		},
		"unknown task": func(now time.Time) ([]string, error) {
			return h.s.markTasks("mk", r.RunID, []string{"a", "zzz"}, store.TaskSuccess, now)
		},
	} {
		if err := h.mark(fn).err; !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if got := h.states("mk", r.RunID)["a"]; got != store.TaskQueued {
		t.Errorf("a = %s after refused marks, want still queued", got)
	}
}

func TestMarkSensorBetweenPokes(t *testing.T) {
	h := newHarness(t, `
id: sensing
tasks:
  - {id: wait, plugin: fake_sensor, poke_interval: 10s, sensor_timeout: 1m}
  - {id: after, plugin: shell, with: {command: "x"}, depends_on: [wait]}
`)
	r, as := h.trigger("sensing", nil)
	h.event(as[0], wire.EventStarted, true, nil)
	h.pokeResult(as[0], wire.Event{PokeAgain: true})
	if got := h.states("sensing", r.RunID)["wait"]; got != store.TaskUpForReschedule {
		t.Fatalf("wait = %s, want up_for_reschedule", got)
	}
	m := h.mark(func(now time.Time) ([]string, error) {
		return h.s.markTasks("sensing", r.RunID, []string{"wait"}, store.TaskSuccess, now)
	})
	if m.err != nil {
		t.Fatal(m.err)
	}
	if len(m.cancels) != 0 {
		t.Errorf("cancels = %v, want none: no worker holds a sensor between pokes", m.cancels)
	}
	if got := taskIDs(m.assign); got != "after" {
		t.Errorf("assignments = %s, want after", got)
	}
	if tr, _ := h.s.cfg.Store.GetTry("sensing", r.RunID, "wait", 1); tr == nil || tr.State != store.TaskSuccess || tr.EndDate == nil {
		t.Errorf("try = %+v, want ended success", tr)
	}
	log, _ := os.ReadFile(h.s.LogPath(as[0].TryKey))
	if !strings.Contains(string(log), "marked success by hand while up_for_reschedule") {
		t.Errorf("log = %q, want the note", log)
	}
	// The poke that was due never comes.
	h.advance(time.Minute)
	if as := h.turn(nil); len(as) != 0 {
		t.Errorf("after the mark: %s, want nothing", taskIDs(as))
	}
}
