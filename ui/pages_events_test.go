package ui_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// TestLivePagesNameTheirEvents checks that the pages whose live blocks
// show runs, task instances and backfills name the event stream of what
// they show (kiln.js refreshes them on its events), and that the stream
// carries a change of it; pages showing other state poll.
func TestLivePagesNameTheirEvents(t *testing.T) {
	b, srv := newAPI(t)
	run := putRun(b, 5, store.RunRunning, store.RunTypeScheduled)
	b.Commit(func(batch *store.Batch) {
		batch.PutBackfill(&store.Backfill{ID: "bf-1", DAGID: "churn", State: store.BackfillRunning})
	})
	runEvents := "/api/v1/events?dag=churn&run=" + url.QueryEscape(run.RunID)
	for _, tt := range []struct {
		page, events string
	}{
		{"/dags/churn/runs/" + run.RunID, runEvents},
		{"/dags/churn/runs", "/api/v1/events?dag=churn"},
		{"/dags/churn", "/api/v1/events?dag=churn"},
		{"/dags/churn/graph", "/api/v1/events?dag=churn"},
		{"/backfills/bf-1", "/api/v1/events?dag=churn"},
		{"/backfills", "/api/v1/events"},
		{"/dags", ""},  // import errors and pauses are not in the store's feed
		{"/pools", ""}, // nor are pools
	} {
		d := getPage(t, srv.URL+tt.page).want(t, http.StatusOK)
		if got := d.one("main").attr("data-events"); got != tt.events {
			t.Errorf("%s: main data-events = %q, want %q", tt.page, got, tt.events)
		}
	}

	// The run page's stream tells of a change of its run.
	es := openEvents(t, http.DefaultClient, srv.URL+runEvents, nil)
	run.State = store.RunSuccess
	b.Commit(func(batch *store.Batch) { batch.PutRun(run) })
	if got := es.until(t, func(ui.Event) bool { return true }); got[0].Kind != "run" || got[0].State != "success" {
		t.Errorf("the run page's stream sent %+v, want the run's success", got)
	}
}
