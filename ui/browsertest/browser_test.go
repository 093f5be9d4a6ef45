package browsertest

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// TestBrowser drives the pages of one Kiln server from one Chromium. Each
// subtest has its own tab in its own browser context (its own cookies) and
// signs in as the user it needs; they run in order, so that the run counts
// one of them compares are not changed by another.
func TestBrowser(t *testing.T) {
	b := startBrowser(t) // skips the test first when there is no browser
	k := startKiln(t)
	removeFailShots(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, tb *tab)
	}{
		{"LoginLogout", testLoginLogout},
		{"DAGList", testDAGList},
		{"OpenDAG", testOpenDAG},
		{"TriggerWithParamLive", testTriggerWithParam},
		{"ClearFailedTask", testClearFailedTask},
		{"TriggerFromListAndInsights", testTriggerFromListAndInsights},
		{"ViewerCannotTrigger", testViewerCannotTrigger},
		{"PoolsAndHealth", testPoolsAndHealth},
		{"TimeZonesAndNextRun", testTimeZonesAndNextRun},
		{"TriggerLatestInterval", testTriggerLatestInterval},
		{"ArtifactsAndCachedTask", testArtifactsAndCachedTask},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, b.newTab(t, k)) })
	}
	if dir, err := screenshotDir(); err == nil {
		t.Logf("screenshots of the pages are in %s", dir)
	}
}

func testLoginLogout(t *testing.T, tb *tab) {
	// Signed out, a page sends the browser to the login form.
	tb.load("/dags")
	tb.wait("form#login-form")
	tb.screenshot("login")

	tb.typeInto(`form#login-form input[name="name"]`, admin.name)
	tb.typeInto(`form#login-form input[name="password"]`, "not-the-password")
	tb.submitStatus("#login-submit") // 200 or 401, with the form again
	tb.wait(".banner.error")
	if tb.count("#whoami") != 0 {
		tb.fatalf("signed in with a wrong password")
	}
	tb.wait("form#login-form")

	tb.login(admin)
	tb.submit("button#logout")
	if tb.count("#whoami") != 0 {
		tb.fatalf("#whoami still shown after signing out")
	}
	tb.load("/dags")
	tb.wait("form#login-form")
	if tb.count("table#dags") != 0 {
		tb.fatalf("the DAG list is shown after signing out")
	}
}

func testDAGList(t *testing.T, tb *tab) {
	tb.login(operator)
	tb.open("/dags")
	tb.wait("table#dags")
	for _, id := range []string{"greet", "flaky", "nightly"} {
		tb.wait(fmt.Sprintf(`table#dags tr[data-dag=%q] a.dag-link`, id))
		tb.present(fmt.Sprintf(`table#dags tr[data-dag=%q] form.pause-toggle`, id))
	}
	if got := tb.text("#import-errors"); !strings.Contains(got, "broken.yaml") || !strings.Contains(got, `"aa"`) {
		tb.fatalf("#import-errors = %q, want the error of broken.yaml (depends_on: aa)", got)
	}
	// nightly's scheduled run shows up and ends green.
	tb.reloadUntil("/dags", `table#dags tr[data-dag="nightly"] span.dot[data-state="success"]`)
	tb.screenshot("dags")
}

func testOpenDAG(t *testing.T, tb *tab) {
	tb.login(viewer)
	tb.open("/dags")
	tb.submit(`table#dags tr[data-dag="nightly"] a.dag-link`)
	if p := tb.path(); p != "/dags/nightly" {
		tb.fatalf("the DAG link led to %s, want /dags/nightly", p)
	}
	tb.wait("table#grid")
	for _, sub := range []string{"graph", "source", "trigger", "backfill"} {
		tb.present(fmt.Sprintf(`.tabs a[href="/dags/nightly/%s"]`, sub))
	}
	cell := `table#grid a.cell[data-task="report"][data-state="success"]`
	tb.reloadUntil("/dags/nightly", cell)
	tb.screenshot("dag-grid")

	tb.open("/dags/nightly")
	tb.submit(`.tabs a[href="/dags/nightly/graph"]`)
	tb.wait("svg#graph")
	for _, task := range []string{"extract", "transform", "report"} {
		tb.present(fmt.Sprintf(`svg#graph g.node[data-task=%q][data-state="success"]`, task))
	}
	tb.screenshot("dag-graph")

	tb.submit(`.tabs a[href="/dags/nightly/source"]`)
	if got := tb.text("pre#source"); !strings.Contains(got, `schedule: "@daily"`) {
		tb.fatalf("pre#source = %q, want the DAG file", got)
	}
	tb.screenshot("dag-source")

	// A cell of the grid opens its run.
	tb.open("/dags/nightly")
	runID := tb.attr(cell, "data-run")
	tb.submit(cell)
	if p := tb.path(); p != "/dags/nightly/runs/"+runID {
		tb.fatalf("the grid cell of run %s led to %s", runID, p)
	}
	tb.wait(`#run-state[data-state="success"]`)
}

