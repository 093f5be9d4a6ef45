package ui_test

// Handler tests of the DAG pages over a real Kiln: status codes,
// the DOM ids and attributes the browser tests rely on, form round trips
// and live fragments. HTML is checked by its start tags (dagPageTags), which
// is enough for pages html/template renders.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// typedDAG has a param of every kind the trigger form generates.
const typedDAG = `
id: typed
description: Every kind of param
tasks:
  - id: a
    plugin: shell
    with: {command: echo a}
  - id: b
    plugin: shell
    depends_on: [a]
    with: {command: echo b}
params:
  name: {type: string, description: Who runs it}
  count: {type: integer, default: 3, minimum: 1, maximum: 10}
  frac: {type: number, default: 0.5, minimum: 0, maximum: 1}
  dry: {type: boolean, default: true}
  region: {type: string, enum: [eu, us], default: eu}
  tags: {type: array, default: [x, "y"]}
  opts: {type: object, default: {k: 1}}
`

// pageClient talks to the pages of a Kiln with the churn, adhoc and typed
// DAGs and the gpu pool churn's train needs; its workers pull gpu too. It
// does not follow redirects.
type pageClient struct {
	t   *testing.T
	k   *kilntest.Kiln
	srv *httptest.Server
}

func newPageClient(t *testing.T, dags ...string) *pageClient {
	t.Helper()
	dags = append([]string{churnDAG, manualDAG, typedDAG}, dags...)
	k := kilntest.Start(t, kilntest.Options{DAGs: dags, Queues: []string{"default", "gpu"}})
	k.Gate("train")
	if err := k.SetPool(t.Context(), "gpu", 1); err != nil {
		t.Fatal(err)
	}
	return &pageClient{t: t, k: k, srv: serveAPI(t, k, ui.Options{})}
}

// htmlPage is an answer to a page request.
type htmlPage struct {
	status   int
	header   http.Header
	body     string
	location string
}

func (pc *pageClient) do(req *http.Request) htmlPage {
	pc.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		pc.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		pc.t.Fatal(err)
	}
	return htmlPage{resp.StatusCode, resp.Header, string(body), resp.Header.Get("Location")}
}

// get fetches a page; fragment, if given, asks for one live block.
func (pc *pageClient) get(path string, fragment ...string) htmlPage {
	pc.t.Helper()
	req, err := http.NewRequestWithContext(pc.t.Context(), http.MethodGet, pc.srv.URL+path, nil)
	if err != nil {
		pc.t.Fatal(err)
	}
	if len(fragment) > 0 {
		req.Header.Set("Kiln-Fragment", fragment[0])
	}
	return pc.do(req)
}

// post sends a form.
func (pc *pageClient) post(path string, form url.Values) htmlPage {
	pc.t.Helper()
	req, err := http.NewRequestWithContext(pc.t.Context(), http.MethodPost, pc.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		pc.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return pc.do(req)
}

// wantStatus fails the test unless the page has the status.
func (p htmlPage) wantStatus(t *testing.T, status int) {
	t.Helper()
	if p.status != status {
		t.Fatalf("status = %d, want %d; body:\n%.3000s", p.status, status, p.body)
	}
}

var (
	startTag = regexp.MustCompile(`<([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:\s*=\s*"[^"]*")?)*)\s*/?>`)
	attrRE   = regexp.MustCompile(`([^\s=>/]+)(?:\s*=\s*"([^"]*)")?`)
)

// dagPageTags returns the attributes of the start tags named name whose
// attributes match every want: "attr=value", "attr" (present) or
// "class~=token".
func dagPageTags(doc, name string, want ...string) []map[string]string {
	var out []map[string]string
	for _, m := range startTag.FindAllStringSubmatch(doc, -1) {
		if !strings.EqualFold(m[1], name) {
			continue
		}
		attrs := map[string]string{}
		for _, a := range attrRE.FindAllStringSubmatch(m[2], -1) {
			attrs[a[1]] = html.UnescapeString(a[2])
		}
		if tagMatches(attrs, want) {
			out = append(out, attrs)
		}
	}
	return out
}

func tagMatches(attrs map[string]string, want []string) bool {
	for _, w := range want {
		if k, v, ok := strings.Cut(w, "~="); ok {
			if !strings.Contains(" "+attrs[k]+" ", " "+v+" ") {
				return false
			}
			continue
		}
		k, v, hasValue := strings.Cut(w, "=")
		got, present := attrs[k]
		if !present || hasValue && got != v {
			return false
		}
	}
	return true
}

// has returns the one tag that matches, failing the test unless there is
// exactly one.
func (p htmlPage) has(t *testing.T, name string, want ...string) map[string]string {
	t.Helper()
	tags := dagPageTags(p.body, name, want...)
	if len(tags) != 1 {
		t.Fatalf("%d <%s %s>, want 1; body:\n%.4000s", len(tags), name, strings.Join(want, " "), p.body)
	}
	return tags[0]
}

// count is how many tags match.
func (p htmlPage) count(name string, want ...string) int {
	return len(dagPageTags(p.body, name, want...))
}

// text is the page with its tags removed and entities decoded, for
// checking what it says.
func (p htmlPage) text() string {
	return html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(p.body, ""))
}

