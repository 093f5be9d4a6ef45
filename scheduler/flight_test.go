package scheduler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// idle reports what the loop keeps between turns once nothing is in
// flight: the tries it tracks, how long it may sleep, and the log notes it
// remembers.
func (h *harness) idle() (flights int, sleep time.Duration, noted int) {
	h.inLoop(func() {
		flights = len(h.s.flights)
		sleep = h.s.nextWake(h.clock.Now())
		h.s.logs.mu.Lock()
		noted = len(h.s.logs.workerEnd)
		h.s.logs.mu.Unlock()
	})
	return flights, sleep, noted
}

// TestCallbacksForgottenOnceEnded: callback tries leave nothing behind in
// the loop when they end, so after a heartbeat timeout the loop still
// sleeps for its timer period instead of waking every millisecond for a
// check that is long past due.
func TestCallbacksForgottenOnceEnded(t *testing.T) {
	h := newHarness(t, `
id: cb
on_success: [{plugin: shell, with: {command: "run done"}}]
tasks:
  - id: a
    plugin: shell
    with: {command: "x"}
    on_success: [{plugin: shell, with: {command: "a done"}}, {plugin: shell, with: {command: "again"}}]
`)
	_, as := h.trigger("cb", nil)
	var callbacks []*wire.Assignment
	for _, a := range h.run(as[0], true, nil) {
		if strings.Contains(a.TaskID, ".on_success.") {
			callbacks = append(callbacks, a)
		}
	}
	if len(callbacks) != 3 {
		t.Fatalf("callbacks sent: %s, want a's two and the run's", taskIDs(callbacks))
	}
	for _, cb := range callbacks {
		h.run(cb, true, nil)
	}
	h.advance(2 * h.s.cfg.HeartbeatTimeout)
	h.turn(nil)
	flights, sleep, _ := h.idle()
	if flights != 0 {
		t.Errorf("%d tries still tracked after every callback ended", flights)
	}
	if want := h.s.cfg.HeartbeatTimeout / 4; sleep != want {
		t.Errorf("idle loop sleeps %s, want its timer period %s", sleep, want)
	}
}

// TestLostCallbackAndZombieLeaveNoLogState: a try whose worker went silent
// and a callback whose assignment was lost never get a finished event; the
// log store forgets them a heartbeat timeout after the loop does.
func TestLostCallbackAndZombieLeaveNoLogState(t *testing.T) {
	h := newHarness(t, `
id: z
tasks:
  - id: a
    plugin: shell
    with: {command: "x"}
    on_failure: [{plugin: shell, with: {command: "page"}}]
`)
	r, as := h.trigger("z", nil)
	h.event(as[0], wire.EventStarted, true, nil)
	h.advance(h.s.cfg.HeartbeatTimeout + time.Second)
	sent := h.turn(nil) // the worker went silent: a fails, its callback is sent
	if len(sent) != 1 || sent[0].TaskID != "a.on_failure.1" {
		t.Fatalf("after the heartbeat timeout: %s, want a's on_failure", taskIDs(sent))
	}
	if _, _, noted := h.idle(); noted != 1 {
		t.Fatalf("log notes kept: %d, want the zombie's", noted)
	}
	h.sent.mu.Lock()
	h.sent.gone = map[wire.TryKey]bool{sent[0].TryKey: true}
	h.sent.mu.Unlock()
	h.advance(h.s.cfg.HeartbeatTimeout + time.Second)
	h.turn(nil) // the callback's assignment is due for a check: it is gone
	h.turn(nil)
	tr, err := h.s.cfg.Store.GetTry("z", r.RunID, "a.on_failure.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if tr.State != store.TaskFailed || !strings.Contains(tr.Error, "lost") {
		t.Errorf("lost callback: %s %q, want failed, lost", tr.State, tr.Error)
	}
	h.advance(h.s.cfg.HeartbeatTimeout + time.Second)
	h.turn(nil)
	flights, sleep, noted := h.idle()
	if flights != 0 || noted != 0 {
		t.Errorf("kept %d tries in flight and %d log notes, want none", flights, noted)
	}
	if want := h.s.cfg.HeartbeatTimeout / 4; sleep != want {
		t.Errorf("idle loop sleeps %s, want %s", sleep, want)
	}
}

// TestLogNoteErrorsReported: a note that cannot be written says why.
func TestLogNoteErrorsReported(t *testing.T) {
	dir := t.TempDir()
	// The run's folder is a file: no log under it can be created.
	if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d", "r"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l := &logStore{dir: dir, limit: 1 << 20}
	k := wire.TryKey{DAGID: "d", RunID: "r", TaskID: "t", Try: 1}
	if err := l.note(k, "worker went silent"); err == nil {
		t.Error("note under a file: no error")
	}
	if err := l.noteIdle(k, "rendering failed"); err == nil {
		t.Error("noteIdle under a file: no error")
	}
}
