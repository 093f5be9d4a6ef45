package ui_test

import (
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// logPageDAG's train fails its first try with a log to escape, and holds
// its second at the gate "train" without a word.
const logPageDAG = `
id: logs
tasks:
  - id: train
    plugin: shell
    retries: 1
    retry_delay: 0s
    with:
      command: 'if [ {{ .try_number }} = 1 ]; then printf ''loading <data>\r\nfailed: "oom"\n''; exit 1; fi; read gate < gates/train'
`

func TestLogPageFinishedTry(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, logPageDAG)
	k.Gate("train")
	run := trigger(t, k, "logs", "2026-01-05T02:00:00Z", nil)
	k.WaitFor("train's second try to run", func() bool {
		ti, err := k.Store().GetTaskInstance("logs", run.RunID, "train")
		return err == nil && ti.State == store.TaskRunning && ti.TryNumber == 2
	})

	ran1 := ran(`if [ 1 = 1 ]; then printf 'loading <data>\r\nfailed: "oom"\n'; exit 1; fi; read gate < gates/train`)
	path := "/dags/logs/runs/" + run.RunID + "/tasks/train/logs"
	d := getPage(t, srv.URL+path+"?try=1").want(t, http.StatusOK)
	pre := d.one("pre#log")
	// The worker notes how the try ended.
	if got := pre.text(); got != ran1+"loading <data>\nfailed: \"oom\"\nkiln: exit status 1\n" {
		t.Errorf("pre#log = %q", got)
	}
	if pre.attr("data-follow") != "" {
		t.Error("a finished try's log is followed")
	}
	var crumbs []string
	for _, a := range d.all("div.crumbs a") {
		crumbs = append(crumbs, a.text()+"="+a.attr("href"))
	}
	if want := "DAGs=/dags logs=/dags/logs Runs=/dags/logs/runs " + run.RunID + "=/dags/logs/runs/" + run.RunID; strings.Join(crumbs, " ") != want {
		t.Errorf("breadcrumb = %v, want %s", crumbs, want)
	}
	if got := d.one("#log-state").attr("data-state"); got != "failed" {
		t.Errorf("#log-state = %q, want failed", got)
	}
	var tries []string
	for _, a := range d.all("nav#try-select a[data-try]") {
		tries = append(tries, a.attr("data-try")+"="+a.attr("href"))
	}
	if want := "1=" + path + "?try=1 2=" + path + "?try=2"; strings.Join(tries, " ") != want {
		t.Errorf("try selector = %v, want %s", tries, want)
	}
	if got := d.one("nav#try-select a.on").attr("data-try"); got != "1" {
		t.Errorf("selected try = %s", got)
	}

	// The download link: the API's text, as an attachment.
	dl := d.one("a#log-download")
	if dl.attr("download") == "" || !strings.Contains(dl.attr("href"), "download=1") {
		t.Fatalf("a#log-download = %v", dl.n.Attr)
	}
	resp := call(t, "GET", srv.URL+dl.attr("href"), "")
	if resp.status != 200 || string(resp.body) != ran1+"loading <data>\r\nfailed: \"oom\"\nkiln: exit status 1\n" {
		t.Errorf("download: %d %q", resp.status, resp.body)
	}
	disp, params, err := mime.ParseMediaType(resp.header.Get("Content-Disposition"))
	if err != nil || disp != "attachment" || params["filename"] != "logs_manual__2026-01-05T02-00-00Z_train_1.log" {
		t.Errorf("Content-Disposition = %q", resp.header.Get("Content-Disposition"))
	}
	if params["filename"] != dl.attr("download") {
		t.Errorf("download attribute %q, file name %q", dl.attr("download"), params["filename"])
	}
	call(t, "GET", srv.URL+"/api/v1/dags/logs/runs/"+run.RunID+"/tasks/train/logs?download=x", "").wantError(t, 400, "download")

	// Timestamps: a toggle on the page, ?timestamps=1 in the API; every
	// line starts with its receive time, also read from mid-line.
	stamp := `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ `
	toggle := d.one("a#log-times")
	if toggle.attr("aria-checked") != "false" || toggle.attr("href") != path+"?try=1&timestamps=1" {
		t.Errorf("a#log-times = %v", toggle.n.Attr)
	}
	ds := getPage(t, srv.URL+toggle.attr("href")).want(t, http.StatusOK)
	want := regexp.MustCompile("^" + stamp + regexp.QuoteMeta(ran1) + stamp + "loading <data>\n" + stamp + "failed: \"oom\"\n" + stamp + "kiln: exit status 1\n$")
	if got := ds.one("pre#log").text(); !want.MatchString(got) {
		t.Errorf("stamped pre#log = %q", got)
	}
	if got := ds.one("a#log-times"); got.attr("aria-checked") != "true" || got.attr("href") != path+"?try=1" {
		t.Errorf("a#log-times when on = %v", got.n.Attr)
	}
	api := srv.URL + "/api/v1/dags/logs/runs/" + run.RunID + "/tasks/train/logs?try=1&timestamps=1"
	want = regexp.MustCompile("^" + stamp + regexp.QuoteMeta(ran1) + stamp + "loading <data>\r\n" + stamp + "failed: \"oom\"\n" + stamp + "kiln: exit status 1\n$")
	if resp := call(t, "GET", api, ""); resp.status != 200 || !want.Match(resp.body) {
		t.Errorf("?timestamps=1: %d %q", resp.status, resp.body)
	}
	want = regexp.MustCompile("^ding <data>\r\n" + stamp + "failed")
	if resp := call(t, "GET", api+"&offset="+strconv.Itoa(len(ran1)+3), ""); resp.status != 200 || !want.Match(resp.body) {
		t.Errorf("?timestamps=1&offset=3: %d %q", resp.status, resp.body)
	}
	call(t, "GET", api+"x", "").wantError(t, 400, "timestamps")

	// The latest try by default, with only its command logged yet, is
	// followed.
	k.WaitLog(wire.TryKey{DAGID: "logs", RunID: run.RunID, TaskID: "train", Try: 2}, "\n")
	d = getPage(t, srv.URL+path).want(t, http.StatusOK)
	if d.one("pre#log").text() != ran(`if [ 2 = 1 ]; then printf 'loading <data>\r\nfailed: "oom"\n'; exit 1; fi; read gate < gates/train`) || d.one("pre#log").attr("data-follow") == "" {
		t.Error("the running try 2 is not followed")
	}
	for _, q := range []string{"?try=3", "?try=0"} {
		if p := getPage(t, srv.URL+path+q); p.status/100 != 4 {
			t.Errorf("GET %s: %d, want 4xx", q, p.status)
		}
	}
	if p := getPage(t, srv.URL+"/dags/logs/runs/"+run.RunID+"/tasks/nope/logs"); p.status != 404 {
		t.Errorf("unknown task: %d, want 404", p.status)
	}
}

