package ui_test

// Handler tests of the run pages over a real Kiln: the DOM the browser
// tests rely on (checked through a parsed tree, so that nesting
// counts), live fragments, and the clear and mark forms' round trips.

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// dom is a node of a parsed page.
type dom struct {
	t *testing.T
	n *html.Node
}

// pageDOM parses a page or a fragment.
func pageDOM(t *testing.T, body string) dom {
	t.Helper()
	n, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing the page: %v", err)
	}
	return dom{t, n}
}

// compound matches one element: tag#id.class[attr][attr=value], each part
// optional.
type compound struct {
	tag, id string
	classes []string
	attrs   [][2]string // name, value; value "\x00" for "present"
}

var selPart = regexp.MustCompile(`^(?:[a-zA-Z][a-zA-Z0-9-]*|#[\w-]+|\.[\w-]+|\[[\w-]+(?:=(?:"[^"]*"|[^\]]*))?\])`)

func parseCompound(s string) compound {
	var c compound
	for len(s) > 0 {
		m := selPart.FindString(s)
		if m == "" {
			panic("bad selector part " + s)
		}
		s = s[len(m):]
		switch m[0] {
		case '#':
			c.id = m[1:]
		case '.':
			c.classes = append(c.classes, m[1:])
		case '[':
			name, value, ok := strings.Cut(m[1:len(m)-1], "=")
			if !ok {
				value = "\x00"
			}
			c.attrs = append(c.attrs, [2]string{name, strings.Trim(value, `"`)})
		default:
			c.tag = m
		}
	}
	return c
}

func attrOf(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func (c compound) match(n *html.Node) bool {
	if n.Type != html.ElementNode || c.tag != "" && n.Data != c.tag {
		return false
	}
	if id, _ := attrOf(n, "id"); c.id != "" && id != c.id {
		return false
	}
	class, _ := attrOf(n, "class")
	for _, want := range c.classes {
		if !slices.Contains(strings.Fields(class), want) {
			return false
		}
	}
	for _, a := range c.attrs {
		v, ok := attrOf(n, a[0])
		if !ok || a[1] != "\x00" && v != a[1] {
			return false
		}
	}
	return true
}

// all returns the elements below d that match sel, compound selectors
// separated by spaces (descendants).
func (d dom) all(sel string) []dom {
	nodes := []*html.Node{d.n}
	for _, part := range strings.Fields(sel) {
		c := parseCompound(part)
		var next []*html.Node
		seen := map[*html.Node]bool{}
		for _, n := range nodes {
			var walk func(*html.Node)
			walk = func(p *html.Node) {
				for k := p.FirstChild; k != nil; k = k.NextSibling {
					if c.match(k) && !seen[k] {
						seen[k] = true
						next = append(next, k)
					}
					walk(k)
				}
			}
			walk(n)
		}
		nodes = next
	}
	out := make([]dom, len(nodes))
	for i, n := range nodes {
		out[i] = dom{d.t, n}
	}
	return out
}

// one returns the one element that matches sel, failing the test unless
// there is exactly one.
func (d dom) one(sel string) dom {
	d.t.Helper()
	got := d.all(sel)
	if len(got) != 1 {
		d.t.Fatalf("%d elements match %q, want 1", len(got), sel)
	}
	return got[0]
}

func (d dom) attr(name string) string {
	v, _ := attrOf(d.n, name)
	return v
}

func (d dom) text() string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for k := n.FirstChild; k != nil; k = k.NextSibling {
			walk(k)
		}
	}
	walk(d.n)
	return b.String()
}

// formValues are the values a form sends, without its buttons: hidden and
// text inputs, and checkboxes with their value when checked ("[x]" marks
// an unchecked one).
func (d dom) formValues() url.Values {
	v := url.Values{}
	for _, in := range d.all("input") {
		switch in.attr("type") {
		case "checkbox":
			if _, on := attrOf(in.n, "checked"); on {
				v.Add(in.attr("name"), in.attr("value"))
			} else {
				v.Add("["+in.attr("name")+"]", in.attr("value"))
			}
		default:
			v.Add(in.attr("name"), in.attr("value"))
		}
	}
	return v
}

// page is an answer from the pages.
type page struct {
	status   int
	header   http.Header
	body     string
	location string
}

