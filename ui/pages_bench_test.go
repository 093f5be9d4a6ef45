package ui_test

// Benchmarks of the heaviest pages, measured through the whole handler
// (routing, auth middleware, store reads, templates) with a recorder. The
// acceptance bar is 300 ms of server time for each:
//
//	go test -run '^$' -bench 'Grid1000x25|DAGList1000' -benchmem ./ui/

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/ui/uitest"
)

// bigDAG is a DAG of n tasks: task i depends on task (i-1)/3 and, every
// seventh, on task i/2 as well, which makes a broad tree with cross links.
func bigDAG(id string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nschedule: \"@daily\"\nstart_date: 2025-01-01\ntasks:\n", id)
	for i := range n {
		fmt.Fprintf(&b, "  - id: task_%04d\n    plugin: shell\n    with: {command: echo %d}\n", i, i)
		if i > 0 {
			deps := []string{fmt.Sprintf("task_%04d", (i-1)/3)}
			if i%7 == 0 && i/2 != (i-1)/3 {
				deps = append(deps, fmt.Sprintf("task_%04d", i/2))
			}
			fmt.Fprintf(&b, "    depends_on: [%s]\n", strings.Join(deps, ", "))
		}
	}
	return b.String()
}

// putRuns commits n finished scheduled runs of a DAG with the given tasks,
// one batch per run, in mixed states.
func putRuns(b *uitest.Backend, dagID string, tasks []string, n int) {
	states := []store.TaskState{store.TaskSuccess, store.TaskSuccess, store.TaskFailed, store.TaskSkipped, store.TaskRunning}
	for r := range n {
		date := time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r)
		start, end := date.Add(24*time.Hour), date.Add(25*time.Hour)
		run := &store.Run{
			DAGID: dagID, RunID: "scheduled__" + date.Format(time.RFC3339), RunType: store.RunTypeScheduled,
			State: store.RunSuccess, LogicalDate: date, DataIntervalStart: date, DataIntervalEnd: date.AddDate(0, 0, 1),
			QueuedAt: start, StartDate: &start, EndDate: &end,
		}
		b.Commit(func(batch *store.Batch) {
			batch.PutRun(run)
			for i, id := range tasks {
				batch.PutTaskInstance(&store.TaskInstance{
					DAGID: dagID, RunID: run.RunID, TaskID: id, State: states[(i+r)%len(states)],
					TryNumber: 1, MaxTries: 3, Queue: "default", Pool: "default_pool", PoolSlots: 1, Priority: 1,
					QueuedAt: &start, StartDate: &start, EndDate: &end, Worker: "worker-1",
				})
			}
		})
	}
}

// servePage runs one request through the handler, as from this machine.
func servePage(b *testing.B, h http.Handler, path string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.RemoteAddr = "127.0.0.1:50000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("GET %s: %d %.500s", path, rec.Code, rec.Body.String())
	}
	return rec
}

func BenchmarkGrid1000x25(b *testing.B) {
	be := uitest.New(b)
	g := be.AddDAG("big.yaml", bigDAG("big", 1000))
	tasks := make([]string, len(g.Tasks))
	for i, t := range g.Tasks {
		tasks[i] = t.ID
	}
	putRuns(be, "big", tasks, 25)
	h := ui.New(be, ui.Options{}).Handler()
	rec := servePage(b, h, "/dags/big")
	if n := strings.Count(rec.Body.String(), `<a class="cell"`); n != 25000 {
		b.Fatalf("%d cells, want 25000", n)
	}
	b.ReportMetric(float64(rec.Body.Len()), "bytes/page")
	b.ResetTimer()
	for b.Loop() {
		servePage(b, h, "/dags/big")
	}
}

func BenchmarkGraph1000(b *testing.B) {
	be := uitest.New(b)
	g := be.AddDAG("big.yaml", bigDAG("big", 1000))
	tasks := make([]string, len(g.Tasks))
	for i, t := range g.Tasks {
		tasks[i] = t.ID
	}
	putRuns(be, "big", tasks, 1)
	h := ui.New(be, ui.Options{}).Handler()
	servePage(b, h, "/dags/big/graph")
	b.ResetTimer()
	for b.Loop() {
		servePage(b, h, "/dags/big/graph")
	}
}

func BenchmarkDAGList1000(b *testing.B) {
	be := uitest.New(b)
	tasks := []string{"extract", "transform", "load"}
	for i := range 1000 {
		id := fmt.Sprintf("dag_%04d", i)
		be.AddDAG(id+".yaml", fmt.Sprintf(`
id: %s
description: Loads table %d into the warehouse
schedule: "%d 3 * * *"
timezone: Europe/Berlin
start_date: 2025-01-01
tags: [team%d, etl]
tasks:
  - {id: extract, plugin: shell, with: {command: echo e}}
  - {id: transform, plugin: shell, depends_on: [extract], with: {command: echo t}}
  - {id: load, plugin: shell, depends_on: [transform], with: {command: echo l}}
`, id, i, i%60, i%10))
		putRuns(be, id, tasks, 10)
	}
	h := ui.New(be, ui.Options{}).Handler()
	rec := servePage(b, h, "/dags")
	if n := strings.Count(rec.Body.String(), `<tr data-dag=`); n != 1000 {
		b.Fatalf("%d rows, want 1000", n)
	}
	b.ReportMetric(float64(rec.Body.Len()), "bytes/page")
	b.ResetTimer()
	for b.Loop() {
		servePage(b, h, "/dags")
	}
}