func testTriggerWithParam(t *testing.T, tb *tab) {
	tb.login(operator)
	tb.open("/dags/greet")
	tb.submit(`.tabs a[href="/dags/greet/trigger"]`)
	tb.wait("form#trigger-form")
	tb.present(`form#trigger-form input[name="logical_date"]`)
	count := `form#trigger-form input[name="param.count"][type="number"]`
	region := `form#trigger-form select[name="param.region"]`
	loud := `form#trigger-form input[name="param.loud"][type="checkbox"]`
	tb.typeInto(count, "7")
	tb.setValue(region, "us")
	if eval[bool](tb, fmt.Sprintf(`document.querySelector(%q).checked`, loud)) {
		tb.fatalf("param.loud is checked, want its default false")
	}
	tb.click(loud)
	tb.screenshot("trigger")

	tb.submit("#trigger-submit")
	p := tb.path()
	runID, ok := strings.CutPrefix(p, "/dags/greet/runs/")
	if !ok || !strings.HasPrefix(runID, "manual__") {
		tb.fatalf("after triggering, the page is %s, want /dags/greet/runs/manual__...", p)
	}
	// From here on the test never navigates: a reload would drop the mark.
	eval[bool](tb, `window.kilnNotReloaded = true`)
	if s := tb.attr("#run-state", "data-state"); s == "success" || s == "failed" {
		tb.fatalf("the run page's first paint shows the run %s already; hello sleeps 1s", s)
	}
	tb.waitLiveByEvents()
	tb.waitState("the run", "#run-state", "success")
	for _, task := range []string{"hello", "done"} {
		tb.waitState(task, fmt.Sprintf(`table#tasks tr[data-task=%q] span.state`, task), "success")
	}
	if !eval[bool](tb, `window.kilnNotReloaded === true`) {
		tb.fatalf("the run page reloaded; want it updated in place")
	}
	tb.wait("svg#gantt")
	tb.screenshot("run")

	// The log of hello shows the params the form sent.
	tb.open(tb.attr(`table#tasks tr[data-task="hello"] a.log-link`, "href"))
	if p, want := tb.path(), "/dags/greet/runs/"+runID+"/tasks/hello/logs"; p != want {
		tb.fatalf("the log link led to %s, want %s", p, want)
	}
	tb.waitLog("hello from us, 7 times, loud=true")
	tb.present("a#log-download")
	tb.screenshot("log")

	// The DAG's grid shows the run.
	tb.open("/dags/greet")
	tb.present(fmt.Sprintf(`table#grid a.cell[data-task="hello"][data-run=%q][data-state="success"]`, runID))
}