// getPage fetches a page; fragment, if given, asks for one live block.
func getPage(t *testing.T, url string, fragment ...string) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(fragment) > 0 {
		req.Header.Set("Kiln-Fragment", fragment[0])
	}
	return doPage(t, req)
}

// postForm sends a form as a browser does.
func postForm(t *testing.T, url string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return doPage(t, req)
}

func doPage(t *testing.T, req *http.Request) page {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return page{resp.StatusCode, resp.Header, string(body), resp.Header.Get("Location")}
}

func (p page) want(t *testing.T, status int) dom {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d, want %d; body:\n%.3000s", p.status, status, p.body)
	}
	return pageDOM(t, p.body)
}

// triedDAG makes one scheduled run, on 2026-01-05, once unpaused: extract
// succeeds with an output; train fails its first try and holds its next
// at the gate "train"; report, run when train is done, holds at "report".
const triedDAG = `
id: churn
schedule: "0 3 * * *"
timezone: Europe/Berlin
start_date: 2026-01-05
end_date: 2026-01-06
catchup: true
paused: true
params:
  sample_frac: {type: number, default: 1.0}
tasks:
  - id: extract
    plugin: shell
    with: {command: 'echo rows=42 >> "$KILN_OUTPUT"'}
  - id: train
    plugin: shell
    depends_on: [extract]
    retries: 3
    retry_delay: 0s
    with: {command: 'if [ {{ .try_number }} = 1 ]; then echo out of memory; exit 1; fi; read gate < gates/train'}
  - id: report
    plugin: shell
    depends_on: [train]
    trigger_rule: all_done
    with: {command: "read gate < gates/report"}
`

// triedRunID is the one run of triedDAG.
const triedRunID = "scheduled__2026-01-05T02:00:00Z"

// newTriedRun starts a Kiln with triedDAG and its API, unpauses the DAG and
// waits until train runs its second try.
func newTriedRun(t *testing.T) (*kilntest.Kiln, string) {
	t.Helper()
	k := kilntest.New(t, triedDAG)
	k.Gate("train")
	k.Gate("report")
	if err := k.SetPaused(t.Context(), "churn", false); err != nil {
		t.Fatal(err)
	}
	k.WaitFor("train's second try to run", func() bool {
		ti, err := k.Store().GetTaskInstance("churn", triedRunID, "train")
		return err == nil && ti.State == store.TaskRunning && ti.TryNumber == 2
	})
	return k, serveAPI(t, k, ui.Options{}).URL
}

