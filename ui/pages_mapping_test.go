package ui_test

// The pages of mapped tasks (docs/api.md#mapped-tasks): the run page's
// task row, instance list and instance panel, the log page of an
// instance, the clear and mark forms; the grid's and the graph's counts.

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func TestMappedRunPage(t *testing.T) {
	t.Parallel()
	k, root, runID, heldRun := newFanoutRun(t)
	href := "/dags/fanout/runs/" + runID
	d := getPage(t, root+href).want(t, http.StatusOK)

	// One row per task; the mapped one says how many instances it has.
	var order []string
	for _, tr := range d.all("table#tasks tbody tr[data-task]") {
		order = append(order, tr.attr("data-task"))
	}
	if got := strings.Join(order, ","); got != "list,square,total" {
		t.Errorf("task rows = %s, want one per task", got)
	}
	badge := d.one("table#tasks tr[data-task=square] a.badge.map-count")
	if badge.attr("data-map-length") != "12" || badge.text() != "12 instances" {
		t.Errorf("square's badge = %q (data-map-length %q)", badge.text(), badge.attr("data-map-length"))
	}
	if n := len(d.all("table#tasks tr[data-task=list] .map-count")); n != 0 {
		t.Errorf("list, not mapped, has %d count badges", n)
	}
	// The Gantt chart has one row for it, a bar for its instances together.
	if n := len(d.all("svg#gantt g.row")); n != 3 {
		t.Errorf("%d Gantt rows, want 3", n)
	}
	bar := d.all("svg#gantt g.row[data-task=square] rect.bar")
	if len(bar) == 0 || !strings.HasPrefix(bar[len(bar)-1].text(), "12 instances · failed") {
		t.Errorf("square's Gantt bars: %d, last titled %q", len(bar), func() string {
			if len(bar) == 0 {
				return ""
			}
			return bar[len(bar)-1].text()
		}())
	}

	// Picking it lists its instances, by index, with their logs.
	d = getPage(t, root+href+"?task=square").want(t, http.StatusOK)
	d.one("section#task-detail[data-task=square] table#instances")
	if n := len(d.all("section#task-detail table#tries")); n != 0 {
		t.Error("the mapped task's panel has a table of tries of its own")
	}
	rows := d.all("table#instances tbody tr")
	if len(rows) != 12 {
		t.Fatalf("%d instance rows, want 12", len(rows))
	}
	for i, row := range rows {
		if row.attr("data-map-index") != fmt.Sprint(i) {
			t.Errorf("instance row %d is %s", i, row.attr("data-map-index"))
		}
	}
	third := rows[2]
	if got := third.one("code.item").text(); got != `"c"` {
		t.Errorf("square[2]'s item = %s", got)
	}
	if st := third.one("span.state").attr("data-state"); st != "failed" {
		t.Errorf("square[2] = %s, want failed", st)
	}
	logLink := third.one("a.log-link").attr("href")
	if logLink != href+"/tasks/square/logs?map_index=2&try=1" {
		t.Errorf("square[2]'s log link = %s", logLink)
	}
	if got := d.one("#instances-shown").text(); got != "12 instances" {
		t.Errorf("#instances-shown = %q", got)
	}

	// An instance has a panel of its own: item, tries, the end of its log.
	for _, q := range []string{"?task=square&map_index=2", "?task=" + url.QueryEscape("square[2]")} {
		d = getPage(t, root+href+q).want(t, http.StatusOK)
		panel := d.one("section#task-detail[data-map-index=2]")
		if h := panel.one("h2").text(); !strings.HasPrefix(h, "square[2] ") {
			t.Errorf("%s: panel title %q", q, h)
		}
		if got := panel.one("#task-item").text(); got != `"c"` {
			t.Errorf("%s: item %q", q, got)
		}
		if got := panel.one("a#task-parent").attr("href"); got != href+"?task=square" {
			t.Errorf("%s: link to the task = %s", q, got)
		}
		if n := len(panel.all("table#tries tbody tr[data-try]")); n != 1 {
			t.Errorf("%s: %d tries, want 1", q, n)
		}
		if got := panel.one("#task-log-tail").text(); !strings.Contains(got, "item c at 2") {
			t.Errorf("%s: log tail %q", q, got)
		}
		d.one("table#tasks tr.selected[data-task=square]")
	}
	d = getPage(t, root+href+"?task=square&map_index=12").want(t, http.StatusOK)
	if got := d.one("#task-missing").text(); !strings.Contains(got, "square[12]") {
		t.Errorf("#task-missing = %q", got)
	}

	// The instance's log page names it, and its links keep the index.
	d = getPage(t, root+logLink).want(t, http.StatusOK)
	title := d.one("h1#log-title")
	if !strings.HasPrefix(title.text(), "square[2] · try 1") || title.one("a").attr("href") != href+"?task=square&map_index=2" {
		t.Errorf("log title %q, link %s", title.text(), title.one("a").attr("href"))
	}
	if got := d.one("pre#log").text(); !strings.Contains(got, "item c at 2") {
		t.Errorf("log = %q", got)
	}
	if p := getPage(t, root+href+"/tasks/square/logs?map_index=20"); p.status != http.StatusBadRequest || !strings.Contains(p.body, "map indexes 0 to 11") {
		t.Errorf("log page of square[20]: %d", p.status)
	}

	// The graph marks mapped tasks: with the count, or [ ] before they
	// expand.
	d = getPage(t, root+"/dags/fanout/graph").want(t, http.StatusOK)
	if node := d.one("svg#graph g.node[data-task=square]"); node.attr("data-mapped") != "[12]" || !strings.Contains(node.one("text.label").text(), "square [12]") {
		t.Errorf("square's node: data-mapped %q, label %q", node.attr("data-mapped"), node.one("text.label").text())
	}
	if n := len(d.all("svg#graph g.node[data-task=list][data-mapped]")); n != 0 {
		t.Error("list's node is marked mapped")
	}
	d = getPage(t, root+"/dags/held/graph?run="+url.QueryEscape(heldRun)).want(t, http.StatusOK)
	if node := d.one("svg#graph g.node[data-task=each]"); node.attr("data-mapped") != "[ ]" {
		t.Errorf("each, not expanded yet: data-mapped %q", node.attr("data-mapped"))
	}

	// The grid: one row per task, the count in the mapped task's cell.
	d = getPage(t, root+"/dags/fanout").want(t, http.StatusOK)
	if n := len(d.all("table#grid tbody tr[data-task]")); n != 3 {
		t.Errorf("%d grid rows, want 3", n)
	}
	cell := d.one("table#grid a.cell[data-task=square]")
	if cell.attr("data-map-length") != "12" || cell.one("span.map-count").text() != "12" || !strings.Contains(cell.attr("title"), "failed · 12 instances") {
		t.Errorf("square's cell: data-map-length %q, title %q", cell.attr("data-map-length"), cell.attr("title"))
	}
	d.one("table#grid tr[data-task=square] th .mapped-mark")

	// The forms: clear ticked instances, mark one.
	form := getPage(t, root+href+"?task=square").want(t, http.StatusOK).one("form#instances-form").formValues()
	if p := postForm(t, root+href+"/clear", form); p.status != http.StatusBadRequest || !strings.Contains(p.body, "tick the instances to clear") {
		t.Errorf("clearing no ticked instance: %d, want 400", p.status)
	}
	form.Set("map_index", "2")
	if p := postForm(t, root+href+"/clear", form); p.status != http.StatusSeeOther {
		t.Fatalf("clear square[2]: %d %s", p.status, p.body)
	}
	k.WaitFor("square[2] to run again", func() bool {
		ti, err := k.Store().GetTaskInstance("fanout", runID, "square[2]")
		return err == nil && ti.TryNumber == 2 && ti.State.Finished()
	})
	k.WaitRun("fanout", runID, store.RunFailed)
	if ti, _ := k.Store().GetTaskInstance("fanout", runID, "square[3]"); ti.TryNumber != 1 {
		t.Errorf("square[3] has %d tries after clearing square[2] alone", ti.TryNumber)
	}
	mark := getPage(t, root+href+"?task=square&map_index=2").want(t, http.StatusOK).all("form.mark-task-form")[0].formValues()
	if mark.Get("map_index") != "2" || mark.Get("task") != "square" || mark.Get("state") != "success" {
		t.Fatalf("mark form = %v", mark)
	}
	if p := postForm(t, root+href+"/mark", mark); p.status != http.StatusSeeOther {
		t.Fatalf("mark square[2] success: %d %s", p.status, p.body)
	}
	k.WaitRun("fanout", runID, store.RunSuccess)
	mark.Set("map_index", "x")
	if p := postForm(t, root+href+"/mark", mark); p.status != http.StatusBadRequest {
		t.Errorf("mark with map_index x: %d", p.status)
	}
}