// putChurnRun makes a run of churn on 2026-01-DAY, as it goes: one of
// region us fails at once (its extract fails, train never runs, report
// runs); one of region eu runs until train holds at its gate. It returns
// the run's id.
func (pc *pageClient) putChurnRun(day int, region string) string {
	pc.t.Helper()
	r := trigger(pc.t, pc.k, "churn", fmt.Sprintf("2026-01-%02dT02:00:00Z", day), map[string]any{"region": region})
	if region == "us" {
		pc.k.WaitRun("churn", r.RunID, store.RunFailed)
	} else {
		pc.k.WaitTask("churn", r.RunID, "train", store.TaskRunning)
	}
	return r.RunID
}

func TestDAGListPage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	older := pc.putChurnRun(1, "us")
	newer := pc.putChurnRun(2, "eu")
	pc.k.Gate("train").Open()
	pc.k.WaitRun("churn", newer, store.RunSuccess)
	pc.k.WriteDAG("broken.yaml", "id: broken\ntasks: []\ntaks: []\n")

	p := pc.get("/dags")
	p.wantStatus(t, http.StatusOK)
	if ct := p.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type = %q", ct)
	}
	p.has(t, "table", "id=dags")
	for _, id := range []string{"adhoc", "churn", "typed"} {
		p.has(t, "tr", "data-dag="+id)
		p.has(t, "a", "class~=dag-link", "href=/dags/"+id)
		form := p.has(t, "form", "class~=pause-toggle", "action=/dags/"+id+"/pause")
		if form["method"] != "post" {
			t.Errorf("pause form of %s: method %q", id, form["method"])
		}
	}
	if n := p.count("input", "name=paused", "value=true"); n != 3 {
		t.Errorf("%d pause toggles that pause, want 3 (every DAG is active)", n)
	}
	if n := p.count("input", "type=hidden", "name=csrf"); n != 4 {
		t.Errorf("%d csrf fields, want 4: 3 pause toggles and the trigger buttons' form", n)
	}
	// A trigger button per DAG: one click for a DAG without params (they
	// share one form), the trigger form for one with.
	if form := p.has(t, "form", "id=trigger-now"); form["method"] != "post" {
		t.Errorf("the trigger buttons' form: %v", form)
	}
	if b := p.has(t, "button", "class~=trigger-run", "formaction=/dags/adhoc/trigger"); b["form"] != "trigger-now" || b["data-confirm"] == "" {
		t.Errorf("trigger button of adhoc: %v", b)
	}
	p.has(t, "a", "class~=trigger-run", "href=/dags/churn/trigger")
	p.has(t, "a", "class~=trigger-run", "href=/dags/typed/trigger")
	// Recent runs, oldest first, each a dot linking to its run.
	dots := dagPageTags(p.body, "span", "class~=dot")
	if len(dots) != 2 || dots[0]["data-state"] != "failed" || dots[1]["data-state"] != "success" {
		t.Errorf("dots = %v, want failed then success", dots)
	}
	p.has(t, "a", "href=/dags/churn/runs/"+older)
	p.has(t, "a", "href=/dags/churn/runs/"+newer)
	text := p.text()
	for _, want := range []string{"every day at 03:00", "0 3 * * *", "Europe/Berlin", "manual only", "Train the churn model", "ml"} {
		if !strings.Contains(text, want) {
			t.Errorf("the list does not say %q", want)
		}
	}
	p.has(t, "div", "id=import-errors", "class~=banner", "class~=error")
	if !strings.Contains(text, "broken.yaml:3:1: unknown key \"taks\"") || strings.Contains(text, pc.k.DAGsDir()) {
		t.Errorf("the import error is not shown with file:line:col:\n%s", text)
	}
	p.has(t, "tbody", "data-live=dag-rows")
}

