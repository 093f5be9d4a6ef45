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

// maxWaitLatency bounds how long --wait may take to return once the
// commit that ends what it waits for has begun (its fsync included, as the
// feed publishes before Commit returns to its caller). It holds with -race
// on a shared 2-core machine.
const maxWaitLatency = 50 * time.Millisecond

// waitLatencyTrials is how many times each --wait is measured.
const waitLatencyTrials = 7

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
// the run or backfill has ended: from the start of the commit that ends it
// to the command's return. The fallback re-read is an hour away, so only
// the event stream can tell them.
func TestWaitLatency(t *testing.T) {
	onlyEvents(t)
	e := newBackfillEnv(t)
	ctx := context.Background()

	measure := func(name string, trial func(i int) time.Duration) {
		var ds []time.Duration
		for i := range waitLatencyTrials {
			ds = append(ds, trial(i))
		}
		slices.Sort(ds)
		median, worst := ds[len(ds)/2], ds[len(ds)-1]
		t.Logf("%s: from commit to return: median %v, max %v (%v)", name, median, worst, ds)
		if worst > maxWaitLatency {
			t.Errorf("%s returned up to %v after the end was committed; want at most %v", name, worst, maxWaitLatency)
		}
	}

	measure("trigger --wait", func(i int) time.Duration {
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
		ended := time.Now()
		if err := e.b.Store().Commit(ctx, &b); err != nil {
			t.Fatal(err)
		}
		res := <-done
		d := time.Since(ended)
		if res.code != 0 {
			t.Fatalf("trigger --wait: exit %d: %s", res.code, res.stderr)
		}
		return d
	})

	measure("backfill --wait", func(i int) time.Duration {
		id := "bf-" + strconv.Itoa(i+1)
		ready := readAfterSubscribing(e, "/api/v1/backfills/"+id)
		day := churnDay(1 + i).Format(time.DateOnly)
		done := runAsync(t, "backfill", "churn", "--from", day, "--to", day, "--wait")
		await(t, ready, "backfill --wait to read its backfill")
		ended := time.Now()
		e.b.SetBackfillRun(id, churnDay(1+i), store.RunSuccess) // ends the backfill
		res := <-done
		d := time.Since(ended)
		if res.code != 0 {
			t.Fatalf("backfill --wait: exit %d: %s", res.code, res.stderr)
		}
		return d
	})
}
