package scheduler

import (
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// TestEventsOnlyFromTheHolder: the first started or finished event of an
// assignment binds its try to the sending worker; what another worker says
// about that try changes nothing (docs/architecture.md#tries-and-fencing).
func TestEventsOnlyFromTheHolder(t *testing.T) {
	h := newHarness(t, `
id: fenced
tasks:
  - {id: a, plugin: shell, with: {command: "x"}, on_success: [{plugin: shell, with: {command: "y"}}]}
`)
	r, as := h.trigger("fenced", nil)
	a := as[0]
	h.eventFrom("w1", a, wire.EventStarted, true, nil)

	// A second started event and a finished one from w2: ignored.
	h.eventFrom("w2", a, wire.EventStarted, true, nil)
	if next := h.eventFrom("w2", a, wire.EventFinished, true, map[string]any{"forged": "yes"}); len(next) != 0 {
		t.Errorf("w2's finished event dispatched %s", taskIDs(next))
	}
	ti := h.s.active[runKey{"fenced", r.RunID}].tis["a"]
	if ti.State != store.TaskRunning || ti.Worker != "w1" || ti.Outputs != nil {
		t.Fatalf("after w2's events: state %s, worker %q, outputs %v; want running on w1, no outputs", ti.State, ti.Worker, ti.Outputs)
	}

	// w2's heartbeats do not keep w1's try alive.
	h.advance(20 * time.Second)
	h.eventFrom("w2", a, wire.EventHeartbeat, true, nil)
	h.advance(11 * time.Second)
	h.turn(nil)
	if ti.State != store.TaskFailed || ti.Error == "" {
		t.Fatalf("after 31 s with only w2 beating: state %s, error %q; want failed for w1's silence", ti.State, ti.Error)
	}

	// The same for a callback stage: bound to w1 by its started event.
	r, as = h.trigger("fenced", nil)
	as = h.run(as[0], true, nil)
	if len(as) != 1 || as[0].TaskID != "a.on_success.1" {
		t.Fatalf("after success: %s, want the on_success callback", taskIDs(as))
	}
	cb := as[0]
	h.eventFrom("w1", cb, wire.EventStarted, true, nil)
	h.eventFrom("w2", cb, wire.EventFinished, false, nil)
	tr, err := h.s.cfg.Store.GetTry("fenced", r.RunID, cb.TaskID, cb.Try)
	if err != nil || tr.State != store.TaskRunning || tr.Worker != "w1" {
		t.Fatalf("callback after w2's finished event: %+v (%v), want running on w1", tr, err)
	}
	h.eventFrom("w1", cb, wire.EventFinished, true, nil)
	tr, err = h.s.cfg.Store.GetTry("fenced", r.RunID, cb.TaskID, cb.Try)
	if err != nil || tr.State != store.TaskSuccess || tr.Worker != "w1" {
		t.Errorf("callback after w1's finished event: %+v (%v), want success on w1", tr, err)
	}
}