func TestDAGListFilter(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"q=CHURN", []string{"churn"}},
		{"tag=ml", []string{"churn"}},
		{"q=every+kind", []string{"typed"}},
		{"status=active", []string{"adhoc", "churn", "typed"}},
		{"status=paused", nil},
	} {
		p := pc.get("/dags?" + tc.query)
		p.wantStatus(t, http.StatusOK)
		var got []string
		for _, tr := range dagPageTags(p.body, "tr", "data-dag") {
			got = append(got, tr["data-dag"])
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: DAGs %v, want %v", tc.query, got, tc.want)
		}
	}
	pc.get("/dags?status=sleepy").wantStatus(t, http.StatusBadRequest)
}

func TestPauseToggle(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	p := pc.post("/dags/churn/pause", url.Values{"paused": {"true"}, "next": {"/dags?tag=ml"}})
	p.wantStatus(t, http.StatusSeeOther)
	if p.location != "/dags?tag=ml" {
		t.Errorf("Location = %q, want back to the list", p.location)
	}
	pc.k.WaitPaused("churn", true)
	list := pc.get("/dags")
	list.has(t, "tr", "data-dag=churn", "class~=paused")
	list.has(t, "form", "action=/dags/churn/pause")
	if n := list.count("input", "name=paused", "value=false"); n != 1 {
		t.Errorf("%d toggles that unpause, want 1", n)
	}
	pc.get("/dags/churn").has(t, "span", "id=dag-paused", "class~=paused")

	p = pc.post("/dags/churn/pause", url.Values{"paused": {"false"}, "next": {"//evil.example/"}})
	p.wantStatus(t, http.StatusSeeOther)
	if p.location != "/dags" {
		t.Errorf("Location = %q: a next off this server must not be followed", p.location)
	}
	pc.k.WaitPaused("churn", false)

	bad := pc.post("/dags/churn/pause", url.Values{"paused": {"maybe"}})
	bad.wantStatus(t, http.StatusBadRequest)
	bad.has(t, "div", "class~=banner", "class~=error")
	pc.post("/dags/nope/pause", url.Values{"paused": {"true"}}).wantStatus(t, http.StatusNotFound)
}

func TestDAGHeaderAndTabs(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	for _, tab := range []string{"", "/graph", "/source", "/trigger", "/backfill"} {
		p := pc.get("/dags/churn" + tab)
		p.wantStatus(t, http.StatusOK)
		p.has(t, "nav", "class~=tabs")
		for _, link := range []string{"", "/graph", "/source", "/trigger", "/backfill"} {
			name := strings.TrimPrefix(link, "/")
			if name == "" {
				name = "grid"
			}
			a := p.has(t, "a", "id=tab-"+name, "href=/dags/churn"+link)
			if (link == tab) != strings.Contains(a["class"], "on") {
				t.Errorf("tab %q on page %q: class %q", link, tab, a["class"])
			}
		}
		p.has(t, "h1", "id=dag-id")
		text := p.text()
		for _, want := range []string{"churn", "Train the churn model", "every day at 03:00", "0 3 * * *", "Next run"} {
			if !strings.Contains(text, want) {
				t.Errorf("%q: the header does not say %q", tab, want)
			}
		}
		p.has(t, "span", "id=dag-paused", "class~=active")
		p.has(t, "form", "class~=pause-toggle", "action=/dags/churn/pause")
		p.has(t, "input", "name=next", "value=/dags/churn"+tab)
	}
	p := pc.get("/dags/nope")
	p.wantStatus(t, http.StatusNotFound)
	p.has(t, "div", "class~=banner", "class~=error")
	if !strings.Contains(p.text(), `DAG "nope" not found`) {
		t.Errorf("the error page does not name the DAG:\n%s", p.body)
	}
}

