package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// failingDAG's extract fails, so train never runs, and report, which runs
// once every upstream task is done, succeeds.
const failingDAG = `
id: failing
tasks:
  - {id: extract, plugin: shell, with: {command: "echo no data; exit 1"}}
  - {id: train, plugin: shell, depends_on: [extract], with: {command: echo train}}
  - {id: report, plugin: shell, depends_on: [train], trigger_rule: all_done, with: {command: echo report}}
`

// trigger makes a manual run through the scheduler; date, when not empty,
// is its logical date in RFC 3339.
func trigger(t *testing.T, k *kilntest.Kiln, dagID, date string, params map[string]any) *store.Run {
	t.Helper()
	req := scheduler.TriggerRequest{Params: params}
	if date != "" {
		ld, err := time.Parse(time.RFC3339, date)
		if err != nil {
			t.Fatal(err)
		}
		req.LogicalDate = &ld
	}
	r, err := k.Trigger(t.Context(), dagID, req)
	if err != nil {
		t.Fatalf("triggering %s: %v", dagID, err)
	}
	return r
}

// numberDAG prints its integer param.
const numberDAG = "id: n\nparams: {n: {type: integer}}\ntasks: [{id: a, plugin: shell, with: {command: 'echo {{ .params.n }}'}}]"

func TestTriggerRun(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, numberDAG)
	url := srv.URL + "/api/v1/dags/churn/runs"

	r := call(t, "POST", url, `{"logical_date": "2026-02-01T04:00:00+01:00", "params": {"sample_frac": 0.5}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if diff := cmp.Diff(runKeys, keys(t, r.body)); diff != "" {
		t.Errorf("run keys (-want +got):\n%s", diff)
	}
	var run ui.Run
	r.decode(t, &run)
	wantID := "manual__2026-02-01T03:00:00Z"
	if run.RunID != wantID || run.State != store.RunQueued || run.RunType != "manual" {
		t.Errorf("run = %+v", run)
	}
	if got := r.header.Get("Location"); got != "/api/v1/dags/churn/runs/"+wantID {
		t.Errorf("Location = %q", got)
	}
	if !strings.Contains(string(r.body), `"logical_date":"2026-02-01T03:00:00Z"`) {
		t.Errorf("logical_date not in UTC: %s", r.body)
	}
	if diff := cmp.Diff(map[string]any{"sample_frac": 0.5, "region": "eu"}, run.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	var order []string
	for _, task := range run.Tasks {
		order = append(order, task.TaskID)
	}
	if diff := cmp.Diff([]string{"extract", "train", "report"}, order); diff != "" {
		t.Errorf("tasks not in the DAG's order (-want +got):\n%s", diff)
	}
	var raw struct{ Tasks []json.RawMessage }
	r.decode(t, &raw)
	if diff := cmp.Diff(runTaskKeys, keys(t, raw.Tasks[0])); diff != "" {
		t.Errorf("run task keys (-want +got):\n%s", diff)
	}
	if stored, err := k.Store().GetRun("churn", wantID); err != nil || stored.Params["sample_frac"] != 0.5 {
		t.Errorf("stored run: %+v, %v; want sample_frac 0.5", stored, err)
	}

	// Integers reach the scheduler as integers, as --param coerces them,
	// exactly where a float64 could not hold them (2^53 + 1): the task
	// prints 9007199254740993, not 9007199254740992 or 9.007199254740992e+15.
	call(t, "POST", srv.URL+"/api/v1/dags/adhoc/runs", `{"logical_date": "2026-02-01T00:00:00Z", "params": {}}`)
	r = call(t, "POST", srv.URL+"/api/v1/dags/n/runs", `{"params": {"n": 9007199254740993}}`)
	if r.status != 201 {
		t.Fatalf("integer param: %d %s", r.status, r.body)
	}
	var nRun ui.Run
	r.decode(t, &nRun)
	k.WaitRun("n", nRun.RunID, store.RunSuccess)
	if log := k.WaitLog(wire.TryKey{DAGID: "n", RunID: nRun.RunID, TaskID: "a", Try: 1}, "\n"); !strings.HasSuffix(log, "\n9007199254740993\n") {
		t.Errorf("the task printed %q, want 9007199254740993", log)
	}

	// An empty body is a run now with default params.
	if r := call(t, "POST", srv.URL+"/api/v1/dags/adhoc/runs", ""); r.status != 201 {
		t.Errorf("empty body: %d %s", r.status, r.body)
	}

	tests := []struct {
		name, dag, body string
		status          int
		want            []string
	}{
		{"bad date", "churn", `{"logical_date": "yesterday"}`, 400, []string{"logical_date", "RFC 3339"}},
		{"date not a string", "churn", `{"logical_date": 5}`, 400, []string{"logical_date"}},
		{"bad param", "churn", `{"params": {"sample_frac": 7}}`, 400, []string{"sample_frac"}},
		{"unknown param", "churn", `{"params": {"colour": "red"}}`, 400, []string{"colour"}},
		{"params not an object", "churn", `{"params": [1]}`, 400, []string{"params"}},
		{"unknown field", "churn", `{"conf": {}}`, 400, []string{"unknown field", "conf"}},
		{"conflict", "churn", `{"logical_date": "2026-02-01T03:00:00Z"}`, 409, []string{"already"}},
		{"unknown DAG", "nope", `{}`, 404, []string{"nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call(t, "POST", srv.URL+"/api/v1/dags/"+tt.dag+"/runs", tt.body).wantError(t, tt.status, tt.want...)
		})
	}
}

func TestGetRun(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	run := trigger(t, k, "churn", "2026-01-05T02:00:00Z", nil)
	// extract runs; train waits for its gpu pool.
	k.WaitTask("churn", run.RunID, "extract", store.TaskSuccess)
	r := call(t, "GET", srv.URL+"/api/v1/dags/churn/runs/"+run.RunID, "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if diff := cmp.Diff(runKeys, keys(t, r.body)); diff != "" {
		t.Errorf("run keys (-want +got):\n%s", diff)
	}
	var got ui.Run
	r.decode(t, &got)
	extract := got.Tasks[0]
	if extract.TaskID != "extract" || extract.State != store.TaskSuccess || extract.TryNumber != 1 ||
		extract.StartDate == nil || extract.EndDate == nil || extract.DurationS == nil {
		t.Fatalf("extract = %+v", extract)
	}
	if extract.StartDate.Location() != time.UTC || extract.EndDate.Location() != time.UTC {
		t.Errorf("times not in UTC: %s", r.body)
	}
	if want := extract.EndDate.Sub(*extract.StartDate).Seconds(); *extract.DurationS != want {
		t.Errorf("duration_s = %v, want %v", *extract.DurationS, want)
	}
	if got.Tasks[1].DurationS != nil || got.Tasks[1].StartDate != nil {
		t.Errorf("task not started has %+v, want null times", got.Tasks[1])
	}

	call(t, "GET", srv.URL+"/api/v1/dags/churn/runs/manual__nope", "").wantError(t, 404, "manual__nope")
	call(t, "GET", srv.URL+"/api/v1/dags/nope/runs/"+run.RunID, "").wantError(t, 404, `DAG "nope"`)
	// Escaped path segments are unescaped.
	escaped := strings.ReplaceAll(run.RunID, ":", "%3A")
	if r := call(t, "GET", srv.URL+"/api/v1/dags/churn/runs/"+escaped, ""); r.status != 200 {
		t.Errorf("escaped run id: %d %s", r.status, r.body)
	}
}

// nightlyDAG catches up on the first six days of 2026 as soon as it is
// loaded; the runs of the 3rd and the 6th fail.
const nightlyDAG = `
id: nightly
schedule: "@daily"
start_date: 2026-01-01
end_date: 2026-01-06
catchup: true
tasks:
  - id: load
    plugin: shell
    with: {command: 'case {{ .ds }} in *-03|*-06) exit 1;; esac'}
`

func TestListRuns(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, nightlyDAG)
	trigger(t, k, "nightly", "2026-01-07T00:00:00Z", nil)
	for day := 1; day <= 7; day++ {
		typ := "scheduled"
		if day == 7 {
			typ = "manual"
		}
		k.WaitRun("nightly", fmt.Sprintf("%s__2026-01-%02dT00:00:00Z", typ, day))
	}
	list := func(query string) (response, []ui.Run) {
		t.Helper()
		r := call(t, "GET", srv.URL+"/api/v1/dags/nightly/runs"+query, "")
		var runs []ui.Run
		if r.status == 200 {
			r.decode(t, &runs)
		}
		return r, runs
	}
	days := func(runs []ui.Run) []int {
		var out []int
		for _, r := range runs {
			out = append(out, r.LogicalDate.Day())
		}
		return out
	}
	tests := []struct {
		query string
		days  []int
		total string
	}{
		{"", []int{7, 6, 5, 4, 3, 2, 1}, "7"},
		{"?limit=2", []int{7, 6}, "7"},
		{"?limit=2&offset=2", []int{5, 4}, "7"},
		{"?offset=10", nil, "7"},
		{"?state=failed", []int{6, 3}, "2"},
		{"?state=success&limit=1&offset=1", []int{5}, "5"},
		{"?run_type=manual", []int{7}, "1"},
		{"?run_type=backfill", nil, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r, runs := list(tt.query)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if diff := cmp.Diff(tt.days, days(runs)); diff != "" {
				t.Errorf("days (-want +got):\n%s", diff)
			}
			if got := r.header.Get("X-Total-Count"); got != tt.total {
				t.Errorf("X-Total-Count = %q, want %q", got, tt.total)
			}
			if !strings.HasPrefix(string(r.body), "[") {
				t.Errorf("body is not an array: %s", r.body)
			}
		})
	}
	_, runs := list("?limit=1")
	if len(runs[0].Tasks) != 1 || runs[0].Tasks[0].State != store.TaskSuccess {
		t.Errorf("listed run has tasks %+v, want its load task", runs[0].Tasks)
	}

	bad := []struct{ query, want string }{
		{"?limit=0", "limit"},
		{"?limit=1001", "limit"},
		{"?limit=ten", "limit"},
		{"?offset=-1", "offset"},
		{"?state=done", "state"},
		{"?run_type=cron", "run_type"},
	}
	for _, tt := range bad {
		t.Run(tt.query, func(t *testing.T) {
			r, _ := list(tt.query)
			r.wantError(t, 400, tt.want)
		})
	}

	call(t, "GET", srv.URL+"/api/v1/dags/nope/runs", "").wantError(t, 404, "nope")
	if r := call(t, "GET", srv.URL+"/api/v1/dags/adhoc/runs", ""); r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("DAG without runs: %d %s, want []", r.status, r.body)
	}

	// "~" lists the runs of every DAG.
	call(t, "POST", srv.URL+"/api/v1/dags/adhoc/runs", `{}`)
	r := call(t, "GET", srv.URL+"/api/v1/dags/~/runs?limit=100", "")
	var all []ui.Run
	r.decode(t, &all)
	if r.header.Get("X-Total-Count") != "8" || len(all) != 8 {
		t.Errorf("all DAGs: total %s, %d runs, want 8", r.header.Get("X-Total-Count"), len(all))
	}
}

// flakyDAG's train fails, and waits five minutes before its next try.
const flakyDAG = `
id: flaky
tasks:
  - {id: train, plugin: shell, retries: 3, with: {command: "echo out of memory; exit 3"}}
  - {id: report, plugin: shell, depends_on: [train], with: {command: echo report}}
`

func TestTaskInstances(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, flakyDAG)
	run := trigger(t, k, "flaky", "", nil)
	k.WaitTask("flaky", run.RunID, "train", store.TaskUpForRetry)
	r := call(t, "GET", srv.URL+"/api/v1/dags/flaky/runs/"+run.RunID+"/tasks", "")
	var tis []ui.TaskInstance
	r.decode(t, &tis)
	if r.status != 200 || len(tis) != 2 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	train, report := tis[0], tis[1]
	if train.TaskID != "train" || train.State != store.TaskUpForRetry || train.MaxTries != 4 || train.NotBefore == nil || train.Outputs == nil {
		t.Errorf("train = %+v", train)
	}
	if len(train.Tries) != 1 {
		t.Fatalf("train's tries = %+v, want 1", train.Tries)
	}
	try := train.Tries[0]
	if try.TryNumber != 1 || try.State != store.TaskFailed || try.Worker != "w1" || try.ExitCode == nil || *try.ExitCode != 3 ||
		!strings.Contains(try.Error, "3") || try.QueuedAt == nil || try.StartDate == nil || try.EndDate == nil {
		t.Errorf("try 1 = %+v", try)
	} else if want := try.EndDate.Sub(*try.StartDate).Seconds(); try.DurationS == nil || *try.DurationS != want {
		t.Errorf("try 1's duration_s = %v, want %v", try.DurationS, want)
	}
	if report.Tries == nil {
		t.Error("tries of a task never tried is null, want []")
	}
	call(t, "GET", srv.URL+"/api/v1/dags/flaky/runs/nope/tasks", "").wantError(t, 404, "nope")
}

func TestClear(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, failingDAG)
	run := trigger(t, k, "failing", "", nil)
	k.WaitRun("failing", run.RunID, store.RunFailed)
	url := srv.URL + "/api/v1/dags/failing/runs/" + run.RunID + "/clear"
	clear := func(body, want string) {
		t.Helper()
		if r := call(t, "POST", url, body); r.status != 200 || strings.TrimSpace(string(r.body)) != want {
			t.Errorf("clear %s: %d %s, want %s", body, r.status, r.body, want)
		}
		// The cleared tasks run again, and the run ends again.
		k.WaitRun("failing", run.RunID, store.RunFailed)
	}

	clear(`{"tasks": ["train"], "downstream": true, "only_failed": false}`, `{"cleared":["train","report"]}`)
	if tries, _ := k.Store().Tries("failing", run.RunID, "report"); len(tries) != 2 {
		t.Errorf("report tried %d times, want twice", len(tries))
	}
	clear("", `{"cleared":["extract","train","report"]}`)
	clear(`{"tasks": ["report"], "only_failed": true}`, `{"cleared":[]}`)
	call(t, "POST", url, `{"tasks": ["nope"]}`).wantError(t, 400, "nope")
	call(t, "POST", url, `{"tasks": "train"}`).wantError(t, 400, "tasks")
	call(t, "POST", srv.URL+"/api/v1/dags/failing/runs/nope/clear", `{}`).wantError(t, 404, "nope")
}

func TestPools(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	pools := func() string {
		r := call(t, "GET", srv.URL+"/api/v1/pools", "")
		if r.status != 200 {
			t.Fatalf("list: %d %s", r.status, r.body)
		}
		return strings.TrimSpace(string(r.body))
	}
	if got := pools(); got != `[{"name":"default_pool","slots":128}]` {
		t.Errorf("pools = %s, want default_pool only", got)
	}
	if r := call(t, "PUT", srv.URL+"/api/v1/pools/gpu", `{"slots": 2}`); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"name":"gpu","slots":2}` {
		t.Errorf("set: %d %s", r.status, r.body)
	}
	if got := pools(); got != `[{"name":"default_pool","slots":128},{"name":"gpu","slots":2}]` {
		t.Errorf("pools = %s", got)
	}
	if r := call(t, "DELETE", srv.URL+"/api/v1/pools/gpu", ""); r.status != 204 || len(r.body) != 0 {
		t.Errorf("delete: %d %s, want 204", r.status, r.body)
	}
	call(t, "PUT", srv.URL+"/api/v1/pools/gpu", `{"slots": -1}`).wantError(t, 400, "slots")
	call(t, "PUT", srv.URL+"/api/v1/pools/gpu", `{}`).wantError(t, 400, "slots", "required")
	call(t, "PUT", srv.URL+"/api/v1/pools/gpu", `{"slots": 1.5}`).wantError(t, 400, "slots: want an integer, got a number 1.5")
	call(t, "PUT", srv.URL+"/api/v1/pools/my%20gpu", `{"slots": 1}`).wantError(t, 400, `"my gpu"`, "A-Z a-z 0-9 _ -", "dots between them")
	call(t, "DELETE", srv.URL+"/api/v1/pools/gpu", "").wantError(t, 404, "gpu")
	call(t, "DELETE", srv.URL+"/api/v1/pools/default_pool", "").wantError(t, 400, "default_pool")
}
