package ui_test

// Handler-level tests of the API over a real Kiln (internal/kilntest: the
// scheduler, its store and workers): status codes, bodies, paging, bad
// input.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/ui"
)

func TestMain(m *testing.M) { kilntest.Main(m, nil) }

// ran is the first line of a shell task's log: the command it runs,
// rendered.
func ran(command string) string { return "kiln: running: " + command + "\n" }

// The real scheduler is the API's backend.
var _ ui.Backend = (*scheduler.Scheduler)(nil)

// churnDAG starts far ahead, so that the scheduler creates no run of it
// while the tests run. Runs of region us fail at extract. Train waits for
// the gpu pool, which only some tests make, then holds at the gate "train".
const churnDAG = `
id: churn
description: Train the churn model
schedule: "0 3 * * *"
timezone: Europe/Berlin
start_date: 2099-01-01
tags: [ml, churn]
params:
  sample_frac: {type: number, default: 1.0, minimum: 0, maximum: 1, description: Fraction of rows}
  region: {type: string, enum: [eu, us], default: eu}
tasks:
  - id: extract
    plugin: shell
    with: {command: "test {{ .params.region }} = eu"}
  - id: train
    depends_on: [extract]
    plugin: shell
    with: {command: "read gate < gates/train"}
    retries: 3
    queue: gpu
    pool: gpu
  - id: report
    depends_on: [train]
    plugin: shell
    trigger_rule: all_done
    with: {command: echo report}
`

const manualDAG = `
id: adhoc
tasks:
  - id: only
    plugin: shell
    with: {command: "true"}
`

// newAPI starts a Kiln with the churn and adhoc DAGs and more, and its API.
func newAPI(t *testing.T, dags ...string) (*kilntest.Kiln, *httptest.Server) {
	t.Helper()
	k := kilntest.New(t, append([]string{churnDAG, manualDAG}, dags...)...)
	return k, serveAPI(t, k, ui.Options{})
}

// serveAPI serves the API of a Kiln until the test ends.
func serveAPI(t *testing.T, k *kilntest.Kiln, o ui.Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(ui.New(k.Scheduler, o).Handler())
	t.Cleanup(srv.Close)
	return srv
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func call(t *testing.T, method, url, body string) response {
	t.Helper()
	return callHeader(t, method, url, body, nil)
}

// callHeader is call with the request headers header.
func callHeader(t *testing.T, method, url, body string, header http.Header) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// decode unmarshals the body into v, failing the test if it does not fit.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// wantError checks an error answer: its status and that {"error"} mentions
// every substring.
func (r response) wantError(t *testing.T, status int, substrings ...string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %s)", r.status, status, r.body)
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	msg, ok := e["error"].(string)
	if !ok || len(e) != 1 {
		t.Fatalf("error body = %s, want exactly {\"error\": \"...\"}", r.body)
	}
	for _, s := range substrings {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q does not mention %q", msg, s)
		}
	}
}

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, raw []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s is not a JSON object: %v", raw, err)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The run object of docs/api.md#runs and the task entries in it, keys sorted.
var (
	runKeys     = []string{"dag_id", "dag_version", "data_interval_end", "data_interval_start", "end_date", "logical_date", "params", "run_id", "run_type", "start_date", "state", "tasks"}
	runTaskKeys = []string{"duration_s", "end_date", "start_date", "state", "task_id", "try_number"}
)

func TestHealth(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	r := call(t, "GET", srv.URL+"/healthz", "")
	want := fmt.Sprintf(`{"status":"ok","version":%q,"scheduler":{"role":"leader"}}`, buildinfo.Get().Version)
	if r.status != 200 || string(bytes.TrimSpace(r.body)) != want {
		t.Errorf("healthy: %d %s, want 200 %s", r.status, r.body, want)
	}
	k.StopNATS()
	k.WaitFor("/healthz to fail", func() bool {
		r = call(t, "GET", srv.URL+"/healthz", "")
		return r.status != 200
	})
	var h ui.Health
	r.decode(t, &h)
	if r.status != 503 || h.Status != "unavailable" || !strings.HasPrefix(h.Error, "NATS: not connected") || h.Scheduler.Role != "leader" {
		t.Errorf("unhealthy: %d %s, want 503 with the error", r.status, r.body)
	}
}