func TestRunPage(t *testing.T) {
	t.Parallel()
	_, base := newTriedRun(t)
	href := "/dags/churn/runs/" + triedRunID
	d := getPage(t, base+href).want(t, http.StatusOK)

	if s := d.one("span.state#run-state"); s.attr("data-state") != "running" {
		d.t.Errorf("#run-state data-state = %q, want running", s.attr("data-state"))
	}
	d.one("[data-live=run-head] #run-state")
	for id, want := range map[string]string{
		"run-logical-date": "2026-01-05 02:00 UTC",
		"run-interval":     "2026-01-05 02:00 UTC – 2026-01-06 02:00 UTC",
		"run-type":         "scheduled",
		"run-start":        " UTC",
		"run-end":          "not yet",
		"run-duration":     "so far",
		"run-params":       `"sample_frac": 1`,
	} {
		if got := d.one("#" + id).text(); !strings.Contains(got, want) {
			t.Errorf("#%s = %q, want it to contain %q", id, got, want)
		}
	}

	// The tasks, in the DAG's order, each with its state, try, log and
	// clear form.
	var order []string
	for _, tr := range d.all("table#tasks tbody tr[data-task]") {
		order = append(order, tr.attr("data-task"))
	}
	if got := strings.Join(order, ","); got != "extract,train,report" {
		t.Errorf("task rows = %s, want the DAG's order extract,train,report", got)
	}
	d.one("[data-live=run-tasks] table#tasks")
	for task, want := range map[string]struct {
		state, try, log string
	}{
		"extract": {"success", "1", href + "/tasks/extract/logs?try=1"},
		"train":   {"running", "2", href + "/tasks/train/logs?try=2"},
		"report":  {"none", "0", ""},
	} {
		row := d.one(`table#tasks tr[data-task=` + task + `]`)
		if got := row.one("span.state").attr("data-state"); got != want.state {
			t.Errorf("%s: state %q, want %q", task, got, want.state)
		}
		if got := row.one(".try-number").text(); got != want.try {
			t.Errorf("%s: try %q, want %q", task, got, want.try)
		}
		if links := row.all("a.log-link"); want.log == "" && len(links) != 0 || want.log != "" && (len(links) != 1 || links[0].attr("href") != want.log) {
			t.Errorf("%s: log links %v, want %q", task, links, want.log)
		}
		form := row.one("form.clear-form")
		if form.attr("method") != "post" || form.attr("action") != href+"/clear" {
			t.Errorf("%s: clear form %s %s", task, form.attr("method"), form.attr("action"))
		}
		v := form.formValues()
		if v.Get("tasks") != task || !v.Has("csrf") || v.Get("[downstream]") != "1" || v.Get("[only_failed]") != "1" || v.Get("next") != href {
			t.Errorf("%s: clear form sends %v", task, v)
		}
		form.one("button.clear")
	}
	for _, id := range []string{"clear-failed", "mark-success", "mark-failed"} {
		f := d.one("form#" + id)
		if f.attr("data-confirm") == "" || f.attr("method") != "post" {
			t.Errorf("form#%s: data-confirm %q, method %q", id, f.attr("data-confirm"), f.attr("method"))
		}
	}
	if v := d.one("form#clear-failed").formValues(); v.Get("only_failed") != "1" || v.Has("tasks") {
		t.Errorf("form#clear-failed sends %v", v)
	}
	if v := d.one("form#mark-failed").formValues(); v.Get("state") != "failed" || d.one("form#mark-failed").attr("action") != href+"/mark" {
		t.Errorf("form#mark-failed sends %v", v)
	}

	// The Gantt chart: a row per task, a bar per part of each try.
	d.one("[data-live=run-tasks] svg#gantt")
	if n := len(d.all("svg#gantt g.row")); n != 3 {
		t.Errorf("%d Gantt rows, want 3", n)
	}
	train := d.one("svg#gantt g.row[data-task=train]")
	var got []string
	for _, bar := range train.all("rect.bar") {
		got = append(got, bar.attr("data-try")+":"+strings.TrimPrefix(bar.attr("class"), "bar ")+":"+bar.attr("data-state"))
	}
	if want := "1:queue:failed 1:run:failed 2:queue:running 2:run:running"; strings.Join(got, " ") != want {
		t.Errorf("train's bars = %s, want %s", strings.Join(got, " "), want)
	}
	if len(d.all("svg#gantt g.row[data-task=report] rect.bar")) != 0 {
		t.Error("report, never tried, has bars")
	}
	// A run of a second has no tick on its axis (TestGanttTicks checks
	// them).
	if len(d.all("svg#gantt g.axis")) != 1 {
		t.Error("the Gantt chart has no time axis")
	}
	if len(d.all("#task-detail")) != 0 {
		t.Error("a task's details show without ?task=")
	}
}

func TestRunPagePicksATask(t *testing.T) {
	t.Parallel()
	_, base := newTriedRun(t)
	d := getPage(t, base+"/dags/churn/runs/"+triedRunID+"?task=train").want(t, http.StatusOK)
	if got := d.one("table#tasks tr.selected").attr("data-task"); got != "train" {
		t.Errorf("selected row = %s, want train", got)
	}
	d.one("svg#gantt g.row.selected[data-task=train]")
	detail := d.one("section#task-detail[data-task=train]")
	var tries []string
	for _, tr := range detail.all("table#tries tbody tr[data-try]") {
		tries = append(tries, tr.attr("data-try"))
	}
	if strings.Join(tries, ",") != "2,1" {
		t.Errorf("tries = %v, want the latest first: 2,1", tries)
	}
	first := detail.one("tr[data-try=1]")
	for sel, want := range map[string]string{".worker": "w1", ".exit-code": "1", ".try-error": "exit status 1"} {
		if got := first.one(sel).text(); got != want {
			t.Errorf("try 1 %s = %q, want %q", sel, got, want)
		}
	}
	if got := first.one("a.try-log").attr("href"); !strings.HasSuffix(got, "/tasks/train/logs?try=1") {
		t.Errorf("try 1's log link = %q", got)
	}
	if times := first.all("time"); len(times) != 3 {
		t.Errorf("try 1 shows %d times, want queued, started and ended", len(times))
	}
	// The forms send the browser back to this view of the page.
	if next := d.one("table#tasks tr[data-task=extract] form.clear-form").formValues().Get("next"); next != "/dags/churn/runs/"+triedRunID+"?task=train" {
		t.Errorf("next = %q", next)
	}
	if n := len(detail.all("form.mark-task-form")); n != 2 {
		t.Errorf("%d task mark forms, want 2", n)
	}

	d = getPage(t, base+"/dags/churn/runs/"+triedRunID+"?task=nope").want(t, http.StatusOK)
	if got := d.one("#task-missing").text(); !strings.Contains(got, "nope") {
		t.Errorf("#task-missing = %q", got)
	}
}

