package ui_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// BenchmarkRunsPage10k renders the runs page, a page of 50, over a DAG
// with 1,000, 10,000 and 100,000 runs in the store of a real Kiln: the time is the
// same whatever the total, since the page reads an index from the newest
// run and decodes only its 50 runs. Deeper pages walk the index to their
// offset; a state filter checks every run's few-byte summary to count the
// total (the store's ListRuns contract).
//
//	go test -run '^$' -bench RunsPage10k -benchmem ./ui/
func BenchmarkRunsPage10k(b *testing.B) {
	for _, total := range []int{1000, 10000, 100000} {
		k := kilntest.Start(b, kilntest.Options{NoWorker: true, DAGs: []string{churnDAG}, Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) {
			addRuns(put, total)
		})})
		h := ui.New(k.Scheduler, ui.Options{}).Handler()
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

// addRuns puts n hourly runs of churn from 2000-01-01, every tenth failed.
func addRuns(put func(*store.Run, ...*store.TaskInstance), n int) {
	base := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n {
		date := base.Add(time.Duration(i) * time.Hour)
		start, end := date.Add(time.Hour), date.Add(time.Hour+3*time.Minute)
		state := store.RunSuccess
		if i%10 == 0 {
			state = store.RunFailed
		}
		put(&store.Run{
			DAGID: "churn", RunID: "scheduled__" + date.Format(time.RFC3339), RunType: store.RunTypeScheduled,
			State: state, LogicalDate: date, DataIntervalStart: date, DataIntervalEnd: date.Add(time.Hour),
			QueuedAt: start, StartDate: &start, EndDate: &end, Params: map[string]any{"region": "eu"},
		})
	}
}
