package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/ui"
)

// TestWaitAfterStreamBreaks breaks the event stream of trigger --wait and
// lets the run end while it is down (its task train held at a gate until
// then, and failing in region us): the command opens the stream again and
// re-reads the run then, although no event for the run's end ever reaches
// it (and the fallback re-read is an hour away).
func TestWaitAfterStreamBreaks(t *testing.T) {
	onlyEvents(t)
	prev := eventRetry
	eventRetry = time.Millisecond
	t.Cleanup(func() { eventRetry = prev })
	e := newCLIEnv(t)
	train := e.k.Gate("train")
	api := ui.New(e.k.Scheduler, ui.Options{}).Handler()

	const runID = "manual__2026-03-01T00:00:00Z"
	var (
		mu        sync.Mutex
		streams   int
		cut       context.CancelFunc
		readOnce  sync.Once
		read      = make(chan struct{}) // the command read the run after subscribing
		reopened  = make(chan struct{}) // the second stream was asked for
		committed = make(chan struct{}) // the run's end is committed
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/events" {
			mu.Lock()
			streams++
			n := streams
			ctx, cancel := context.WithCancel(r.Context())
			if n == 1 {
				cut = cancel
			}
			mu.Unlock()
			defer cancel()
			if n == 2 {
				close(reopened)
				<-committed
			}
			api.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		api.ServeHTTP(w, r)
		if r.Method == http.MethodGet && r.URL.Path == "/api/v1/dags/churn/runs/"+runID {
			readOnce.Do(func() { close(read) })
		}
	}))
	t.Cleanup(srv.Close) // after t.Context ends the command, were it still waiting

	done := runAsync(t, "trigger", "churn", "--wait", "--date", "2026-03-01T00:00:00Z", "--param", "region=us", "--server", srv.URL)
	await(t, read, "the command to read its run")
	mu.Lock()
	cut() // the server ends the stream
	mu.Unlock()
	await(t, reopened, "the command to open the stream again")
	// The second stream is held until the scheduler has ended the run.
	train.Open()
	e.k.WaitRun("churn", runID)
	close(committed)

	select {
	case res := <-done:
		wantExit(t, res.code, res.stderr, 1, "run "+runID+" of DAG churn failed")
	case <-time.After(10 * time.Second):
		t.Fatal("trigger --wait did not return after its stream broke")
	}
}
