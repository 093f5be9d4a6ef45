package scheduler

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

func TestCallbacksRunOnRetryFailureAndRunEnd(t *testing.T) {
	h := newHarness(t, `
id: cb
on_failure: [{plugin: shell, with: {command: "page {{ .dag_id }} {{ .state }}"}}]
on_success: [{plugin: shell, with: {command: "never"}}]
tasks:
  - id: flaky
    plugin: shell
    with: {command: "x"}
    retries: 1
    retry_delay: 1s
    on_retry: [{plugin: shell, with: {command: "retrying {{ .task_id }} try {{ .try_number }}: {{ .error }}"}}]
    on_failure:
      - {plugin: shell, with: {command: "failed {{ .state }} {{ .log_url }}"}}
      - {plugin: shell, with: {command: "second"}}
  - id: ok
    plugin: shell
    with: {command: "x"}
    on_success: [{plugin: shell, with: {command: "done {{ .task_id }}"}}]
`)
	r, as := h.trigger("cb", nil)
	var flaky, ok *wire.Assignment
	for _, a := range as {
		switch a.TaskID {
		case "flaky":
			flaky = a
		case "ok":
			ok = a
		}
	}
	got := map[string]string{}
	collect := func(as []*wire.Assignment) {
		for _, a := range as {
			if strings.Contains(a.TaskID, ".on_") {
				got[a.TaskID] = a.With["command"].(string)
			}
		}
	}
	collect(h.run(ok, true, nil))
	collect(h.run(flaky, false, nil))
	h.advance(time.Second)
	retry := h.turn(nil)
	collect(retry)
	var try2 *wire.Assignment
	for _, a := range retry {
		if a.TaskID == "flaky" {
			try2 = a
		}
	}
	collect(h.run(try2, false, nil))
	want := map[string]string{
		"ok.on_success.1":    "done ok",
		"flaky.on_retry.1":   "retrying flaky try 1: exit status 1",
		"flaky.on_failure.1": "failed failed /api/v1/dags/cb/runs/" + r.RunID + "/tasks/flaky/logs?try=2",
		"flaky.on_failure.2": "second",
		"@run.on_failure.1":  "page cb failed",
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("callback %s = %q, want %q (got %v)", k, got[k], w, keys)
		}
	}
	if len(got) != len(want) {
		t.Errorf("callbacks fired: %v, want %d", keys, len(want))
	}
	// A failing callback changes nothing but its own record.
	cb := &wire.Assignment{TryKey: wire.TryKey{DAGID: "cb", RunID: r.RunID, TaskID: "flaky.on_failure.1", Try: 2}}
	h.run(cb, false, nil)
	tr, err := h.s.cfg.Store.GetTry("cb", r.RunID, "flaky.on_failure.1", 2)
	if err != nil || tr.State != store.TaskFailed {
		t.Errorf("callback try = %+v (%v), want recorded as failed", tr, err)
	}
	if got := h.runState("cb", r.RunID); got != store.RunFailed {
		t.Errorf("run = %s", got)
	}
	if ti, _ := h.s.cfg.Store.GetTaskInstance("cb", r.RunID, "ok"); ti.State != store.TaskSuccess {
		t.Errorf("ok = %s", ti.State)
	}
}

// TestCallbacksTakenUpAfterARestart: the callbacks open in the store when
// the scheduler stopped are taken up again. A queued one still in the
// tasks stream waits for its worker; one that is not there fails after
// lostGrace with the reason; a running one fails once its worker is silent.
func TestCallbacksTakenUpAfterARestart(t *testing.T) {
	h := newHarness(t, `
id: cb
tasks:
  - id: a
    plugin: shell
    with: {command: "x"}
    on_success:
      - {plugin: shell, with: {command: "in the stream"}}
      - {plugin: shell, with: {command: "lost"}}
      - {plugin: shell, with: {command: "running"}}
`)
	r, as := h.trigger("cb", nil)
	h.run(as[0], true, nil)
	key := func(i string) wire.TryKey {
		return wire.TryKey{DAGID: "cb", RunID: r.RunID, TaskID: "a.on_success." + i, Try: 1}
	}
	h.event(&wire.Assignment{TryKey: key("3")}, wire.EventStarted, true, nil)

	// A restart: the loop's state is gone, the store's remains; the second
	// callback's assignment is not in the stream.
	h.sent.mu.Lock()
	h.sent.gone = map[wire.TryKey]bool{key("2"): true}
	h.sent.mu.Unlock()
	var taken int
	h.turn(func() {
		clear(h.s.flights)
		if err := h.s.recoverCallbacks(h.clock.Now()); err != nil {
			t.Fatal(err)
		}
		taken = len(h.s.flights)
	})
	if taken != 3 {
		t.Fatalf("callbacks taken up: %d, want 3", taken)
	}
	h.advance(lostGrace + time.Second)
	h.turn(nil)
	h.advance(h.s.cfg.HeartbeatTimeout)
	h.turn(nil)
	for i, want := range map[string]struct {
		state store.TaskState
		err   string
	}{
		"1": {store.TaskQueued, ""},
		"2": {store.TaskFailed, "did not run"},
		"3": {store.TaskFailed, "stopped sending heartbeats"},
	} {
		tr, err := h.s.cfg.Store.GetTry("cb", r.RunID, key(i).TaskID, 1)
		if err != nil {
			t.Fatal(err)
		}
		if tr.State != want.state || !strings.Contains(tr.Error, want.err) {
			t.Errorf("callback %s: %s %q, want %s %q", i, tr.State, tr.Error, want.state, want.err)
		}
	}
}