func TestGridPage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	r1 := pc.putChurnRun(1, "us")
	r2 := pc.putChurnRun(2, "eu")
	p := pc.get("/dags/churn")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "table", "id=grid")
	p.has(t, "div", "data-live=grid")
	// Rows in topological order; columns oldest first.
	var rows []string
	for _, tr := range dagPageTags(p.body, "tr", "data-task") {
		rows = append(rows, tr["data-task"])
	}
	if fmt.Sprint(rows) != "[extract train report]" {
		t.Errorf("rows = %v, want extract train report", rows)
	}
	cells := dagPageTags(p.body, "a", "class~=cell")
	if len(cells) != 6 {
		t.Fatalf("%d cells, want 6", len(cells))
	}
	want := []struct{ task, run, state string }{
		{"extract", r1, "failed"}, {"extract", r2, "success"},
		{"train", r1, "upstream_failed"}, {"train", r2, "running"},
		{"report", r1, "success"}, {"report", r2, "none"},
	}
	for i, w := range want {
		c := cells[i]
		if c["data-task"] != w.task || c["data-run"] != w.run || c["data-state"] != w.state {
			t.Errorf("cell %d = %v, want %+v", i, c, w)
		}
		if href := "/dags/churn/runs/" + w.run + "?task=" + w.task; c["href"] != href {
			t.Errorf("cell %d links to %q, want %q", i, c["href"], href)
		}
	}
	heads := dagPageTags(p.body, "th", "class~=run-h")
	if len(heads) != 2 || heads[0]["data-run"] != r1 || heads[1]["data-run"] != r2 {
		t.Errorf("column heads = %v, want %s then %s", heads, r1, r2)
	}
	if a := p.has(t, "a", "href=/dags/churn/runs/"+r2); !strings.HasPrefix(a["title"], r2+" · running · ") || !strings.HasSuffix(a["title"], " so far") {
		t.Errorf("title of %s = %q, want state and duration so far", r2, a["title"])
	}
	// Each run's bar is as tall as the run is long: the one still running
	// grows past the failed one, which ended at once.
	bar := p.has(t, "span", "class~=run-bar", "data-state=running")
	if !strings.HasPrefix(bar["style"], "height: ") || !strings.HasSuffix(bar["style"], "px") {
		t.Errorf("run bar style = %q", bar["style"])
	}

	// Paging: ?runs=1 shows the newest, and links to the older one.
	one := pc.get("/dags/churn?runs=1")
	one.wantStatus(t, http.StatusOK)
	if got := dagPageTags(one.body, "a", "class~=cell"); len(got) != 3 || got[0]["data-run"] != r2 {
		t.Errorf("?runs=1: cells %v, want 3 of %s", got, r2)
	}
	one.has(t, "a", "id=grid-older", "href=/dags/churn?offset=1&runs=1")
	older := pc.get("/dags/churn?runs=1&offset=1")
	if got := dagPageTags(older.body, "a", "class~=cell"); len(got) != 3 || got[0]["data-run"] != r1 {
		t.Errorf("?runs=1&offset=1: cells %v, want 3 of %s", got, r1)
	}
	older.has(t, "a", "id=grid-newer", "href=/dags/churn?runs=1")
	pc.get("/dags/churn?runs=101").wantStatus(t, http.StatusBadRequest)
	pc.get("/dags/churn?runs=0").wantStatus(t, http.StatusBadRequest)

	empty := pc.get("/dags/adhoc")
	empty.wantStatus(t, http.StatusOK)
	empty.has(t, "table", "id=grid")
	empty.has(t, "tr", "data-task=only")
}

