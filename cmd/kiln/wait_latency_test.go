package main

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// maxWaitLatency bounds how long --wait takes, in the median of
// waitLatencyTrials trials, to return once the commit that ends what it
// waits for has returned: the run has ended then, on disk. It holds with
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

// TestWaitLatency measures, against the real API over a store that the
// test commits to, how soon trigger --wait and backfill --wait return once
// the run or backfill has ended: from the return of the commit that ends
// it to the command's return. The store publishes the change before
// Commit returns, so the command may be done first (0). The fallback
// re-read is an hour away, so only the event stream can tell them. The
// log also shows the time from the start of the commit, its fsync
// included.
func TestWaitLatency(t *testing.T) {
	onlyEvents(t)
	e := newBackfillEnv(t)
	ctx := context.Background()

	// A trial ends what the command waits for between start and
	// committed, and returns when the command returned.
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
		t.Logf("%s: from the commit's return: median %v, max %v; from its start: median %v, max %v",
			name, median, after[len(after)-1], since[len(since)/2], since[len(since)-1])
		if median > maxWaitLatency {
			t.Errorf("%s returned %v (median) after the commit that ended it; want at most %v (all: %v)", name, median, maxWaitLatency, after)
		}
	}

	measure("trigger --wait", func(i int) (start, committed, returned time.Time) {
		date := time.Date(2026, 3, 1+i, 0, 0, 0, 0, time.UTC)
		runID := "manual__" + date.Format(time.RFC3339)
		ready := readAfterSubscribing(e, "/api/v1/dags/churn/runs/"+runID)
		done := runAsync(t, "trigger", "churn", "--wait", "--date", date.Format(time.RFC3339))
		await(t, ready, "trigger --wait to read its run")
		run, err := e.b.Store().GetRun("churn", runID)
		if err != nil {
			t.Fatal(err)
		}
		end := date.Add(time.Minute)
		run.State, run.StartDate, run.EndDate = store.RunSuccess, &date, &end
		var b store.Batch
		b.PutRun(run)
		start = time.Now()
		if err := e.b.Store().Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
		committed = time.Now()
		res := <-done
		returned = res.at
		if res.code != 0 {
			t.Fatalf("trigger --wait: exit %d: %s", res.code, res.stderr)
		}
		return start, committed, returned
	})

	measure("backfill --wait", func(i int) (start, committed, returned time.Time) {
		id := "bf-" + strconv.Itoa(i+1)
		ready := readAfterSubscribing(e, "/api/v1/backfills/"+id)
		day := churnDay(1 + i).Format(time.DateOnly)
		done := runAsync(t, "backfill", "churn", "--from", day, "--to", day, "--wait")
		await(t, ready, "backfill --wait to read its backfill")
		start = time.Now()
		e.b.SetBackfillRun(id, churnDay(1+i), store.RunSuccess) // ends the backfill
		committed = time.Now()
		res := <-done
		if res.code != 0 {
			t.Fatalf("backfill --wait: exit %d: %s", res.code, res.stderr)
		}
		return start, committed, res.at
	})
}