func TestRunPageFragments(t *testing.T) {
	t.Parallel()
	k, base := newTriedRun(t)
	url := base + "/dags/churn/runs/" + triedRunID
	head := getPage(t, url, "run-head").want(t, http.StatusOK)
	head.one("#run-state")
	if len(head.all("table#tasks")) != 0 || len(head.all("header")) != 0 {
		t.Error("the run-head fragment holds more than the head")
	}
	tasks := getPage(t, url, "run-tasks").want(t, http.StatusOK)
	tasks.one("table#tasks")
	tasks.one("svg#gantt")
	if len(tasks.all("#run-state")) != 0 || len(tasks.all("header")) != 0 {
		t.Error("the run-tasks fragment holds more than the tasks")
	}
	// The live update sees the new state: train and report go through.
	k.Gate("train").Open()
	k.Gate("report").Open()
	k.WaitRun("churn", triedRunID, store.RunSuccess)
	if got := getPage(t, url, "run-head").want(t, http.StatusOK).one("#run-state").attr("data-state"); got != "success" {
		t.Errorf("after the run succeeded, the fragment's state = %s", got)
	}
}

func TestRunPageNotFound(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	for _, path := range []string{"/dags/churn/runs/manual__nope", "/dags/nope/runs/manual__nope", "/dags/nope/runs"} {
		if p := getPage(t, srv.URL+path); p.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, p.status)
		}
	}
}

// clearDAG's extract succeeds; train and report, which runs once train is
// done, fail.
const clearDAG = `
id: clearing
tasks:
  - {id: extract, plugin: shell, with: {command: "true"}}
  - {id: train, plugin: shell, depends_on: [extract], with: {command: "exit 1"}}
  - {id: report, plugin: shell, depends_on: [train], trigger_rule: all_done, with: {command: "exit 1"}}
`

func TestClearFormRoundTrip(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, clearDAG)
	r := trigger(t, k, "clearing", "", nil)
	k.WaitRun("clearing", r.RunID, store.RunFailed)
	href := "/dags/clearing/runs/" + r.RunID
	d := getPage(t, srv.URL+href+"?task=extract").want(t, http.StatusOK)
	// tries counts each task's tries once the run has ended again.
	tries := func() string {
		t.Helper()
		k.WaitRun("clearing", r.RunID, store.RunFailed)
		var out []string
		for _, task := range []string{"extract", "train", "report"} {
			trs, err := k.Store().Tries("clearing", r.RunID, task)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s:%d", task, len(trs)))
		}
		return strings.Join(out, " ")
	}

	// Tick the checkboxes of train's form and send it as the browser would:
	// train and report, downstream and failed, run again.
	form := d.one("table#tasks tr[data-task=train] form.clear-form")
	v := form.formValues()
	v.Set("downstream", v.Get("[downstream]"))
	v.Set("only_failed", v.Get("[only_failed]"))
	v.Del("[downstream]")
	v.Del("[only_failed]")
	p := postForm(t, srv.URL+form.attr("action"), v)
	if p.status != http.StatusSeeOther || p.location != href+"?task=extract" {
		t.Fatalf("clear: %d to %q, want 303 back to the page; body %s", p.status, p.location, p.body)
	}
	if got, want := tries(), "extract:1 train:2 report:2"; got != want {
		t.Errorf("tries after clearing train, downstream, only failed: %s, want %s", got, want)
	}

	// Unticked: train alone.
	v = form.formValues()
	v.Del("[downstream]")
	v.Del("[only_failed]")
	postForm(t, srv.URL+form.attr("action"), v)
	if got, want := tries(), "extract:1 train:3 report:2"; got != want {
		t.Errorf("tries after clearing train alone: %s, want %s", got, want)
	}
	// The run-level form: every task that failed.
	all := d.one("form#clear-failed")
	postForm(t, srv.URL+all.attr("action"), all.formValues())
	if got, want := tries(), "extract:1 train:4 report:3"; got != want {
		t.Errorf("tries after clearing the failed tasks: %s, want %s", got, want)
	}

	// next may only lead back to the run.
	v.Set("next", "https://example.com/")
	if p := postForm(t, srv.URL+form.attr("action"), v); p.location != href {
		t.Errorf("next to another site: redirected to %q, want %q", p.location, href)
	}
	v.Set("tasks", "nope")
	if p := postForm(t, srv.URL+form.attr("action"), v); p.status != http.StatusBadRequest {
		t.Errorf("clearing an unknown task: %d, want 400", p.status)
	}
}