func testClearFailedTask(t *testing.T, tb *tab) {
	tb.login(operator)
	tb.open("/dags/flaky/trigger")
	tb.wait("form#trigger-form")
	tb.submit("#trigger-submit")
	runPath := tb.path()
	runID, ok := strings.CutPrefix(runPath, "/dags/flaky/runs/")
	if !ok {
		tb.fatalf("after triggering, the page is %s, want /dags/flaky/runs/RUN", runPath)
	}
	row := func(task string) string { return fmt.Sprintf(`table#tasks tr[data-task=%q]`, task) }
	tb.waitLiveByEvents()
	tb.waitState("the run", "#run-state", "failed")
	tb.waitState("check", row("check")+" span.state", "failed")
	tb.waitState("verify", row("verify")+" span.state", "failed")
	tb.present(row("prepare") + ` span.state[data-state="success"]`)
	tb.screenshot("run-failed")

	// The failed task's box shows the end of its log under its error.
	tb.open(runPath + "?task=check")
	tb.wait("pre#task-log-tail")
	// Read at once: the live block that holds it may be swapped meanwhile.
	if got := eval[string](tb, `document.querySelector("pre#task-log-tail").textContent`); !strings.Contains(got, "no marker yet") || !strings.HasSuffix(got, "kiln: exit status 1") {
		tb.fatalf("pre#task-log-tail = %q, want the end of check's log", got)
	}
	// Its Rendered panel shows what the try ran: the command with the
	// marker's path rendered in, on the shell plugin.
	tb.wait("details#task-rendered pre.task-with")
	rendered := eval[string](tb, `document.querySelector("details#task-rendered").textContent`)
	if !strings.Contains(rendered, tb.k.Marker) || !strings.Contains(rendered, "no marker yet") || !strings.Contains(rendered, "shell 0.1.0") {
		tb.fatalf("the Rendered panel = %q, want check's rendered command on shell 0.1.0", rendered)
	}
	tb.screenshot("run-failed-task")
	tb.open(runPath)
	tb.waitLiveByEvents()

	// Fix the cause, then clear check alone with its row's button: it
	// runs again as try 2 and succeeds, while verify stays failed.
	if err := os.WriteFile(tb.k.Marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	confirm := tb.attr(row("check")+" form.clear-form", "data-confirm")
	tb.submit(row("check") + " form.clear-form button.clear")
	if confirm != "" && !tb.accepted(confirm) {
		tb.fatalf("clearing check did not ask %q", confirm)
	}
	if p := tb.path(); p != runPath {
		tb.fatalf("clearing check led to %s, want back to %s", p, runPath)
	}
	eval[bool](tb, `window.kilnNotReloaded = true`)
	tb.waitState("check", row("check")+" span.state", "success")
	tb.waitState("the run", "#run-state", "failed")
	if s := tb.attr(row("verify")+" span.state", "data-state"); s != "failed" {
		tb.fatalf("verify is %s after clearing only check, want failed", s)
	}
	if !eval[bool](tb, `window.kilnNotReloaded === true`) {
		tb.fatalf("the run page reloaded; want it updated in place")
	}

	// "Clear failed" asks first (data-confirm, answered OK by the tab),
	// then runs verify again, and the run turns green.
	confirm = tb.attr("form#clear-failed", "data-confirm")
	if confirm == "" {
		tb.fatalf("form#clear-failed has no data-confirm")
	}
	tb.submit("form#clear-failed button[type=submit]")
	if !tb.accepted(confirm) {
		tb.fatalf("clearing the failed tasks did not ask %q", confirm)
	}
	eval[bool](tb, `window.kilnNotReloaded = true`)
	tb.waitState("verify", row("verify")+" span.state", "success")
	tb.waitState("the run", "#run-state", "success")
	if !eval[bool](tb, `window.kilnNotReloaded === true`) {
		tb.fatalf("the run page reloaded; want it updated in place")
	}
	tb.screenshot("run-cleared")

	// Every try keeps its log.
	logs := "/dags/flaky/runs/" + url.PathEscape(runID) + "/tasks/check/logs?try="
	tb.open(logs + "1")
	tb.waitLog("no marker yet")
	tb.open(logs + "2")
	tb.waitLog("marker found")
}

// testTriggerFromListAndInsights triggers nightly from its row in the DAG
// list, then reads the views of its runs: the grid's duration bars, the
// charts, the calendar, and its log with timestamps.
func testTriggerFromListAndInsights(t *testing.T, tb *tab) {
	tb.login(operator)
	tb.open("/dags")
	button := `table#dags tr[data-dag="nightly"] button.trigger-run`
	confirm := tb.attr(button, "data-confirm")
	tb.present(`table#dags tr[data-dag="greet"] a.trigger-run[href="/dags/greet/trigger"]`) // params: the form
	tb.submit(button)
	if !tb.accepted(confirm) {
		tb.fatalf("the trigger button did not ask %q", confirm)
	}
	runPath := tb.path()
	if !strings.HasPrefix(runPath, "/dags/nightly/runs/manual__") {
		tb.fatalf("the trigger button led to %s, want a manual run of nightly", runPath)
	}
	tb.waitLiveByEvents()
	tb.waitState("the run", "#run-state", "success")

	// The grid tops each run with a bar whose height is its duration.
	tb.open("/dags/nightly")
	tb.wait("table#grid .run-bar")
	if n := eval[int](tb, `[...document.querySelectorAll("table#grid .run-bar")].filter(b => b.getBoundingClientRect().height >= 4).length`); n != tb.count("table#grid .run-bar") || n < 2 {
		tb.fatalf("%d run bars with a height, of %d", n, tb.count("table#grid .run-bar"))
	}
	tb.screenshot("dag-grid-bars")

	tb.submit(`.tabs a[href="/dags/nightly/charts"]`)
	tb.wait("svg#chart-run-duration rect.bar")
	tb.present("svg#chart-landing rect.bar")
	for _, task := range []string{"extract", "transform", "report"} {
		tb.present(fmt.Sprintf(`svg#chart-task-duration g.series[data-task=%q] circle.dot`, task))
	}
	tb.screenshot("dag-charts")

	tb.submit(`.tabs a[href="/dags/nightly/calendar"]`)
	tb.wait(`svg#calendar rect.day[data-state="success"]`)
	if n := tb.count("svg#calendar rect.day"); n < 52*7 {
		tb.fatalf("the calendar has %d days, want a year's", n)
	}
	tb.screenshot("dag-calendar")

	// The log page: its breadcrumb leads to the runs, and Timestamps puts
	// each line's receive time before it.
	tb.open(runPath + "/tasks/extract/logs?try=1")
	tb.waitLog("extracting")
	tb.present(`div.crumbs a[href="/dags/nightly/runs"]`)
	tb.submit("a#log-times")
	tb.waitJS("pre#log to start with a time", `/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ kiln: running: .*\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ extracting/.test(document.querySelector("pre#log").textContent)`,
		`JSON.stringify(document.querySelector("pre#log").textContent)`)
	tb.screenshot("log-timestamps")

	// No param of nightly is required: the form does not explain the mark.
	tb.open("/dags/nightly/trigger")
	tb.wait("form#trigger-form")
	if tb.count("#required-note") != 0 {
		tb.fatalf("the trigger form of nightly explains * but marks no field")
	}
}

func testViewerCannotTrigger(t *testing.T, tb *tab) {
	tb.login(viewer)
	tb.open("/dags/greet")
	tb.wait("table#grid")
	runs := `table#grid a.cell[data-task="hello"]`
	before := tb.count(runs)

	// The page may refuse the form outright, or show it with the button
	// disabled; then the test sends it anyway, as a crafted request
	// would, and the server must refuse.
	status := tb.load("/dags/greet/trigger")
	if status != http.StatusForbidden && tb.count("#trigger-submit") > 0 {
		if tb.count("#trigger-submit[disabled]") > 0 {
			eval[bool](tb, `document.querySelector("#trigger-submit").removeAttribute("disabled"), true`)
		}
		status = tb.submitStatus("#trigger-submit")
	}
	if status != http.StatusForbidden {
		tb.fatalf("a viewer triggering greet got HTTP %d, want 403", status)
	}
	if msg := tb.text(".banner.error"); !strings.Contains(strings.ToLower(msg), "operator") {
		tb.fatalf(".banner.error = %q, want it to name the operator role", msg)
	}
	tb.screenshot("viewer-refused")

	tb.open("/dags/greet")
	tb.wait("table#grid")
	if after := tb.count(runs); after != before {
		tb.fatalf("the grid shows %d runs of greet after the refused trigger, %d before", after, before)
	}
}

func testPoolsAndHealth(t *testing.T, tb *tab) {
	tb.login(admin)
	tb.open("/pools")
	tb.wait("table#pools")
	if got := tb.text("table#pools"); !strings.Contains(got, "default_pool") {
		tb.fatalf("table#pools = %q, want default_pool", got)
	}
	tb.screenshot("pools")

	tb.open("/workers")
	tb.wait("table#workers tr[data-worker]")
	if got := tb.text("table#workers"); !strings.Contains(got, "alive") {
		tb.fatalf("table#workers = %q, want an alive worker", got)
	}
	tb.screenshot("workers")

	tb.open("/health")
	tb.wait("#health")
	if got := tb.text("#scheduler-role"); !strings.Contains(got, "leader") {
		tb.fatalf("#scheduler-role = %q, want leader", got)
	}
	tb.screenshot("health")
}

// waitLiveByEvents waits until the page's live blocks follow the API's
// event stream (kiln.js), rather than polling.
func (tb *tab) waitLiveByEvents() {
	tb.t.Helper()
	tb.waitJS("the page to follow its event stream",
		`document.documentElement.getAttribute("data-live-by") === "events"`,
		`"data-live-by=" + document.documentElement.getAttribute("data-live-by")`)
}

// waitLog waits, without reloading, for pre#log to contain want: a log
// page may fill it after the first paint.
func (tb *tab) waitLog(want string) {
	tb.t.Helper()
	tb.waitJS(fmt.Sprintf("pre#log to contain %q", want),
		fmt.Sprintf(`((document.querySelector("pre#log") || {}).textContent || "").includes(%q)`, want),
		`JSON.stringify((document.querySelector("pre#log") || {}).textContent)`)
}

// Times show in UTC, or in the zone the header's selector picks (the
// browser's, the DAG's), remembered across pages; the next run says when
// it is created and which logical date it carries.
func testTimeZonesAndNextRun(t *testing.T, tb *tab) {
	tb.login(viewer)
	tb.open("/dags/tokyo")
	at, ld := "#dag-next-run .next-at time", "#dag-next-run .next-ld time"
	tb.setValue("#tz-select", "utc")
	if got := tb.text(at); got != "2099-01-02 00:00 UTC" {
		tb.fatalf("next run at %q, want 2099-01-02 00:00 UTC", got)
	}
	if got := tb.text(ld); got != "2099-01-01 00:00 UTC" {
		tb.fatalf("next run's logical date %q, want 2099-01-01 00:00 UTC", got)
	}
	if got := tb.attr(ld, "data-tz"); got != "Asia/Tokyo" {
		tb.fatalf("data-tz = %q, want Asia/Tokyo", got)
	}

	tb.setValue("#tz-select", "dag")
	if got := tb.text(ld); !strings.HasPrefix(got, "2099-01-01 09:00 ") {
		tb.fatalf("in the DAG's zone the logical date reads %q, want 2099-01-01 09:00 (Tokyo)", got)
	}
	tb.screenshot("dag-zone")
	// The choice holds on the next page, and in the DAG list.
	tb.open("/dags")
	if got := tb.text(`table#dags tr[data-dag="tokyo"] .next-ld time`); !strings.HasPrefix(got, "2099-01-01 09:00 ") {
		tb.fatalf("the DAG list shows tokyo's logical date as %q, want the DAG's zone kept", got)
	}
	if got := eval[string](tb, `document.getElementById("tz-select").value`); got != "dag" {
		tb.fatalf("the selector shows %q after a page change, want dag", got)
	}
	// The browser's zone.
	want := eval[string](tb, `new Intl.DateTimeFormat("en-US", {hour: "2-digit", minute: "2-digit", hourCycle: "h23"}).format(new Date("2099-01-01T00:00:00Z"))`)
	tb.setValue("#tz-select", "local")
	if got := tb.text(`table#dags tr[data-dag="tokyo"] .next-ld time`); !strings.Contains(got, " "+want+" ") && !strings.Contains(got, " "+want+":") {
		tb.fatalf("in the browser's zone the logical date reads %q, want its hour %s", got, want)
	}
	tb.setValue("#tz-select", "utc")
	if got := tb.text(`table#dags tr[data-dag="tokyo"] .next-ld time`); got != "2099-01-01 00:00 UTC" {
		tb.fatalf("back in UTC the logical date reads %q", got)
	}
}

// The trigger form's checkbox makes a manual run cover the latest complete
// interval: for the daily nightly, yesterday.
func testTriggerLatestInterval(t *testing.T, tb *tab) {
	tb.login(operator)
	tb.open("/dags/greet/trigger")
	tb.wait("form#trigger-form")
	if tb.count("#latest_interval") != 0 {
		tb.fatalf("greet has no schedule, yet its trigger form offers the latest interval")
	}
	tb.open("/dags/nightly/trigger")
	tb.wait("form#trigger-form")
	tb.click("#latest_interval")
	tb.screenshot("trigger-latest-interval")
	today := time.Now().UTC().Truncate(24 * time.Hour)
	tb.submit("#trigger-submit")
	if p := tb.path(); !strings.HasPrefix(p, "/dags/nightly/runs/manual__") {
		tb.fatalf("after triggering, the page is %s, want nightly's new run", p)
	}
	tb.setValue("#tz-select", "utc")
	got := tb.text("#run-interval")
	want := today.AddDate(0, 0, -1).Format(time.DateOnly) + " 00:00 UTC – " + today.Format(time.DateOnly) + " 00:00 UTC"
	if got != want && time.Now().UTC().Truncate(24*time.Hour).Equal(today) {
		tb.fatalf("#run-interval = %q, want %q", got, want)
	}
}

// testArtifactsAndCachedTask reads the seeded runs of models: the grid
// marks the train the task cache served, and its run page says so, links
// to the run whose try it took, and lists the model it stored.
func testArtifactsAndCachedTask(t *testing.T, tb *tab) {
	tb.login(viewer)
	tb.open("/dags/models")
	cached := fmt.Sprintf(`table#grid a.cell[data-task="train"][data-run=%q][data-cached="1"]`, modelsRunB)
	tb.wait(cached)
	if n := tb.count(`table#grid a.cell[data-cached]`); n != 1 {
		tb.fatalf("%d grid cells are marked cached, want train's of %s only", n, modelsRunB)
	}
	if got := tb.attr(cached, "title"); got != "success · cached from "+modelsRunA {
		tb.fatalf("the cached cell's title = %q", got)
	}
	// The mark is drawn: the cell's background has the white dot.
	if bg := eval[string](tb, fmt.Sprintf(`getComputedStyle(document.querySelector(%q)).backgroundImage`, cached)); !strings.Contains(bg, "radial-gradient") {
		tb.fatalf("the cached cell's background-image = %q, want the dot", bg)
	}
	tb.screenshot("grid-cached")

	tb.submit(cached)
	if p := tb.path(); p != "/dags/models/runs/"+modelsRunB {
		tb.fatalf("the cached cell led to %s", p)
	}
	tb.wait(`#task-detail[data-task="train"] #task-cached`)
	tb.present(`table#tasks tr[data-task="train"] a.badge.cached`)
	if tb.count(`table#tasks tr[data-task="features"] a.badge.cached`) != 0 {
		tb.fatalf("features, which ran, has a cached badge")
	}
	if got := tb.text("#task-cached-from"); !strings.Contains(got, modelsRunA+", try 1") {
		tb.fatalf("#task-cached-from = %q, want run A's try 1", got)
	}
	row := `table#task-artifacts tr[data-artifact="model"]`
	if got := tb.text(row); !strings.Contains(got, "out/model.pkl") || !strings.Contains(got, "3.0 MiB") || !strings.Contains(got, modelArtifact.SHA256[:12]) {
		tb.fatalf("the model's row = %q, want its path, size and short hash", got)
	}
	if got := tb.attr(row+" code.sha", "title"); got != modelArtifact.SHA256 {
		tb.fatalf("the hash's title = %q, want the whole SHA-256", got)
	}
	want := "/api/v1/dags/models/runs/" + url.PathEscape(modelsRunB) + "/tasks/train/artifacts/model"
	if got := tb.attr(row+" a.artifact-download", "href"); got != want {
		tb.fatalf("the download link = %q, want %q", got, want)
	}
	tb.screenshot("run-cached-task")

	// The badge leads to the run whose result was taken.
	tb.submit(`#task-cached`)
	if p := tb.path(); p != "/dags/models/runs/"+modelsRunA {
		tb.fatalf("the cached badge led to %s, want run A", p)
	}
	tb.wait(`#task-detail[data-task="train"] table#task-artifacts`)
	if tb.count("#task-cached") != 0 {
		tb.fatalf("run A's train, which ran, is shown as cached")
	}
}
