package ui_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// TestChartsPage: a bar per ended run on the run-duration and landing
// charts, linking to the run; a line per task that ran to its end.
func TestChartsPage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	failed := pc.putChurnRun(1, "us") // ended: extract failed, report ran
	running := pc.putChurnRun(2, "eu")
	p := pc.get("/dags/churn/charts")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "a", "id=tab-charts", "class~=on")
	for _, id := range []string{"chart-run-duration", "chart-landing"} {
		p.has(t, "svg", "id="+id)
	}
	// Two charts of bars, one bar each: the run still running has none.
	bars := dagPageTags(p.body, "rect", "class~=bar")
	if len(bars) != 2 || bars[0]["data-state"] != "failed" || bars[1]["data-state"] != "failed" {
		t.Errorf("bars = %v, want the failed run's on both charts", bars)
	}
	if n := p.count("a", "href=/dags/churn/runs/"+failed); n != 2 {
		t.Errorf("%d bars link to %s, want 2", n, failed)
	}
	if n := p.count("a", "href=/dags/churn/runs/"+running); n != 0 {
		t.Errorf("the running run %s has a bar", running)
	}
	// Task duration: a line per task that ran to its end (extract and
	// report in the failed run; train is still running in the other).
	var tasks []string
	for _, g := range dagPageTags(p.body, "g", "data-task") {
		tasks = append(tasks, g["data-task"])
	}
	if strings.Join(tasks, " ") != "extract report" && strings.Join(tasks, " ") != "report extract" {
		t.Errorf("task lines = %v, want extract and report", tasks)
	}
	p.has(t, "ul", "id=chart-task-legend")
	p.has(t, "select", "id=chart-runs")
	pc.get("/dags/churn/charts?runs=0").wantStatus(t, http.StatusBadRequest)
	pc.get("/dags/nope/charts").wantStatus(t, http.StatusNotFound)

	// A DAG without runs says so.
	empty := pc.get("/dags/adhoc/charts")
	empty.wantStatus(t, http.StatusOK)
	if n := empty.count("p", "class~=chart-empty"); n != 3 {
		t.Errorf("%d empty notes, want 3", n)
	}
}

// TestCalendarPage: a square per day of the last 53 weeks up to today,
// today's coloured by its runs.
func TestCalendarPage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	r := trigger(t, pc.k, "adhoc", "", nil)
	pc.k.WaitRun("adhoc", r.RunID, store.RunSuccess)
	p := pc.get("/dags/adhoc/calendar")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "svg", "id=calendar")
	days := dagPageTags(p.body, "rect", "class~=day")
	if len(days) < 52*7+1 || len(days) > 53*7 {
		t.Fatalf("%d days, want 53 weeks up to today", len(days))
	}
	today := time.Now().UTC().Format(time.DateOnly)
	last := days[len(days)-1]
	if last["data-date"] != today || last["data-state"] != "success" {
		t.Errorf("last day = %v, want today %s, success", last, today)
	}
	if n := p.count("rect", "class~=day", "data-state=none"); n != len(days)-1 {
		t.Errorf("%d days without runs, want all but today", n)
	}
	if !strings.Contains(p.body, today+" · 1 run: 1 success") {
		t.Error("today's title does not count its run")
	}
	pc.get("/dags/nope/calendar").wantStatus(t, http.StatusNotFound)
}
