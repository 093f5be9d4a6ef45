package ui_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/ui/uitest"
)

// BenchmarkRunsPage10k renders the runs page, a page of 50, over a DAG
// with 1,000, 10,000 and 100,000 runs in a real store: the time is the
// same whatever the total, since the page reads an index from the newest
// run and decodes only its 50 runs. Deeper pages walk the index to their
// offset; a state filter checks every run's few-byte summary to count the
// total (the store's ListRuns contract).
//
//	go test -run '^$' -bench RunsPage10k -benchmem ./ui/
func BenchmarkRunsPage10k(b *testing.B) {
	be := uitest.New(b, churnDAG)
	h := ui.New(be, ui.Options{}).Handler()
	have := 0
	for _, total := range []int{1000, 10000, 100000} {
		addRuns(b, be, have, total)
		have = total
		for _, q := range []string{"", "?offset=" + strconv.Itoa(total-50), "?state=failed"} {
			name := "runs=" + strconv.Itoa(total)
			if q != "" {
				name += "/" + strings.TrimPrefix(strings.Split(q, "=")[0], "?")
			}
			if total != 10000 && q != "" {
				continue // the deep page and the filter once, at 10k
			}
			b.Run(name, func(b *testing.B) {
				req := httptest.NewRequest(http.MethodGet, "/dags/churn/runs"+q, nil)
				req.RemoteAddr = "127.0.0.1:1234"
				for b.Loop() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK || strings.Count(rec.Body.String(), "<tr data-run=") != 50 {
						b.Fatalf("status %d, %d rows", rec.Code, strings.Count(rec.Body.String(), "<tr data-run="))
					}
				}
			})
		}
	}
}

// addRuns commits runs from..to-1 of churn, a thousand per commit, every
// tenth failed.
func addRuns(b *testing.B, be *uitest.Backend, from, to int) {
	b.Helper()
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for lo := from; lo < to; lo += 1000 {
		be.Commit(func(batch *store.Batch) {
			for i := lo; i < min(lo+1000, to); i++ {
				date := base.Add(time.Duration(i) * time.Hour)
				start, end := date.Add(time.Hour), date.Add(time.Hour+3*time.Minute)
				state := store.RunSuccess
				if i%10 == 0 {
					state = store.RunFailed
				}
				batch.PutRun(&store.Run{
					DAGID: "churn", RunID: "scheduled__" + date.Format(time.RFC3339), RunType: store.RunTypeScheduled,
					State: state, LogicalDate: date, DataIntervalStart: date, DataIntervalEnd: date.Add(time.Hour),
					QueuedAt: start, StartDate: &start, EndDate: &end, Params: map[string]any{"region": "eu"},
				})
			}
		})
	}
}
