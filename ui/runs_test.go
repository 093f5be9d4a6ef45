package ui_test

import (
	"encoding/json"
	"fmt"
	"github.com/kilnhq/kiln/scheduler"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/ui/uitest"
)

func ptr[T any](v T) *T { return &v }

// putRun commits a run of churn at day (2026-01-DAY) with the given state
// and type, and task instances in the store's order (by task id).
func putRun(b *uitest.Backend, day int, state store.RunState, runType string) *store.Run {
	date := time.Date(2026, 1, day, 2, 0, 0, 0, time.UTC)
	r := &store.Run{
		DAGID: "churn", RunID: fmt.Sprintf("%s__%s", runType, date.Format(time.RFC3339)),
		RunType: runType, State: state, LogicalDate: date, DataIntervalStart: date, DataIntervalEnd: date.AddDate(0, 0, 1),
		QueuedAt: date.AddDate(0, 0, 1), Params: map[string]any{"region": "eu", "sample_frac": 1},
	}
	b.Commit(func(batch *store.Batch) {
		batch.PutRun(r)
		for _, id := range []string{"extract", "report", "train"} {
			batch.PutTaskInstance(&store.TaskInstance{DAGID: "churn", RunID: r.RunID, TaskID: id, State: store.TaskNone, MaxTries: 1})
		}
	})
	return r
}