func TestListDAGs(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	r := call(t, "GET", srv.URL+"/api/v1/dags", "")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var raw []json.RawMessage
	r.decode(t, &raw)
	if len(raw) != 2 {
		t.Fatalf("got %d DAGs, want 2: %s", len(raw), r.body)
	}
	wantKeys := []string{"dag_id", "description", "file", "next_data_interval", "params", "paused", "schedule", "stale", "tags", "task_count", "timezone"}
	if diff := cmp.Diff(wantKeys, keys(t, raw[0])); diff != "" {
		t.Errorf("DAG keys (-want +got):\n%s", diff)
	}
	var dags []ui.DAG
	r.decode(t, &dags)
	adhoc, churn := dags[0], dags[1]
	if adhoc.DAGID != "adhoc" || churn.DAGID != "churn" {
		t.Fatalf("DAGs not sorted by id: %s, %s", adhoc.DAGID, churn.DAGID)
	}
	if adhoc.Schedule != nil || adhoc.NextDataInterval != nil || adhoc.Tags == nil || adhoc.Timezone != "UTC" {
		t.Errorf("manual DAG = %+v, want schedule and next interval null, tags [], UTC", adhoc)
	}
	if churn.Schedule == nil || *churn.Schedule != "0 3 * * *" || churn.Timezone != "Europe/Berlin" || churn.TaskCount != 3 ||
		!slices.Equal(churn.Tags, []string{"ml", "churn"}) || churn.Description != "Train the churn model" {
		t.Errorf("churn = %+v", churn)
	}
	iv := churn.NextDataInterval
	if iv == nil || iv.Start.Location() != time.UTC || iv.End.Sub(iv.Start) != 24*time.Hour {
		t.Errorf("churn next_data_interval = %+v, want a day in UTC", iv)
	}
	if !strings.Contains(string(r.body), `"region","type":"string","required":false,"default":"eu","enum":["eu","us"]`) {
		t.Errorf("params not described as expected: %s", r.body)
	}
}