func TestFragments(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	run := pc.putChurnRun(1, "eu")
	for _, tc := range []struct {
		path, block string
		want        []string // tag and attributes the block has
	}{
		{"/dags", "dag-rows", []string{"tr", "data-dag=churn"}},
		{"/dags/churn", "grid", []string{"table", "id=grid"}},
		{"/dags/churn/graph", "graph", []string{"svg", "id=graph"}},
		{"/dags/churn/trigger", "dag-header", []string{"h1", "id=dag-id"}},
	} {
		p := pc.get(tc.path, tc.block)
		p.wantStatus(t, http.StatusOK)
		if strings.Contains(p.body, "<html") || strings.Contains(p.body, "<header") {
			t.Errorf("%s %s: the fragment has the layout:\n%.500s", tc.path, tc.block, p.body)
		}
		p.has(t, tc.want[0], tc.want[1:]...)
		if p.header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s %s: Cache-Control %q", tc.path, tc.block, p.header.Get("Cache-Control"))
		}
	}
	// A live update sees a state change without a reload.
	grid := pc.get("/dags/churn", "grid")
	grid.has(t, "a", "class~=cell", "data-task=train", "data-state=running")
	pc.k.Gate("train").Open()
	pc.k.WaitTask("churn", run, "train", store.TaskSuccess)
	grid = pc.get("/dags/churn", "grid")
	grid.has(t, "a", "class~=cell", "data-task=train", "data-state=success")

	bad := pc.get("/dags/churn", "nope")
	bad.wantStatus(t, http.StatusBadRequest)
	bad.has(t, "div", "class~=banner", "class~=error")
}

func TestGraphPage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	r1 := pc.putChurnRun(1, "us")
	r2 := pc.putChurnRun(2, "eu")

	p := pc.get("/dags/churn/graph")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "svg", "id=graph", "data-run="+r2)
	nodes := map[string]map[string]string{}
	for _, g := range dagPageTags(p.body, "g", "class~=node") {
		nodes[g["data-task"]] = g
	}
	for task, state := range map[string]string{"extract": "success", "train": "running", "report": "none"} {
		if nodes[task]["data-state"] != state {
			t.Errorf("node %s: %v, want state %s", task, nodes[task], state)
		}
		p.has(t, "a", "href=/dags/churn/runs/"+r2+"?task="+task)
	}
	// Left to right by dependency.
	x := func(task string) float64 {
		var x, y float64
		fmt.Sscanf(nodes[task]["transform"], "translate(%g %g)", &x, &y)
		return x
	}
	if !(x("extract") < x("train") && x("train") < x("report")) {
		t.Errorf("x: extract %v, train %v, report %v: want left to right", x("extract"), x("train"), x("report"))
	}
	if n := p.count("path", "class~=edge"); n != 2 {
		t.Errorf("%d edges, want 2", n)
	}
	p.has(t, "path", "class~=edge", "data-from=extract", "data-to=train")

	old := pc.get("/dags/churn/graph?run=" + url.QueryEscape(r1))
	old.wantStatus(t, http.StatusOK)
	old.has(t, "g", "class~=node", "data-task=extract", "data-state=failed")
	old.has(t, "option", "value="+r1, "selected")
	pc.get("/dags/churn/graph?run=nope").wantStatus(t, http.StatusNotFound)

	none := pc.get("/dags/adhoc/graph")
	none.wantStatus(t, http.StatusOK)
	none.has(t, "g", "class~=node", "data-task=only", "data-state=none")
}

func TestSourcePage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	p := pc.get("/dags/churn/source")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "pre", "id=source")
	pre := regexp.MustCompile(`(?s)<pre id="source"[^>]*>(.*?)</pre>`).FindStringSubmatch(p.body)
	if pre == nil {
		t.Fatal("no pre#source")
	}
	got := html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(pre[1], ""))
	if got != churnDAG {
		t.Errorf("pre#source text differs from the file:\n%s", got)
	}
	if strings.Contains(p.body, `id="source-changed"`) {
		t.Error("the file is the version loaded, yet the page says it changed")
	}

	// The file changed on disk (it now has errors, and the last good
	// version stays loaded): shown, with a note.
	pc.k.WriteDAG("churn.yaml", "id: churn\ntaks: []\n")
	p = pc.get("/dags/churn/source")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "p", "id=source-changed")
	if !strings.Contains(p.text(), "taks: []") {
		t.Error("the changed file is not shown")
	}

	// The file cannot be read (a symbolic link to itself): the scheduler
	// keeps the last good version, and the tab says why it shows nothing.
	// The link replaces the file at once, as a rename does: a file missing
	// for a moment would unload the DAG.
	path, link := filepath.Join(pc.k.DAGsDir(), "churn.yaml"), filepath.Join(pc.k.DAGsDir(), ".link")
	if err := os.Symlink("churn.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(link, path); err != nil {
		t.Fatal(err)
	}
	pc.k.WaitFor("churn's file to fail to load", func() bool {
		ies := pc.k.ImportErrors()
		return len(ies) == 1 && ies[0].File == "churn.yaml" && ies[0].Stale && strings.Contains(ies[0].Errors.Error(), "symbolic links")
	})
	p = pc.get("/dags/churn/source")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "p", "id=source-error")
	if !strings.Contains(p.text(), "too many levels of symbolic links") {
		t.Errorf("the tab does not say why it cannot show the file:\n%.2000s", p.text())
	}
}

