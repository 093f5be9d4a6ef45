package ui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// groupsDAG is start → extract_a, extract_b → load, the two extracts in
// the group extract once groupTasks has put them there.
const groupsDAG = `
id: grouped
start_date: 2099-01-01
tasks:
  - {id: start, plugin: shell, with: {command: "true"}}
  - {id: extract_a, plugin: shell, depends_on: [start], with: {command: "true"}}
  - {id: load, plugin: shell, depends_on: [extract_a, extract_b], with: {command: "true"}}
  - {id: extract_b, plugin: shell, depends_on: [start], with: {command: "true"}}
`

// groupedPages serves a Kiln with the grouped DAG, its extracts in the
// group extract, and two runs: in the older extract_b failed, in the newer
// extract_a is running and extract_b succeeded.
func groupedPages(t *testing.T) (*pageClient, [2]string) {
	t.Helper()
	var runs [2]string
	k := kilntest.Start(t, kilntest.Options{NoWorker: true, DAGs: []string{groupsDAG},
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) {
			day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for r, states := range [][3]store.TaskState{
				{store.TaskSuccess, store.TaskSuccess, store.TaskFailed},
				{store.TaskSuccess, store.TaskRunning, store.TaskSuccess},
			} {
				run := finishedRun("grouped", day.AddDate(0, 0, r), store.RunSuccess)
				runs[r] = run.RunID
				put(run, finishedTask(run, "start", states[0]), finishedTask(run, "extract_a", states[1]), finishedTask(run, "extract_b", states[2]))
			}
		})})
	info, ok := k.Scheduler.DAG("grouped")
	if !ok {
		t.Fatal("the DAG grouped did not load")
	}
	groupTasks(info.DAG, "extract", "Reads the sources", "extract_a", "extract_b")
	return &pageClient{t: t, k: k, srv: serveAPI(t, k, ui.Options{})}, runs
}

// groupTasks puts tasks of a loaded DAG in a new group, as the loader
// does for a DAG file's groups, before any page has read the DAG.
func groupTasks(g *dag.DAG, name, description string, ids ...string) {
	g.Groups = append(g.Groups, &dag.Group{Name: name, Description: description, Tasks: ids})
	for _, id := range ids {
		g.Task(id).Group = name
	}
}

func TestGraphGroups(t *testing.T) {
	t.Parallel()
	pc, runs := groupedPages(t)

	p := pc.get("/dags/grouped/graph")
	p.wantStatus(t, http.StatusOK)
	box := p.has(t, "g", "class~=group", "data-group=extract")
	if box["data-state"] != "running" {
		t.Errorf("group box %v, want the state running: the worst of running and success", box)
	}
	p.has(t, "a", "class~=group-fold", "href=/dags/grouped/graph?fold=extract")
	rect := p.has(t, "rect", "class~=group-box")
	var bx, by, bw, bh float64
	for s, f := range map[string]*float64{"x": &bx, "y": &by, "width": &bw, "height": &bh} {
		fmt.Sscanf(rect[s], "%g", f)
	}
	for _, task := range []string{"start", "extract_a", "extract_b", "load"} {
		var x, y float64
		fmt.Sscanf(p.has(t, "g", "class~=node", "data-task="+task)["transform"], "translate(%g %g)", &x, &y)
		in := x >= bx && y >= by && x+184 <= bx+bw && y+38 <= by+bh
		if want := task == "extract_a" || task == "extract_b"; in != want {
			t.Errorf("task %s at (%v, %v): in the box (%v, %v, %v×%v) %v, want %v", task, x, y, bx, by, bw, bh, in, want)
		}
	}
	if !strings.Contains(p.body, "<title>extract · Reads the sources · running · fold</title>") {
		t.Error("the group's box has no tooltip with its description")
	}

	// Folded, in the older run: one node, the worst state, edges to it.
	old := url.QueryEscape(runs[0])
	f := pc.get("/dags/grouped/graph?fold=extract&run=" + old)
	f.wantStatus(t, http.StatusOK)
	if n := f.count("g", "class~=group"); n != 0 {
		t.Errorf("%d group boxes folded, want 0", n)
	}
	f.has(t, "g", "class~=node", "class~=folded", "data-group=extract", "data-state=failed")
	f.has(t, "a", "href=/dags/grouped/graph?run="+old)
	if n := f.count("g", "class~=node"); n != 3 {
		t.Errorf("%d nodes folded, want 3: start, the group, load", n)
	}
	if n := f.count("path", "class~=edge"); n != 2 {
		t.Errorf("%d edges folded, want 2", n)
	}
	f.has(t, "path", "class~=edge", "data-from=start", "data-to=extract")
	f.has(t, "path", "class~=edge", "data-from=extract", "data-to=load")
	f.has(t, "input", "type=hidden", "name=fold", "value=extract")

	// A name that is no group folds nothing.
	pc.get("/dags/grouped/graph?fold=nope").has(t, "g", "class~=group", "data-group=extract")
}

func TestGridGroups(t *testing.T) {
	t.Parallel()
	pc, runs := groupedPages(t)

	p := pc.get("/dags/grouped")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "tr", "class~=group-row", "data-group=extract")
	p.has(t, "a", "class~=group-toggle", "aria-expanded=false", "href=/dags/grouped?open=extract")
	p.has(t, "a", "class~=cell", "data-group=extract", "data-run="+runs[0], "data-state=failed")
	p.has(t, "a", "class~=cell", "data-group=extract", "data-run="+runs[1], "data-state=running")
	if n := p.count("tr", "data-in-group"); n != 0 {
		t.Errorf("%d rows of the group's tasks while it is closed, want 0", n)
	}
	p.has(t, "tr", "data-task=start")
	p.has(t, "tr", "data-task=load")

	open := pc.get("/dags/grouped?open=extract&runs=10")
	open.wantStatus(t, http.StatusOK)
	open.has(t, "a", "class~=group-toggle", "aria-expanded=true", "href=/dags/grouped?runs=10")
	open.has(t, "tr", "data-task=extract_a", "data-in-group=extract")
	open.has(t, "tr", "data-task=extract_b", "data-in-group=extract")
	open.has(t, "a", "class~=cell", "data-task=extract_b", "data-run="+runs[0], "data-state=failed")
	open.has(t, "input", "type=hidden", "name=open", "value=extract")
	// The group's row comes first, then its tasks' rows, then load.
	order := []string{}
	for _, tr := range dagPageTags(open.body, "tr") {
		if id := tr["data-task"] + tr["data-group"]; id != "" {
			order = append(order, id)
		}
	}
	if want := "[start extract extract_a extract_b load]"; fmt.Sprint(order) != want {
		t.Errorf("rows %v, want %s", order, want)
	}
}
