package main

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
)

// maxWaitLatency bounds how long --wait takes, in the median of
// waitLatencyTrials trials, to return once the commit that ends what it
// waits for is on disk: the run has ended then. It holds with
// -race on a shared 2-core machine, where a trial now and then waits
// longer for a CPU (the log shows the slowest).
const maxWaitLatency = 50 * time.Millisecond

const waitLatencyTrials = 9

// readAfterSubscribing returns a channel closed once the command has read
// path: it reads it first once the event stream is open (the fallback
// re-read being an hour away), and then waits for events, so that a
// commit made from then on reaches it only through the stream.
func readAfterSubscribing(e *cliEnv, path string) <-chan struct{} {
	ready := make(chan struct{})
	var once sync.Once
	e.onServed(func(r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == path {
			once.Do(func() { close(ready) })
		}
	})
	return ready
}

// await waits for ch to be closed, or fails the test after 10 s.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// commitSeen returns a channel that receives the time at which a reader of
// the store's change feed (as the API's event stream is) is woken by the
// first change that done accepts: once the scheduler's commit of it is on
// disk, just before that commit returns. It gives up when the test ends.
func commitSeen(t *testing.T, st *store.Store, done func(store.Change) bool) <-chan time.Time {
	seen := make(chan time.Time, 1)
	cur := st.ChangesAfter(st.LastChange())
	go func() {
		var buf []store.Change
		for {
			select {
			case <-cur.Wait():
			case <-t.Context().Done():
				return
			}
			at := time.Now()
			var err error
			buf, err = cur.Read(buf[:0])
			if err != nil {
				return // lost or closed: the trial times out and says so
			}
			if slices.ContainsFunc(buf, done) {
				seen <- at
				return
			}
		}
	}()
	return seen
}

// TestWaitLatency measures, against the real API of a real Kiln, how soon
// trigger --wait and backfill --wait return once the run or backfill has
// ended: from the scheduler's commit that ends it (as a reader of the
// store's change feed sees it: the feed publishes once the transaction is
// on disk, just before Commit returns) to the command's return. Each trial
// holds the run's quick task at a gate until the command has read what it
// waits for after subscribing, then opens it; the fallback re-read is an
// hour away, so only the event stream can tell the command. The log also
// shows the time from the gate's opening: the task's exit, the worker's
// report and the scheduler's turn and commit, fsync included.
func TestWaitLatency(t *testing.T) {
	onlyEvents(t)
	e := newBackfillEnv(t)
	st := e.k.Store()

	// A trial opens the gate at start, sees the commit that ends what the
	// command waits for at committed, and returns when the command
	// returned.
	type trial func(i int) (start, committed, returned time.Time)
	measure := func(name string, run trial) {
		var after, since []time.Duration
		for i := range waitLatencyTrials {
			start, committed, returned := run(i)
			after = append(after, max(returned.Sub(committed), 0))
			since = append(since, returned.Sub(start))
		}
		slices.Sort(after)
		slices.Sort(since)
		median := after[len(after)/2]
		t.Logf("%s: from the commit: median %v, max %v; from the gate's opening: median %v, max %v",
			name, median, after[len(after)-1], since[len(since)/2], since[len(since)-1])
		if median > maxWaitLatency {
			t.Errorf("%s returned %v (median) after the commit that ended it; want at most %v (all: %v)", name, median, maxWaitLatency, after)
		}
	}
	// wait returns when the commit was seen and the command returned.
	wait := func(name string, seen <-chan time.Time, done <-chan cliResult) (committed time.Time, res cliResult) {
		t.Helper()
		select {
		case committed = <-seen:
		case <-time.After(kilntest.WaitTimeout):
			t.Fatalf("%s: the commit that ends it was not seen", name)
		}
		select {
		case res = <-done:
		case <-time.After(kilntest.WaitTimeout):
			t.Fatalf("%s did not return", name)
		}
		if res.code != 0 {
			t.Fatalf("%s: exit %d: %s", name, res.code, res.stderr)
		}
		return committed, res
	}

	// Runs of churn on February days, at 03:00 in Berlin (02:00 UTC), so
	// that their ds is the same day in both zones: the gate of that day
	// holds their task.
	measure("trigger --wait", func(i int) (start, committed, returned time.Time) {
		date := time.Date(2026, 2, 1+i, 2, 0, 0, 0, time.UTC)
		runID := "manual__" + date.Format(time.RFC3339)
		gate := e.k.Gate(date.Format(time.DateOnly))
		ready := readAfterSubscribing(e, "/api/v1/dags/churn/runs/"+runID)
		done := runAsync(t, "trigger", "churn", "--wait", "--date", date.Format(time.RFC3339))
		await(t, ready, "trigger --wait to read its run")
		seen := commitSeen(t, st, func(c store.Change) bool {
			return c.Kind == store.ChangeRun && c.DAGID == "churn" && c.RunID == runID && store.RunState(c.State).Finished()
		})
		start = time.Now()
		gate.Open()
		committed, res := wait("trigger --wait", seen, done)
		return start, committed, res.at
	})

	// One-day backfills of the 21st to the 29th of January, whose runs
	// succeed.
	measure("backfill --wait", func(i int) (start, committed, returned time.Time) {
		id := "bf-" + strconv.Itoa(i+1)
		day := churnDay(21 + i).Format(time.DateOnly)
		gate := e.k.Gate(day)
		ready := readAfterSubscribing(e, "/api/v1/backfills/"+id)
		done := runAsync(t, "backfill", "churn", "--from", day, "--to", day, "--wait")
		await(t, ready, "backfill --wait to read its backfill")
		seen := commitSeen(t, st, func(c store.Change) bool {
			return c.Kind == store.ChangeBackfill && c.BackfillID == id && store.BackfillState(c.State).Finished()
		})
		start = time.Now()
		gate.Open()
		committed, res := wait("backfill --wait", seen, done)
		return start, committed, res.at
	})
}