// wideDAG maps process over a list of up to 20,000 items. It starts far
// ahead: the runs of the tests that use it are seeded.
const wideDAG = `
id: wide
schedule: "@daily"
start_date: 2099-01-01
tasks:
  - {id: list, plugin: shell, with: {command: "true"}}
  - id: process
    plugin: shell
    depends_on: [list]
    map: outputs.list.items
    max_map_length: 20000
    with: {command: "echo {{ .item }}"}
  - {id: reduce, plugin: shell, depends_on: [process], with: {command: "true"}}
`

// putWideRuns puts n finished runs of wideDAG, the newest last: in it
// process has instances instances, in the others 3. Instance 7 of each
// failed, and with it process, reduce and the run.
func putWideRuns(put func(*store.Run, ...*store.TaskInstance), n, instances int) {
	for r := range n {
		run := finishedRun("wide", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, r), store.RunFailed)
		count := 3
		if r == n-1 {
			count = instances
		}
		process := finishedTask(run, "process", store.TaskFailed)
		process.TryNumber, process.MapLength = 0, count
		tis := []*store.TaskInstance{finishedTask(run, "list", store.TaskSuccess), process}
		for i := range count {
			in := finishedTask(run, "process", store.TaskSuccess)
			in.MapIndex, in.Item = i, fmt.Sprintf("s3://bucket/part-%05d.parquet", i)
			if i == 7 {
				in.State = store.TaskFailed
			}
			tis = append(tis, in)
		}
		put(run, append(tis, finishedTask(run, "reduce", store.TaskUpstreamFailed))...)
	}
}