func TestErrorPage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"GET", "/no/such/page", http.StatusNotFound, "not found"},
		{"GET", "/dags/nope/graph", http.StatusNotFound, `DAG "nope" not found`},
		{"GET", "/backfills/bf-99", http.StatusNotFound, `backfill "bf-99" not found`},
		{"DELETE", "/dags", http.StatusMethodNotAllowed, "method not allowed"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, pc.srv.URL+tc.path, nil)
		p := pc.do(req)
		p.wantStatus(t, tc.status)
		if !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: Content-Type %q, want HTML", tc.path, p.header.Get("Content-Type"))
		}
		p.has(t, "div", "id=error-message", "class~=banner", "class~=error")
		if text := p.text(); !strings.Contains(text, tc.msg) || !strings.Contains(text, fmt.Sprint(tc.status)) {
			t.Errorf("%s: the page does not say %d and %q:\n%s", tc.path, tc.status, tc.msg, text)
		}
	}
	// A live update of a page that fails gets the whole error page, not a
	// block of it.
	p := pc.get("/dags/nope", "grid")
	p.wantStatus(t, http.StatusNotFound)
	p.has(t, "div", "id=error-message")

	// The API keeps answering JSON.
	api := call(t, "GET", pc.srv.URL+"/api/v1/dags/nope", "")
	api.wantError(t, http.StatusNotFound, "nope")
	api = call(t, "GET", pc.srv.URL+"/api/v1/nope", "")
	api.wantError(t, http.StatusNotFound, "not found")
}

// TestSourceVersions: the source tab lists the DAG's versions, shows any
// of them, and the changes between two.
func TestSourceVersions(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t)
	edited := strings.Replace(churnDAG, "description: Train the churn model\n", "description: Train the churn model again\n", 1)
	if edited == churnDAG {
		t.Fatal("the edit changed nothing")
	}
	pc.k.WriteDAG("churn.yaml", edited)
	hash := func(src string) string {
		sum := sha256.Sum256([]byte(src))
		return hex.EncodeToString(sum[:])
	}
	v1, v2 := hash(churnDAG), hash(edited)

	p := pc.get("/dags/churn/source")
	p.wantStatus(t, http.StatusOK)
	p.has(t, "tr", "data-hash="+v2)
	p.has(t, "tr", "data-hash="+v1)
	if i, j := strings.Index(p.body, `data-hash="`+v2), strings.Index(p.body, `data-hash="`+v1); i > j {
		t.Error("the versions are not listed newest first")
	}

	old := pc.get("/dags/churn/source?version=" + v1)
	old.wantStatus(t, http.StatusOK)
	old.has(t, "span", "id=source-version")
	pre := regexp.MustCompile(`(?s)<pre id="source"[^>]*>(.*?)</pre>`).FindStringSubmatch(old.body)
	if pre == nil || html.UnescapeString(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(pre[1], "")) != churnDAG {
		t.Errorf("version %s is not shown as it was", v1[:12])
	}

	d := pc.get("/dags/churn/source?from=" + v1 + "&to=" + v2)
	d.wantStatus(t, http.StatusOK)
	d.has(t, "span", "class=add")
	if !strings.Contains(d.text(), "+description: Train the churn model again") || !strings.Contains(d.text(), "-description: Train the churn model\n") {
		t.Errorf("the diff does not show the added line:\n%.2000s", d.text())
	}
	same := pc.get("/dags/churn/source?from=" + v2 + "&to=" + v2)
	same.has(t, "p", "id=source-diff-same")

	pc.get("/dags/churn/source?version="+strings.Repeat("0", 64)).wantStatus(t, http.StatusNotFound)
	pc.get("/dags/churn/source?from="+v1+"&to=nope").wantStatus(t, http.StatusNotFound)
}