func TestGetDAG(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	r := call(t, "GET", srv.URL+"/api/v1/dags/churn", "")
	var d ui.DAGDetail
	r.decode(t, &d)
	if r.status != 200 || d.DAGID != "churn" {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantTasks := []ui.Task{
		{TaskID: "extract", Plugin: "shell", DependsOn: []string{}, TriggerRule: "all_success", Queue: "default", Pool: "default_pool"},
		{TaskID: "train", Plugin: "shell", DependsOn: []string{"extract"}, TriggerRule: "all_success", Retries: 3, Queue: "gpu", Pool: "gpu"},
		{TaskID: "report", Plugin: "shell", DependsOn: []string{"train"}, TriggerRule: "all_done", Queue: "default", Pool: "default_pool"},
	}
	if diff := cmp.Diff(wantTasks, d.Tasks); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	zero, one := 0.0, 1.0
	wantParams := []ui.Param{
		{Name: "sample_frac", Type: "number", Default: 1.0, Minimum: &zero, Maximum: &one, Description: "Fraction of rows"},
		{Name: "region", Type: "string", Default: "eu", Enum: []any{"eu", "us"}},
	}
	if diff := cmp.Diff(wantParams, d.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if d.StartDate == nil || !d.StartDate.Equal(time.Date(2098, 12, 31, 23, 0, 0, 0, time.UTC)) || d.StartDate.Location() != time.UTC {
		t.Errorf("start_date = %v, want 2099-01-01 Berlin in UTC", d.StartDate)
	}

	call(t, "GET", srv.URL+"/api/v1/dags/nope", "").wantError(t, 404, `"nope"`)
}

// TestGetDAGGroups: a DAG's task groups and each task's group, with
// depends_on naming a group expanded to its tasks.
func TestGetDAGGroups(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t, `
id: grouped
groups:
  extract:
    description: Pull the sources
    tasks: [a, b]
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
  - {id: b, plugin: shell, with: {command: "true"}}
  - {id: join, plugin: shell, depends_on: [extract], with: {command: "true"}}
`)
	r := call(t, "GET", srv.URL+"/api/v1/dags/grouped", "")
	var d ui.DAGDetail
	r.decode(t, &d)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if diff := cmp.Diff([]ui.Group{{Name: "extract", Description: "Pull the sources", Tasks: []string{"a", "b"}}}, d.Groups); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
	if len(d.Tasks) != 3 || d.Tasks[0].Group != "extract" || d.Tasks[2].Group != "" || !slices.Equal(d.Tasks[2].DependsOn, []string{"a", "b"}) {
		t.Errorf("tasks: %+v", d.Tasks)
	}
	// A DAG without groups has no groups key.
	if r := call(t, "GET", srv.URL+"/api/v1/dags/churn", ""); strings.Contains(string(r.body), `"groups"`) || strings.Contains(string(r.body), `"group"`) {
		t.Errorf("churn's JSON names groups: %s", r.body)
	}
}

func TestPatchDAG(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	url := srv.URL + "/api/v1/dags/churn"
	r := call(t, "PATCH", url, `{"paused": true}`)
	var d ui.DAGDetail
	r.decode(t, &d)
	if r.status != 200 || !d.Paused {
		t.Errorf("pause: %d %s", r.status, r.body)
	}
	if info, _ := k.DAG("churn"); !info.Paused {
		t.Error("the scheduler did not pause churn")
	}
	// Names match whatever their case, as they did with encoding/json.
	if r := call(t, "PATCH", url, `{"Paused": false}`); r.status != 200 || strings.Contains(string(r.body), `"paused":true`) {
		t.Errorf("unpause: %d %s", r.status, r.body)
	}

	tests := []struct {
		name, body string
		status     int
		want       []string
	}{
		{"missing field", `{}`, 400, []string{"paused", "required"}},
		{"empty body", ``, 400, []string{"body", "empty"}},
		{"wrong type", `{"paused": "yes"}`, 400, []string{"paused: want a boolean, got a string"}},
		{"number for a boolean", `{"paused": 1}`, 400, []string{"paused: want a boolean, got a number"}},
		{"unknown field", `{"paused": true, "colour": 1}`, 400, []string{`body: unknown field "colour"`}},
		{"unknown field in a malformed body", `{"colour": `, 400, []string{"body: JSON ends too early"}},
		{"bad JSON", `{"paused": tru}`, 400, []string{"body: invalid JSON at byte 14: invalid character '}' in literal true"}},
		{"duplicate field", `{"paused": true, "paused": false}`, 400, []string{"paused: given twice"}},
		{"trailing data", `{"paused": true} {}`, 400, []string{"after the JSON"}},
		{"not an object", `[true]`, 400, []string{"JSON object"}},
		{"too large", `{"paused": true, "x": "` + strings.Repeat("a", 2<<20) + `"}`, 413, []string{"larger than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call(t, "PATCH", url, tt.body).wantError(t, tt.status, tt.want...)
		})
	}
	call(t, "PATCH", srv.URL+"/api/v1/dags/nope", `{"paused": true}`).wantError(t, 404, "nope")
}

func TestImportErrors(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	r := call(t, "GET", srv.URL+"/api/v1/import-errors", "")
	if r.status != 200 || string(bytes.TrimSpace(r.body)) != "[]" {
		t.Errorf("no errors: %d %s, want []", r.status, r.body)
	}
	// churn's file breaks: its last good version stays loaded, stale.
	k.WriteDAG("churn.yaml", strings.Replace(churnDAG, `"0 3 * * *"`, `"0 3 * *"`, 1))
	r = call(t, "GET", srv.URL+"/api/v1/import-errors", "")
	file := "churn.yaml" // relative to the DAGs folder: the server's layout is not shown
	var ies []struct {
		File   string
		Errors []map[string]any
		Stale  bool
	}
	r.decode(t, &ies)
	if len(ies) != 1 || ies[0].File != file || !ies[0].Stale || len(ies[0].Errors) != 1 {
		t.Fatalf("import errors = %s, want churn.yaml's, stale", r.body)
	}
	var raw []json.RawMessage
	r.decode(t, &raw)
	if got := keys(t, raw[0]); !slices.Equal(got, []string{"errors", "file", "stale"}) {
		t.Errorf("import error keys = %v", got)
	}
	// The schedule is on line 4 of churnDAG, its value at column 11.
	want := map[string]any{"file": file, "line": 4.0, "col": 11.0}
	for k, v := range want {
		if ies[0].Errors[0][k] != v {
			t.Errorf("error %s = %v, want %v (%s)", k, ies[0].Errors[0][k], v, r.body)
		}
	}
	if msg, _ := ies[0].Errors[0]["message"].(string); !strings.Contains(msg, "5 fields") {
		t.Errorf("error message %q does not say what is wrong", msg)
	}
	var d ui.DAG
	call(t, "GET", srv.URL+"/api/v1/dags/churn", "").decode(t, &d)
	if !d.Stale {
		t.Error("churn not marked stale")
	}
}

func TestNotFoundRoutes(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	call(t, "GET", srv.URL+"/api/v1/nothing", "").wantError(t, 404, "not found")
	r := call(t, "DELETE", srv.URL+"/api/v1/dags", "")
	r.wantError(t, 405, "method not allowed")
}