func TestMarkForms(t *testing.T) {
	t.Parallel()
	k, base := newTriedRun(t)
	href := "/dags/churn/runs/" + triedRunID
	d := getPage(t, base+href+"?task=train").want(t, http.StatusOK)

	// The picked task: mark train success.
	var success dom
	for _, f := range d.all("form.mark-task-form") {
		if f.formValues().Get("state") == "success" {
			success = f
		}
	}
	p := postForm(t, base+success.attr("action"), success.formValues())
	if p.status != http.StatusSeeOther || p.location != href+"?task=train" {
		t.Fatalf("mark task: %d to %q; body %s", p.status, p.location, p.body)
	}
	ti, _ := k.Store().GetTaskInstance("churn", triedRunID, "train")
	if ti.State != store.TaskSuccess {
		t.Errorf("train = %s, want success", ti.State)
	}
	tr, _ := k.Store().GetTry("churn", triedRunID, "train", 2)
	if tr.State != store.TaskSuccess || !strings.Contains(tr.Error, "marked success by hand") {
		t.Errorf("train's try 2 = %+v, want ended by the mark", tr)
	}

	// The run: mark it failed; report, which runs now, fails.
	k.WaitTask("churn", triedRunID, "report", store.TaskRunning)
	f := d.one("form#mark-failed")
	if p := postForm(t, base+f.attr("action"), f.formValues()); p.status != http.StatusSeeOther {
		t.Fatalf("mark failed: %d; body %s", p.status, p.body)
	}
	if run, _ := k.Store().GetRun("churn", triedRunID); run.State != store.RunFailed {
		t.Errorf("run = %s, want failed", run.State)
	}
	if ti, _ := k.Store().GetTaskInstance("churn", triedRunID, "report"); ti.State != store.TaskFailed {
		t.Errorf("report = %s, want failed", ti.State)
	}
	if ti, _ := k.Store().GetTaskInstance("churn", triedRunID, "extract"); ti.State != store.TaskSuccess {
		t.Errorf("extract = %s, want success, as it ended", ti.State)
	}

	v := f.formValues()
	v.Set("state", "running")
	if p := postForm(t, base+f.attr("action"), v); p.status != http.StatusBadRequest {
		t.Errorf("mark running: %d, want 400", p.status)
	}
	v.Set("state", "success")
	v.Set("task", "nope")
	if p := postForm(t, base+f.attr("action"), v); p.status != http.StatusNotFound {
		t.Errorf("mark an unknown task: %d, want 404", p.status)
	}
}