// stepsDAG logs a first part that ends inside a character, holds at the
// gate "more", then logs the rest.
const stepsDAG = `
id: steps
tasks:
  - id: train
    plugin: shell
    with:
      command: "printf 'step 1\\r\\nstep 2 \\303\\251\\303'; read gate < gates/more; printf '\\251t\\303\\251\\nstep 3\\n'"
`

func TestLogPageFollowsARunningTry(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, stepsDAG)
	more := k.Gate("more")
	run := trigger(t, k, "steps", "", nil)
	key := wire.TryKey{DAGID: "steps", RunID: run.RunID, TaskID: "train", Try: 1}
	// The page renders what is there, up to the last whole character.
	ranSteps := ran(`printf 'step 1\r\nstep 2 \303\251\303'; read gate < gates/more; printf '\251t\303\251\nstep 3\n'`)
	first := ranSteps + "step 1\r\nstep 2 é"
	k.WaitLog(key, first+"\xc3")

	d := getPage(t, srv.URL+"/dags/steps/runs/"+run.RunID+"/tasks/train/logs").want(t, http.StatusOK)
	pre := d.one("pre#log")
	if got := pre.text(); got != ranSteps+"step 1\nstep 2 é" {
		t.Errorf("pre#log = %q", got)
	}
	followed := pre.attr("data-follow")
	wantURL := "/api/v1/dags/steps/runs/" + run.RunID + "/tasks/train/logs?try=1&follow=1&offset=" + strconv.Itoa(len(first))
	if followed != wantURL {
		t.Fatalf("data-follow = %q, want %q", followed, wantURL)
	}

	// Following from there brings the rest, and nothing twice.
	out, errc, endc := follow(t, srv.URL+followed, nil)
	// The task logs the rest and exits: its log is whole before the
	// scheduler commits the try's end, which ends the stream.
	more.Open()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if end := <-endc; end.State != store.TaskSuccess || end.TryNumber != 1 {
		t.Errorf("end = %+v", end)
	}
	if got := out.String(); got != "\xc3\xa9t\xc3\xa9\nstep 3\n" {
		t.Errorf("followed = %q, want the rest of the log from the offset", got)
	}
}

// hugeLogDAG logs 3 MB: 30,000 lines of a number and 99 x.
const hugeLogDAG = `
id: huge
tasks:
  - id: train
    plugin: shell
    with:
      command: 'x=$(printf "%099d" 0 | tr 0 x); i=0; while [ $i -lt 30000 ]; do printf "%d%s\n" $i $x; i=$((i+1)); done'
`

func TestLogPageCutsAHugeLog(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, hugeLogDAG)
	run := trigger(t, k, "huge", "", nil)
	k.WaitRun("huge", run.RunID, store.RunSuccess)
	line := strings.Repeat("x", 99) + "\n"

	d := getPage(t, srv.URL+"/dags/huge/runs/"+run.RunID+"/tasks/train/logs").want(t, http.StatusOK)
	text := d.one("pre#log").text()
	if len(text) > 2<<20 || len(text) < 2<<20-200 {
		t.Errorf("the page holds %d bytes of the log, want its last 2 MiB", len(text))
	}
	if !strings.HasSuffix(text, "29999"+line) {
		t.Errorf("the page's log ends %q", text[len(text)-120:])
	}
	if first, _, _ := strings.Cut(text, "x"); strings.ContainsAny(first, "\n") || first == "" {
		t.Errorf("the page's log starts mid-line: %q", text[:120])
	}
	cut := d.one("#log-cut")
	if !strings.Contains(cut.text(), "3.0 MiB") || !strings.Contains(cut.one("a").attr("href"), "download=1") {
		t.Errorf("#log-cut = %q", cut.text())
	}
}
