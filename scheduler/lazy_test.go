package scheduler

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// TestStartedSharesTheFinishedCommit: a started event alone in its turn is
// not committed on its own; the turn of the try's finished event commits
// both, so a task costs one commit instead of two.
func TestStartedSharesTheFinishedCommit(t *testing.T) {
	h := newHarness(t, `
id: lazy
tasks:
  - {id: a, plugin: shell, with: {command: "x"}}
`)
	r, as := h.trigger("lazy", nil)
	a := as[0]
	commits := samples(t, h.s.metrics.commitDuration)
	turns := samples(t, h.s.metrics.turnDuration)
	send := func(kind wire.EventKind) {
		h.s.events <- eventMsg{ev: wire.Event{TryKey: a.TryKey, Kind: kind, Time: h.clock.Now(), Success: true}, worker: "w1"}
		turns++
		waitTurns(t, h.s.metrics.turnDuration, turns)
	}

	send(wire.EventStarted)
	if got := samples(t, h.s.metrics.commitDuration) - commits; got != 0 {
		t.Fatalf("%d commits after the started event alone; want it left to a later turn", got)
	}
	send(wire.EventFinished)
	h.inLoop(nil)
	if got := samples(t, h.s.metrics.commitDuration) - commits; got != 1 {
		t.Errorf("%d commits for the try's started and finished events; want 1", got)
	}
	tr, err := h.s.cfg.Store.GetTry(a.DAGID, a.RunID, a.TaskID, a.Try)
	if err != nil {
		t.Fatal(err)
	}
	if tr.State != store.TaskSuccess || tr.StartDate == nil || tr.Worker != "w1" {
		t.Errorf("stored try: state %s, start %v, worker %q; want success, started, on w1", tr.State, tr.StartDate, tr.Worker)
	}
	if got := h.states("lazy", r.RunID)["a"]; got != store.TaskSuccess {
		t.Errorf("task a %s, want success", got)
	}
}

// TestStartedIsCommittedForACommand: a command's turn commits what earlier
// turns left, before its answer, so what the API reads after it is current.
func TestStartedIsCommittedForACommand(t *testing.T) {
	h := newHarness(t, `
id: lazy
tasks:
  - {id: a, plugin: shell, with: {command: "x"}}
`)
	r, as := h.trigger("lazy", nil)
	turns := samples(t, h.s.metrics.turnDuration)
	h.s.events <- eventMsg{ev: wire.Event{TryKey: as[0].TryKey, Kind: wire.EventStarted, Time: h.clock.Now()}, worker: "w1"}
	waitTurns(t, h.s.metrics.turnDuration, turns+1)
	h.inLoop(nil)
	ti, err := h.s.cfg.Store.GetTaskInstance("lazy", r.RunID, "a")
	if err != nil {
		t.Fatal(err)
	}
	if ti.State != store.TaskRunning || ti.Worker != "w1" {
		t.Errorf("stored task: %s on %q, want running on w1", ti.State, ti.Worker)
	}
}

// samples is how many observations a histogram holds.
func samples(t *testing.T, h prometheus.Histogram) uint64 {
	t.Helper()
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount()
}

// waitTurns waits until the loop has ended n turns in all.
func waitTurns(t *testing.T, turns prometheus.Histogram, n uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for samples(t, turns) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the loop ended %d turns, want %d", samples(t, turns), n)
		}
		time.Sleep(time.Millisecond)
	}
}