func TestTriggerRun(t *testing.T) {
	b, srv := newAPI(t)
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
	if p := b.Triggers[0].Params["sample_frac"]; p != 0.5 {
		t.Errorf("backend got sample_frac %v (%T), want float64 0.5", p, p)
	}

	// Integers reach the backend as int64, as --param coerces them, exactly
	// where a float64 could not hold them (2^53 + 1).
	call(t, "POST", srv.URL+"/api/v1/dags/adhoc/runs", `{"logical_date": "2026-02-01T00:00:00Z", "params": {}}`)
	b.AddDAG("n.yaml", "id: n\nparams: {n: {type: integer}}\ntasks: [{id: a, plugin: shell, with: {command: x}}]")
	if r := call(t, "POST", srv.URL+"/api/v1/dags/n/runs", `{"params": {"n": 9007199254740993}}`); r.status != 201 {
		t.Errorf("integer param: %d %s", r.status, r.body)
	} else if p := b.Triggers[len(b.Triggers)-1].Params["n"]; p != int64(9007199254740993) {
		t.Errorf("backend got n %v (%T), want int64 9007199254740993", p, p)
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
	b, srv := newAPI(t)
	run := putRun(b, 5, store.RunRunning, store.RunTypeScheduled)
	start := time.Date(2026, 1, 6, 2, 0, 0, 0, time.FixedZone("CET", 3600))
	b.Commit(func(batch *store.Batch) {
		batch.PutTaskInstance(&store.TaskInstance{
			DAGID: "churn", RunID: run.RunID, TaskID: "extract", State: store.TaskSuccess, TryNumber: 1,
			StartDate: ptr(start), EndDate: ptr(start.Add(90 * time.Second)),
		})
	})
	r := call(t, "GET", srv.URL+"/api/v1/dags/churn/runs/"+run.RunID, "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if diff := cmp.Diff(runKeys, keys(t, r.body)); diff != "" {
		t.Errorf("run keys (-want +got):\n%s", diff)
	}
	var got ui.Run
	r.decode(t, &got)
	want := ui.RunTask{
		TaskID: "extract", State: store.TaskSuccess, TryNumber: 1,
		StartDate: ptr(time.Date(2026, 1, 6, 1, 0, 0, 0, time.UTC)), EndDate: ptr(time.Date(2026, 1, 6, 1, 1, 30, 0, time.UTC)),
		DurationS: ptr(90.0),
	}
	if diff := cmp.Diff(want, got.Tasks[0]); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(r.body), `"start_date":"2026-01-06T01:00:00Z"`) {
		t.Errorf("times not in UTC: %s", r.body)
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

func TestListRuns(t *testing.T) {
	b, srv := newAPI(t)
	for day := 1; day <= 7; day++ {
		state, typ := store.RunSuccess, store.RunTypeScheduled
		if day%3 == 0 {
			state = store.RunFailed
		}
		if day == 7 {
			typ = store.RunTypeManual
		}
		putRun(b, day, state, typ)
	}
	list := func(query string) (response, []ui.Run) {
		t.Helper()
		r := call(t, "GET", srv.URL+"/api/v1/dags/churn/runs"+query, "")
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
	if len(runs[0].Tasks) != 3 {
		t.Errorf("listed run has tasks %+v, want all 3", runs[0].Tasks)
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

func TestTaskInstances(t *testing.T) {
	b, srv := newAPI(t)
	run := putRun(b, 5, store.RunRunning, store.RunTypeScheduled)
	t0 := time.Date(2026, 1, 6, 2, 0, 0, 0, time.UTC)
	b.Commit(func(batch *store.Batch) {
		batch.PutTaskInstance(&store.TaskInstance{
			DAGID: "churn", RunID: run.RunID, TaskID: "train", State: store.TaskUpForRetry, TryNumber: 1, MaxTries: 4,
			Queue: "gpu", Pool: "gpu", PoolSlots: 1, Priority: 1, NotBefore: t0.Add(time.Minute),
		})
		batch.PutTry(&store.Try{
			DAGID: "churn", RunID: run.RunID, TaskID: "train", Number: 1, State: store.TaskFailed, Worker: "w1",
			QueuedAt: t0, StartDate: ptr(t0), EndDate: ptr(t0.Add(2 * time.Second)), ExitCode: ptr(3), Error: "exit status 3",
		})
	})
	r := call(t, "GET", srv.URL+"/api/v1/dags/churn/runs/"+run.RunID+"/tasks", "")
	var tis []ui.TaskInstance
	r.decode(t, &tis)
	if r.status != 200 || len(tis) != 3 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	train := tis[1]
	if train.TaskID != "train" || train.State != store.TaskUpForRetry || train.MaxTries != 4 || train.NotBefore == nil || train.Outputs == nil {
		t.Errorf("train = %+v", train)
	}
	wantTries := []ui.Try{{
		TryNumber: 1, State: store.TaskFailed, Worker: "w1", QueuedAt: ptr(t0), StartDate: ptr(t0),
		EndDate: ptr(t0.Add(2 * time.Second)), DurationS: ptr(2.0), ExitCode: ptr(3), Error: "exit status 3",
	}}
	if diff := cmp.Diff(wantTries, train.Tries); diff != "" {
		t.Errorf("tries (-want +got):\n%s", diff)
	}
	if tis[0].Tries == nil {
		t.Error("tries of a task never tried is null, want []")
	}
	call(t, "GET", srv.URL+"/api/v1/dags/churn/runs/nope/tasks", "").wantError(t, 404, "nope")
}

func TestClear(t *testing.T) {
	b, srv := newAPI(t)
	run := putRun(b, 5, store.RunFailed, store.RunTypeScheduled)
	url := srv.URL + "/api/v1/dags/churn/runs/" + run.RunID + "/clear"

	r := call(t, "POST", url, `{"tasks": ["train"], "downstream": true, "only_failed": false}`)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"cleared":["train"]}` {
		t.Errorf("clear: %d %s", r.status, r.body)
	}
	if diff := cmp.Diff(scheduler.ClearRequest{Tasks: []string{"train"}, Downstream: true}, b.Clears[0]); diff != "" {
		t.Errorf("backend request (-want +got):\n%s", diff)
	}
	if r := call(t, "POST", url, ""); r.status != 200 || !strings.Contains(string(r.body), `"cleared":["extract","report","train"]`) {
		t.Errorf("clear all: %d %s", r.status, r.body)
	}
	if r := call(t, "POST", url, `{"only_failed": true}`); r.status != 200 || strings.TrimSpace(string(r.body)) != `{"cleared":[]}` {
		t.Errorf("nothing to clear: %d %s, want an empty list", r.status, r.body)
	}
	call(t, "POST", url, `{"tasks": ["nope"]}`).wantError(t, 400, "nope")
	call(t, "POST", url, `{"tasks": "train"}`).wantError(t, 400, "tasks")
	call(t, "POST", srv.URL+"/api/v1/dags/churn/runs/nope/clear", `{}`).wantError(t, 404, "nope")
}

func TestPools(t *testing.T) {
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
	call(t, "DELETE", srv.URL+"/api/v1/pools/gpu", "").wantError(t, 404, "gpu")
	call(t, "DELETE", srv.URL+"/api/v1/pools/default_pool", "").wantError(t, 400, "default_pool")
}