func TestMarkAPI(t *testing.T) {
	t.Parallel()
	k, base := newTriedRun(t)
	url := base + "/api/v1/dags/churn/runs/" + triedRunID

	resp := call(t, "PATCH", url+"/tasks/train", `{"state": "failed"}`)
	if resp.status != http.StatusOK {
		t.Fatalf("PATCH task: %d %s", resp.status, resp.body)
	}
	var ti struct {
		TaskID string `json:"task_id"`
		State  string `json:"state"`
		Tries  []struct {
			State string `json:"state"`
		} `json:"tries"`
	}
	resp.decode(t, &ti)
	if ti.TaskID != "train" || ti.State != "failed" || len(ti.Tries) != 2 || ti.Tries[1].State != "failed" {
		t.Errorf("PATCH task answered %+v", ti)
	}

	// report, run when train is done, holds: marking the run success
	// stops it.
	k.WaitTask("churn", triedRunID, "report", store.TaskRunning)
	resp = call(t, "PATCH", url, `{"state": "success"}`)
	if resp.status != http.StatusOK {
		t.Fatalf("PATCH run: %d %s", resp.status, resp.body)
	}
	var run struct {
		State string `json:"state"`
		Tasks []struct {
			TaskID string `json:"task_id"`
			State  string `json:"state"`
		} `json:"tasks"`
	}
	resp.decode(t, &run)
	if run.State != "success" {
		t.Errorf("run = %s, want success", run.State)
	}
	for _, task := range run.Tasks {
		if task.State != "success" {
			t.Errorf("task %s = %s after marking the run success", task.TaskID, task.State)
		}
	}
	// Every task succeeded now: the run cannot be failed.
	call(t, "PATCH", url, `{"state": "failed"}`).wantError(t, http.StatusConflict, "mark one of its tasks failed")

	for _, tc := range []struct {
		path, body string
		status     int
		msg        string
	}{
		{"", `{"state": "running"}`, 400, "state: want success or failed"},
		{"", `{}`, 400, "state: required"},
		{"", `{"state": "success", "tasks": ["x"]}`, 400, "unknown field"},
		{"", ``, 400, "body"},
		{"/tasks/train", `{"state": "skipped"}`, 400, "state"},
		{"/tasks/nope", `{"state": "success"}`, 404, "nope"},
		{"/tasks/trian", `{"state": "success"}`, 404, `did you mean "train"?`},
	} {
		call(t, "PATCH", url+tc.path, tc.body).wantError(t, tc.status, tc.msg)
	}
	call(t, "PATCH", base+"/api/v1/dags/churn/runs/manual__nope", `{"state": "success"}`).wantError(t, 404, "manual__nope")
	call(t, "PATCH", base+"/api/v1/dags/nope/runs/x/tasks/y", `{"state": "success"}`).wantError(t, 404, "nope")
}

func TestRunsPage(t *testing.T) {
	t.Parallel()
	k := kilntest.Start(t, kilntest.Options{NoWorker: true, DAGs: []string{churnDAG, manualDAG},
		Seed: seed(func(put func(*store.Run, ...*store.TaskInstance)) {
			for day := 1; day <= 120; day++ {
				state, tasks := store.RunSuccess, store.TaskSuccess
				if day%10 == 0 {
					state, tasks = store.RunFailed, store.TaskFailed
				}
				r := finishedRun("churn", time.Date(2026, 1, day, 2, 0, 0, 0, time.UTC), state)
				put(r, finishedTask(r, "extract", tasks), finishedTask(r, "train", tasks), finishedTask(r, "report", tasks))
			}
		})})
	srv := serveAPI(t, k, ui.Options{})
	base := srv.URL + "/dags/churn/runs"
	d := getPage(t, base).want(t, http.StatusOK)
	rows := d.all("table#runs tbody tr[data-run]")
	if len(rows) != 50 {
		t.Fatalf("%d rows, want a page of 50", len(rows))
	}
	newest := time.Date(2026, 1, 120, 2, 0, 0, 0, time.UTC).Format(time.RFC3339)
	if got := rows[0].attr("data-run"); got != "scheduled__"+newest {
		t.Errorf("first row = %s, want the newest run", got)
	}
	if got := rows[0].one("a.run-link").attr("href"); got != "/dags/churn/runs/scheduled__"+newest {
		t.Errorf("run link = %q", got)
	}
	rows[0].one("span.state[data-state=failed]") // day 120
	if got := d.one("#runs-range").text(); got != "1–50 of 120" {
		t.Errorf("#runs-range = %q", got)
	}
	if len(d.all("a#runs-prev")) != 0 {
		t.Error("the first page links to a previous one")
	}
	next := d.one("a#runs-next").attr("href")
	if next != "/dags/churn/runs?offset=50" {
		t.Errorf("next = %q", next)
	}
	d.one("[data-live=runs-page] table#runs")

	d = getPage(t, srv.URL+"/dags/churn/runs?offset=100").want(t, http.StatusOK)
	if n := len(d.all("table#runs tbody tr[data-run]")); n != 20 {
		t.Errorf("last page: %d rows, want 20", n)
	}
	if got := d.one("a#runs-prev").attr("href"); got != "/dags/churn/runs?offset=50" {
		t.Errorf("prev = %q", got)
	}
	if len(d.all("a#runs-next")) != 0 {
		t.Error("the last page links to a next one")
	}

	d = getPage(t, base+"?state=failed&limit=5").want(t, http.StatusOK)
	rows = d.all("table#runs tbody tr[data-run]")
	if len(rows) != 5 || d.one("#runs-range").text() != "1–5 of 12" {
		t.Errorf("failed runs: %d rows, range %q; want 5 of 12", len(rows), d.one("#runs-range").text())
	}
	for _, row := range rows {
		row.one("span.state[data-state=failed]")
	}
	if got := d.one("a#runs-next").attr("href"); got != "/dags/churn/runs?limit=5&offset=5&state=failed" {
		t.Errorf("next keeps the filter and size: %q", got)
	}
	if got := d.one("#run-filters a.on").attr("href"); got != "/dags/churn/runs?limit=5&state=failed" {
		t.Errorf("the filter shown = %q", got)
	}

	frag := getPage(t, base+"?offset=50", "runs-page").want(t, http.StatusOK)
	if n := len(frag.all("table#runs tbody tr[data-run]")); n != 50 || len(frag.all("header")) != 0 {
		t.Errorf("fragment: %d rows", n)
	}
	for _, q := range []string{"?limit=0", "?limit=501", "?offset=-1", "?state=bogus"} {
		if p := getPage(t, base+q); p.status != http.StatusBadRequest {
			t.Errorf("GET runs%s: %d, want 400", q, p.status)
		}
	}
	d = getPage(t, srv.URL+"/dags/adhoc/runs").want(t, http.StatusOK)
	if got := d.one("table#runs tbody tr.empty").text(); got != "No runs yet." {
		t.Errorf("a DAG without runs: %q", got)
	}
}