// wideRunID is the newest run putWideRuns puts of n.
func wideRunID(n int) string {
	return "scheduled__" + time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, n-1).Format(time.RFC3339)
}

// TestManyInstancesPages: a task mapped over 2,500 items is one grid row
// and one task row, and its panel pages through its instances, 1,000 at a
// time.
func TestManyInstancesPages(t *testing.T) {
	t.Parallel()
	k := kilntest.Start(t, kilntest.Options{NoWorker: true, DAGs: []string{wideDAG},
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) { putWideRuns(put, 3, 2500) })})
	root := serveAPI(t, k, ui.Options{}).URL
	runID := wideRunID(3)

	d := getPage(t, root+"/dags/wide").want(t, http.StatusOK)
	if n := len(d.all("table#grid a.cell")); n != 9 {
		t.Errorf("%d grid cells, want 3 tasks × 3 runs", n)
	}
	cell := d.one("table#grid a.cell[data-task=process][data-run=" + runID + "]")
	if cell.attr("data-map-length") != "2500" || cell.one(".map-count").text() != "2k" || !strings.Contains(cell.attr("title"), "2500 instances") {
		t.Errorf("newest process cell: %q %q %q", cell.attr("data-map-length"), cell.text(), cell.attr("title"))
	}

	href := "/dags/wide/runs/" + runID + "?task=process"
	for _, page := range []struct {
		query       string
		first, rows int
		shown       string
		prev, next  string
	}{
		{"", 0, 1000, "Instances 1 to 1000 of 2500", "", href + "&instance_offset=1000"},
		{"&instance_offset=1000", 1000, 1000, "Instances 1001 to 2000 of 2500", href, href + "&instance_offset=2000"},
		{"&instance_offset=2000", 2000, 500, "Instances 2001 to 2500 of 2500", href + "&instance_offset=1000", ""},
	} {
		d := getPage(t, root+href+page.query).want(t, http.StatusOK)
		if n := len(d.all("table#tasks tbody tr[data-task]")); n != 3 {
			t.Errorf("%s: %d task rows, want 3", page.query, n)
		}
		rows := d.all("table#instances tbody tr")
		if len(rows) != page.rows || rows[0].attr("data-map-index") != fmt.Sprint(page.first) {
			t.Fatalf("%s: %d rows from %s, want %d from %d", page.query, len(rows), rows[0].attr("data-map-index"), page.rows, page.first)
		}
		if got := d.one("#instances-shown").text(); got != page.shown {
			t.Errorf("%s: shown %q, want %q", page.query, got, page.shown)
		}
		for id, want := range map[string]string{"instances-prev": page.prev, "instances-next": page.next} {
			links := d.all("a#" + id)
			switch {
			case want == "" && len(links) != 0:
				t.Errorf("%s: a #%s link", page.query, id)
			case want != "" && (len(links) != 1 || links[0].attr("href") != want):
				t.Errorf("%s: #%s, want %s", page.query, id, want)
			}
		}
	}
	if got := getPage(t, root+href+"&map_index=2499").want(t, http.StatusOK).one("#task-item").text(); got != `"s3://bucket/part-02499.parquet"` {
		t.Errorf("process[2499]'s item = %s", got)
	}
}
