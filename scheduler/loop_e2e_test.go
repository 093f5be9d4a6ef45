package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/store"
)

// turns reads how many turns the scheduler's loop has made.
func turns(t *testing.T, reg *prometheus.Registry) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "kiln_scheduler_turn_duration_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no kiln_scheduler_turn_duration_seconds")
	return 0
}

// TestE2EIdleLoopAfterCallbacks: once callbacks have run, an idle loop
// turns at its timer's rate (every heartbeat timeout / 4), not in a busy
// loop on checks of tries that ended long ago.
func TestE2EIdleLoopAfterCallbacks(t *testing.T) {
	reg := prometheus.NewRegistry()
	var cbs strings.Builder
	for i := range 10 {
		fmt.Fprintf(&cbs, "      - {plugin: shell, with: {command: 'echo callback %d'}}\n", i)
	}
	hb := 400 * time.Millisecond
	e := start(t, map[string]string{"cb": `
tasks:
  - id: a
    plugin: shell
    with: {command: "true"}
    on_success:
` + cbs.String()}, options{workers: 1, heartbeatTimeout: hb, metrics: reg})
	r := e.waitRun(e.trigger("cb", nil), 20*time.Second)
	e.waitFor("the callbacks to end", 20*time.Second, func() bool {
		for i := range 10 {
			tr, err := e.st.GetTry("cb", r.RunID, fmt.Sprintf("a.on_success.%d", i+1), 1)
			if err != nil || tr.State != store.TaskSuccess {
				return false
			}
		}
		return true
	})
	// Past a heartbeat timeout after the callbacks were sent, a check left
	// behind for any of them would be due.
	time.Sleep(2 * hb)
	before, begun := turns(t, reg), time.Now()
	time.Sleep(time.Second)
	n, took := turns(t, reg)-before, time.Since(begun)
	// The timer fires every hb/4; allow three times that rate.
	if limit := uint64(3 * took / (hb / 4)); n > limit {
		t.Errorf("idle loop made %d turns in %s, want at most %d", n, took.Round(time.Millisecond), limit)
	}
}

// TestE2ECommandsAnsweredWithNATSDown: with NATS gone and hundreds of
// queued tries due for a check of their assignment, the loop still answers
// API commands at once: every network call is off the loop.
func TestE2ECommandsAnsweredWithNATSDown(t *testing.T) {
	const n = 500
	var tasks strings.Builder
	for i := range n {
		fmt.Fprintf(&tasks, "  - {id: t%d, plugin: shell, with: {command: 'true'}}\n", i)
	}
	hb := time.Second
	e := start(t, map[string]string{"wide": "max_active_tasks: 1000\ntasks:\n" + tasks.String()},
		options{heartbeatTimeout: hb})
	ctx := context.Background()
	if err := e.s.SetPool(ctx, store.DefaultPool, 1000); err != nil {
		t.Fatal(err)
	}
	r := e.trigger("wide", nil)
	e.waitFor("every task to be queued", 30*time.Second, func() bool {
		states := e.taskStates(r)
		for _, s := range states {
			if s != store.TaskQueued {
				return false
			}
		}
		return len(states) == n
	})
	e.ns.Shutdown()
	// Let the checks of the queued tries' assignments come due.
	time.Sleep(hb + hb/2)
	var worst time.Duration
	for i := range 10 {
		begun := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := e.s.SetPaused(cctx, "wide", i%2 == 0)
		cancel()
		if err != nil {
			t.Fatalf("pausing with NATS down: %v", err)
		}
		worst = max(worst, time.Since(begun))
		time.Sleep(hb / 5)
	}
	if worst > 100*time.Millisecond {
		t.Errorf("slowest answer with NATS down: %s, want under 100ms", worst)
	}
}
