package ui_test

// Benchmarks of the heaviest pages, measured through the whole handler
// (routing, auth middleware, store reads, templates) with a recorder. The
// acceptance bar is 300 ms of server time for each:
//
//	go test -run '^$' -bench 'Grid1000x25|DAGList1000|Mapped10k' -benchmem ./ui/

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// bigDAG is a DAG of n tasks: task i depends on task (i-1)/3 and, every
// seventh, on task i/2 as well, which makes a broad tree with cross links.
// It starts far ahead: the scheduler makes no run of it.
func bigDAG(id string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nschedule: \"@daily\"\nstart_date: 2099-01-01\ntasks:\n", id)
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

// putRuns puts n finished scheduled runs of a DAG with the given tasks, in
// mixed states.
func putRuns(put func(*store.Run, ...*store.TaskInstance), dagID string, tasks []string, n int) {
	states := []store.TaskState{store.TaskSuccess, store.TaskSuccess, store.TaskFailed, store.TaskSkipped, store.TaskRunning}
	for r := range n {
		run := finishedRun(dagID, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r), store.RunSuccess)
		tis := make([]*store.TaskInstance, len(tasks))
		for i, id := range tasks {
			tis[i] = finishedTask(run, id, states[(i+r)%len(states)])
			tis[i].MaxTries = 3
		}
		put(run, tis...)
	}
}

// bigTasks are the task ids of bigDAG(_, n).
func bigTasks(n int) []string {
	out := make([]string, n)
	for i := range n {
		out[i] = fmt.Sprintf("task_%04d", i)
	}
	return out
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
	k := kilntest.Start(b, kilntest.Options{NoWorker: true, DAGs: []string{bigDAG("big", 1000)},
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) { putRuns(put, "big", bigTasks(1000), 25) })})
	h := ui.New(k.Scheduler, ui.Options{}).Handler()
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

// BenchmarkGridMapped10k renders the grid of 25 runs of wideDAG, the
// newest with a task mapped over 10,000 items: the grid reads the task's
// own instance, which stands for them all, and skips theirs unread.
//
//	go test -run '^$' -bench Mapped10k -benchmem ./ui/
func BenchmarkGridMapped10k(b *testing.B) {
	k := kilntest.Start(b, kilntest.Options{NoWorker: true, DAGs: []string{wideDAG},
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) { putWideRuns(put, 25, 10000) })})
	h := ui.New(k.Scheduler, ui.Options{}).Handler()
	rec := servePage(b, h, "/dags/wide")
	if body := rec.Body.String(); strings.Count(body, `<a class="cell"`) != 75 || !strings.Contains(body, `data-map-length="10000"`) {
		b.Fatalf("want 75 cells, one with 10000 instances:\n%.2000s", body)
	}
	b.ResetTimer()
	for b.Loop() {
		servePage(b, h, "/dags/wide")
	}
}

// BenchmarkRunPageMapped10k renders the run page of that newest run with
// the mapped task picked: its first 1,000 instances are listed.
func BenchmarkRunPageMapped10k(b *testing.B) {
	k := kilntest.Start(b, kilntest.Options{NoWorker: true, DAGs: []string{wideDAG},
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) { putWideRuns(put, 1, 10000) })})
	h := ui.New(k.Scheduler, ui.Options{}).Handler()
	path := "/dags/wide/runs/" + wideRunID(1) + "?task=process"
	rec := servePage(b, h, path)
	if n := strings.Count(rec.Body.String(), `<tr data-map-index=`); n != 1000 {
		b.Fatalf("%d instance rows, want 1000", n)
	}
	b.ReportMetric(float64(rec.Body.Len()), "bytes/page")
	b.ResetTimer()
	for b.Loop() {
		servePage(b, h, path)
	}
}

func BenchmarkGraph1000(b *testing.B) {
	k := kilntest.Start(b, kilntest.Options{NoWorker: true, DAGs: []string{bigDAG("big", 1000)},
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) { putRuns(put, "big", bigTasks(1000), 1) })})
	h := ui.New(k.Scheduler, ui.Options{}).Handler()
	servePage(b, h, "/dags/big/graph")
	b.ResetTimer()
	for b.Loop() {
		servePage(b, h, "/dags/big/graph")
	}
}

func BenchmarkDAGList1000(b *testing.B) {
	tasks := []string{"extract", "transform", "load"}
	var dags []string
	for i := range 1000 {
		dags = append(dags, fmt.Sprintf(`
id: dag_%04d
description: Loads table %d into the warehouse
schedule: "%d 3 * * *"
timezone: Europe/Berlin
start_date: 2099-01-01
tags: [team%d, etl]
tasks:
  - {id: extract, plugin: shell, with: {command: echo e}}
  - {id: transform, plugin: shell, depends_on: [extract], with: {command: echo t}}
  - {id: load, plugin: shell, depends_on: [transform], with: {command: echo l}}
`, i, i, i%60, i%10))
	}
	k := kilntest.Start(b, kilntest.Options{NoWorker: true, DAGs: dags,
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) {
			for i := range 1000 {
				putRuns(put, fmt.Sprintf("dag_%04d", i), tasks, 10)
			}
		})})
	h := ui.New(k.Scheduler, ui.Options{}).Handler()
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
