package ui_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/kilnhq/kiln/store"
)

// TestLivePagesNameTheirEvents checks that the pages whose live blocks
// show runs, task instances and backfills name the event stream of what
// they show (kiln.js refreshes them on its events), and that the stream
// carries a change of it; pages showing other state poll. The run and the
// backfill's run hold at the gate "ev" while the pages are read.
func TestLivePagesNameTheirEvents(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, eventsDAG)
	gate := k.Gate("ev")
	run := trigger(t, k, "ev", "2026-03-01T00:00:00Z", nil)
	k.WaitTask("ev", run.RunID, "work", store.TaskRunning)
	if r := call(t, "POST", srv.URL+"/api/v1/dags/ev/backfills", `{"from": "2026-01-02", "to": "2026-01-02"}`); r.status != http.StatusCreated {
		t.Fatalf("backfill: %d %s", r.status, r.body)
	}
	runEvents := "/api/v1/events?dag=ev&run=" + url.QueryEscape(run.RunID)
	for _, tt := range []struct {
		page, events string
	}{
		{"/dags/ev/runs/" + run.RunID, runEvents},
		{"/dags/ev/runs", "/api/v1/events?dag=ev"},
		{"/dags/ev", "/api/v1/events?dag=ev"},
		{"/dags/ev/graph", "/api/v1/events?dag=ev"},
		{"/backfills/bf-1", "/api/v1/events?dag=ev"},
		{"/backfills", "/api/v1/events"},
		{"/dags", ""},  // import errors and pauses are not in the store's feed
		{"/pools", ""}, // nor are pools
	} {
		d := getPage(t, srv.URL+tt.page).want(t, http.StatusOK)
		if got := d.one("main").attr("data-events"); got != tt.events {
			t.Errorf("%s: main data-events = %q, want %q", tt.page, got, tt.events)
		}
	}

	// The run page's stream tells of the changes of its run, up to its
	// success once the gate opens.
	es := openEvents(t, http.DefaultClient, srv.URL+runEvents, nil)
	gate.Open()
	got := es.until(t, isLastOf(run.RunID))
	for _, e := range got {
		if e.DAGID != "ev" || e.RunID != run.RunID {
			t.Errorf("the run page's stream sent %+v, not of its run", e)
		}
	}
	if !slices.ContainsFunc(got, isRun(run.RunID, store.RunSuccess)) {
		t.Errorf("the run page's stream sent %+v, want the run's success among them", got)
	}
}