// TestRunPageFailedTaskLogTail: the box of a failed task shows the end of
// its log under its error, with a link to the whole log; a task that
// succeeded shows none.
func TestRunPageFailedTaskLogTail(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, `
id: failing
tasks:
  - {id: ok, plugin: shell, with: {command: 'echo fine'}}
  - {id: boom, plugin: shell, with: {command: 'for i in $(seq 1 12); do echo "line $i <b>"; done; exit 3'}}
`)
	run := trigger(t, k, "failing", "2026-01-05T02:00:00Z", nil)
	k.WaitRun("failing", run.RunID, store.RunFailed)
	href := srv.URL + "/dags/failing/runs/" + run.RunID
	d := getPage(t, href+"?task=boom").want(t, http.StatusOK)
	if got := d.one("#task-detail .task-error").text(); got != "exit status 3" {
		t.Errorf("error = %q", got)
	}
	want := "line 4 <b>\nline 5 <b>\nline 6 <b>\nline 7 <b>\nline 8 <b>\nline 9 <b>\nline 10 <b>\nline 11 <b>\nline 12 <b>\nkiln: exit status 3"
	if got := d.one("pre#task-log-tail").text(); got != want {
		t.Errorf("log tail = %q\nwant %q", got, want)
	}
	if got := d.one("#task-detail .log-tail a").attr("href"); got != "/dags/failing/runs/"+run.RunID+"/tasks/boom/logs?try=1" {
		t.Errorf("whole log link = %q", got)
	}
	if n := len(getPage(t, href+"?task=ok").want(t, http.StatusOK).all("pre#task-log-tail")); n != 0 {
		t.Error("a task that succeeded shows a log tail")
	}
	// The API answers the same tail with ?tail=N (kiln runs show).
	logs := srv.URL + "/api/v1/dags/failing/runs/" + run.RunID + "/tasks/boom/logs?try=1&tail="
	if r := call(t, "GET", logs+"3", ""); r.status != 200 || string(r.body) != "line 11 <b>\nline 12 <b>\nkiln: exit status 3" {
		t.Errorf("?tail=3: %d %q", r.status, r.body)
	}
	call(t, "GET", logs+"0", "").wantError(t, 400, "tail")
	call(t, "GET", logs+"101", "").wantError(t, 400, "tail")
}
