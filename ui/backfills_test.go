package ui_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// backfillDAG is churn as the backfill tests need it: scheduled from
// 2026-01-01, so that every day of January can be backfilled, and paused,
// so that the scheduler makes no run of it by itself. Its task holds at
// the gate named after the run's day (2026-01-05), when the test made
// one, and fails on the 1st and the 5th.
const backfillDAG = `
id: churn
schedule: "0 3 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
paused: true
params:
  sample_frac: {type: number, default: 1.0, minimum: 0, maximum: 1, description: Fraction of rows}
  region: {type: string, enum: [eu, us], default: eu}
tasks:
  - id: load
    plugin: shell
    with:
      command: 'if [ -p gates/{{ .ds }} ]; then read gate < gates/{{ .ds }}; fi; case {{ .ds }} in 2026-01-01|2026-01-05) exit 1;; esac'
`

// lateDAG ticks late in the evening in New York, when the UTC date is
// already the next one, and has a depends_on_past task.
const lateDAG = `
id: late
schedule: "30 23 * * *"
timezone: America/New_York
start_date: 2026-01-01
paused: true
tasks:
  - id: load
    plugin: shell
    depends_on_past: true
    with: {command: echo load}
`

// Keys of a backfill object, sorted; a list leaves out dates.
var (
	backfillKeys     = []string{"counts", "created_at", "dag_id", "dates", "end_date", "first_date", "from", "id", "last_date", "max_active_runs", "params", "reprocess", "requested_by", "reverse", "state", "to"}
	backfillDateKeys = []string{"action", "logical_date", "reason", "run_id", "state"}
	countKeys        = []string{"failed", "pending", "queued", "running", "skipped", "success", "total"}
)

func newBackfillAPI(t *testing.T, dags ...string) (*kilntest.Kiln, string) {
	t.Helper()
	k := kilntest.New(t, append([]string{backfillDAG, lateDAG, manualDAG}, dags...)...)
	return k, serveAPI(t, k, ui.Options{}).URL
}

// holdDays makes the gates that hold the runs of backfillDAG on the given
// days of January 2026 running.
func holdDays(k *kilntest.Kiln, days ...int) {
	for _, day := range days {
		k.Gate(fmt.Sprintf("2026-01-%02d", day))
	}
}

// backfillDate returns the date of a backfill at a logical date.
func backfillDate(bf *store.Backfill, ld time.Time) store.BackfillDate {
	for _, d := range bf.Dates {
		if d.LogicalDate.Equal(ld) {
			return d
		}
	}
	return store.BackfillDate{}
}

// callAs is call with the X-Kiln-User header.
func callAs(t *testing.T, user, method, url, body string) response {
	t.Helper()
	return callHeader(t, method, url, body, http.Header{"Content-Type": {"application/json"}, ui.UserHeader: {user}})
}

func utcDate(day, hour, min int) time.Time { return time.Date(2026, 1, day, hour, min, 0, 0, time.UTC) }

func logicalDates(bf ui.Backfill) []time.Time {
	var out []time.Time
	for _, d := range bf.Dates {
		out = append(out, d.LogicalDate)
	}
	return out
}

func TestCreateBackfill(t *testing.T) {
	t.Parallel()
	k, base := newBackfillAPI(t)
	r := callAs(t, "ada@lab", "POST", base+"/api/v1/dags/churn/backfills",
		`{"from": "2026-01-03", "to": "2026-01-05", "max_active_runs": 2, "params": {"sample_frac": 0.5}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if diff := cmp.Diff(backfillKeys, keys(t, r.body)); diff != "" {
		t.Errorf("backfill keys (-want +got):\n%s", diff)
	}
	var raw struct {
		Counts json.RawMessage
		Dates  []json.RawMessage
	}
	r.decode(t, &raw)
	if diff := cmp.Diff(countKeys, keys(t, raw.Counts)); diff != "" {
		t.Errorf("counts keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(backfillDateKeys, keys(t, raw.Dates[0])); diff != "" {
		t.Errorf("date keys (-want +got):\n%s", diff)
	}
	var bf ui.Backfill
	r.decode(t, &bf)
	if bf.ID != "bf-1" || r.header.Get("Location") != "/api/v1/backfills/bf-1" {
		t.Errorf("id %q, Location %q", bf.ID, r.header.Get("Location"))
	}
	// Bare dates are read in the DAG's timezone (Europe/Berlin): from is the
	// start of the day, to the end of it.
	wantFrom := time.Date(2026, 1, 2, 23, 0, 0, 0, time.UTC)
	wantTo := time.Date(2026, 1, 5, 22, 59, 59, 999999999, time.UTC)
	if !bf.From.Equal(wantFrom) || !bf.To.Equal(wantTo) || bf.From.Location() != time.UTC {
		t.Errorf("range answered = %v .. %v, want %v .. %v", bf.From, bf.To, wantFrom, wantTo)
	}
	stored, err := k.Store().GetBackfill("bf-1")
	if err != nil {
		t.Fatal(err)
	}
	if !stored.From.Equal(wantFrom) || !stored.To.Equal(wantTo) || stored.RequestedBy != "ada@lab" || bf.RequestedBy != "ada@lab" ||
		stored.MaxActiveRuns != 2 || stored.Params["sample_frac"] != 0.5 {
		t.Errorf("stored backfill = %+v, answered requested_by %q", stored, bf.RequestedBy)
	}
	want := []time.Time{utcDate(3, 2, 0), utcDate(4, 2, 0), utcDate(5, 2, 0)}
	if diff := cmp.Diff(want, logicalDates(bf)); diff != "" {
		t.Errorf("logical dates (-want +got):\n%s", diff)
	}
	wantCounts := ui.BackfillCounts{Total: 3, Pending: 1, Queued: 2}
	if bf.State != store.BackfillRunning || bf.Counts != wantCounts || bf.Reprocess != "none" || bf.EndDate != nil {
		t.Errorf("backfill = %+v", bf.BackfillSummary)
	}
	first, last := bf.Dates[0], bf.Dates[2]
	if first.Action != "new" || first.RunID == nil || *first.RunID != "backfill__2026-01-03T02:00:00Z" || first.State == nil || *first.State != store.RunQueued {
		t.Errorf("first date = %+v", first)
	}
	if last.RunID != nil || last.State != nil {
		t.Errorf("pending date = %+v, want run_id and state null", last)
	}
	if !strings.Contains(string(r.body), `"run_id":null,"state":null`) {
		t.Errorf("null run_id and state not in the body: %s", r.body)
	}

	// The whole last day is included in the DAG's timezone, even when its
	// tick falls on the next UTC day; without a header, the requester is
	// "api".
	r = call(t, "POST", base+"/api/v1/dags/late/backfills", `{"from": "2026-01-04", "to": "2026-01-05"}`)
	r.decode(t, &bf)
	want = []time.Time{utcDate(5, 4, 30), utcDate(6, 4, 30)}
	if diff := cmp.Diff(want, logicalDates(bf)); r.status != 201 || diff != "" {
		t.Errorf("late: status %d, logical dates (-want +got):\n%s", r.status, diff)
	}
	if bf.RequestedBy != "api" {
		t.Errorf("requested_by without a header = %q, want api", bf.RequestedBy)
	}

	// RFC 3339 bounds are taken as they are.
	r = call(t, "POST", base+"/api/v1/dags/adhoc/backfills", `{"from": "2026-01-03T02:00:00Z", "to": "2026-01-03T02:00:00Z"}`)
	r.wantError(t, 400, "no schedule")
	k.WaitBackfill("bf-1", "end", func(bf *store.Backfill) bool { return bf.State.Finished() })
	r = call(t, "POST", base+"/api/v1/dags/churn/backfills", `{"from": "2026-01-03T02:00:00+00:00", "to": "2026-01-04T02:00:00Z", "reverse": true}`)
	r.decode(t, &bf)
	want = []time.Time{utcDate(4, 2, 0), utcDate(3, 2, 0)}
	if diff := cmp.Diff(want, logicalDates(bf)); r.status != 201 || diff != "" {
		t.Errorf("RFC 3339, reverse: status %d %s, logical dates (-want +got):\n%s", r.status, r.body, diff)
	}
}

// minutelyDAG ticks every minute: 100,000 logical dates fit in 70 days.
const minutelyDAG = `
id: minutely
schedule: "* * * * *"
start_date: 2026-01-01
paused: true
tasks: [{id: a, plugin: shell, with: {command: "true"}}]
`

func TestCreateBackfillRefused(t *testing.T) {
	t.Parallel()
	k, base := newBackfillAPI(t, minutelyDAG)
	tests := []struct {
		name, dag, body string
		status          int
		want            []string
	}{
		{"empty body", "churn", ``, 400, []string{"body", "empty"}},
		{"from missing", "churn", `{"to": "2026-01-05"}`, 400, []string{"from", "required"}},
		{"to missing", "churn", `{"from": "2026-01-05"}`, 400, []string{"to", "required"}},
		{"bad from", "churn", `{"from": "yesterday", "to": "2026-01-05"}`, 400, []string{"from", "yesterday", "Europe/Berlin"}},
		{"bad to", "churn", `{"from": "2026-01-01", "to": "2026-01-32"}`, 400, []string{"to", "2026-01-32"}},
		{"time without offset", "churn", `{"from": "2026-01-01T03:00:00", "to": "2026-01-05"}`, 400, []string{"from", "RFC 3339"}},
		{"from not a string", "churn", `{"from": 20260101, "to": "2026-01-05"}`, 400, []string{"from", "string"}},
		{"from after to", "churn", `{"from": "2026-01-06", "to": "2026-01-05"}`, 400, []string{"from", "after"}},
		{"bad reprocess", "churn", `{"from": "2026-01-01", "to": "2026-01-05", "reprocess": "all"}`, 400, []string{"reprocess", "all"}},
		{"max_active_runs 0", "churn", `{"from": "2026-01-01", "to": "2026-01-05", "max_active_runs": 0}`, 400, []string{"max_active_runs", "at least 1"}},
		{"max_active_runs not a number", "churn", `{"from": "2026-01-01", "to": "2026-01-05", "max_active_runs": "ten"}`, 400, []string{"max_active_runs"}},
		{"params not an object", "churn", `{"from": "2026-01-01", "to": "2026-01-05", "params": [1]}`, 400, []string{"params"}},
		{"bad param", "churn", `{"from": "2026-01-01", "to": "2026-01-05", "params": {"sample_frac": 7}}`, 400, []string{"sample_frac"}},
		{"unknown field", "churn", `{"from": "2026-01-01", "to": "2026-01-05", "wait": true}`, 400, []string{"unknown field", "wait"}},
		{"future date", "churn", `{"from": "2099-01-01", "to": "2099-01-02"}`, 400, []string{"future", "2099-01-02", "the latest date that can be backfilled"}},
		{"too many dates", "minutely", `{"from": "2026-01-01", "to": "2026-03-15"}`, 400, []string{"100000 or more logical dates", "in parts"}},
		{"no date in range", "churn", `{"from": "2025-06-01", "to": "2025-06-30"}`, 400, []string{"no logical date"}},
		{"no schedule", "adhoc", `{"from": "2026-01-01", "to": "2026-01-05"}`, 400, []string{"adhoc", "no schedule"}},
		{"reverse with depends_on_past", "late", `{"from": "2026-01-01", "to": "2026-01-05", "reverse": true}`, 400, []string{"reverse", "depends_on_past", "load"}},
		{"unknown DAG", "nope", `{"from": "2026-01-01", "to": "2026-01-05"}`, 404, []string{`"nope"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call(t, "POST", base+"/api/v1/dags/"+tt.dag+"/backfills", tt.body).wantError(t, tt.status, tt.want...)
		})
	}

	// One active backfill per DAG: the first one's run of the 1st holds.
	holdDays(k, 1)
	if r := call(t, "POST", base+"/api/v1/dags/churn/backfills", `{"from": "2026-01-01", "to": "2026-01-02"}`); r.status != 201 {
		t.Fatalf("first backfill: %d %s", r.status, r.body)
	}
	call(t, "POST", base+"/api/v1/dags/churn/backfills", `{"from": "2026-01-10", "to": "2026-01-12"}`).wantError(t, 409, "active backfill", "bf-1")
}

func TestBackfillDryRun(t *testing.T) {
	t.Parallel()
	k, base := newBackfillAPI(t)
	// Runs on the 4th (it succeeds), the 5th (it fails) and the 6th (it
	// holds).
	holdDays(k, 6)
	for day, state := range map[int]store.RunState{4: store.RunSuccess, 5: store.RunFailed} {
		r := trigger(t, k, "churn", fmt.Sprintf("2026-01-%02dT02:00:00Z", day), nil)
		k.WaitRun("churn", r.RunID, state)
	}
	held := trigger(t, k, "churn", "2026-01-06T02:00:00Z", nil)
	k.WaitTask("churn", held.RunID, "load", store.TaskRunning)
	_, before, _ := k.Store().ListRuns(store.RunQuery{})

	r := call(t, "POST", base+"/api/v1/dags/churn/backfills", `{"from": "2026-01-03", "to": "2026-01-06", "reprocess": "failed", "dry_run": true}`)
	if r.status != http.StatusOK || r.header.Get("Location") != "" {
		t.Fatalf("status %d, Location %q: %s", r.status, r.header.Get("Location"), r.body)
	}
	var bf ui.Backfill
	r.decode(t, &bf)
	type plan struct{ Action, Reason, RunID string }
	var got []plan
	for _, d := range bf.Dates {
		p := plan{Action: d.Action, Reason: d.Reason}
		if d.RunID != nil {
			p.RunID = *d.RunID
		}
		if d.State != nil {
			t.Errorf("%v: state %s in a dry run, want null", d.LogicalDate, *d.State)
		}
		got = append(got, p)
	}
	want := []plan{
		{"new", "", ""},
		{"skip", "run exists (success)", "manual__2026-01-04T02:00:00Z"},
		{"rerun", "run failed", "manual__2026-01-05T02:00:00Z"},
		{"skip", "a run is running", "manual__2026-01-06T02:00:00Z"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
	if bf.ID != "" || bf.Counts != (ui.BackfillCounts{Total: 4, Pending: 2, Skipped: 2}) {
		t.Errorf("dry run = %+v", bf.BackfillSummary)
	}
	// Nothing was written.
	if bfs, err := k.Store().Backfills(""); err != nil || len(bfs) != 0 {
		t.Errorf("backfills stored after a dry run: %v, %v", bfs, err)
	}
	if _, after, _ := k.Store().ListRuns(store.RunQuery{}); after != before {
		t.Errorf("%d runs after a dry run, want %d", after, before)
	}
	r = call(t, "GET", base+"/api/v1/backfills", "")
	if strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("list after a dry run = %s, want []", r.body)
	}
}

func TestListAndGetBackfills(t *testing.T) {
	t.Parallel()
	k, base := newBackfillAPI(t)
	holdDays(k, 2, 3)
	for _, post := range []struct{ dag, body string }{
		{"churn", `{"from": "2026-01-01", "to": "2026-01-03"}`},
		{"late", `{"from": "2026-01-01", "to": "2026-01-02"}`},
	} {
		if r := call(t, "POST", base+"/api/v1/dags/"+post.dag+"/backfills", post.body); r.status != 201 {
			t.Fatalf("%s: %d %s", post.dag, r.status, r.body)
		}
	}

	r := call(t, "GET", base+"/api/v1/backfills", "")
	var raw []json.RawMessage
	r.decode(t, &raw)
	if r.status != 200 || len(raw) != 2 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	wantKeys := slices.DeleteFunc(slices.Clone(backfillKeys), func(k string) bool { return k == "dates" })
	if diff := cmp.Diff(wantKeys, keys(t, raw[0])); diff != "" {
		t.Errorf("list item keys (-want +got):\n%s", diff)
	}
	var list []ui.BackfillSummary
	r.decode(t, &list)
	if list[0].ID != "bf-2" || list[1].ID != "bf-1" || list[1].Counts.Total != 3 {
		t.Errorf("list = %+v, want bf-2 then bf-1", list)
	}

	call(t, "GET", base+"/api/v1/backfills?dag=churn", "").decode(t, &list)
	if len(list) != 1 || list[0].ID != "bf-1" {
		t.Errorf("dag=churn: %+v", list)
	}
	r = call(t, "GET", base+"/api/v1/backfills?dag=adhoc", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != "[]" {
		t.Errorf("dag=adhoc: %d %s, want []", r.status, r.body)
	}
	call(t, "GET", base+"/api/v1/backfills?dag=nope", "").wantError(t, 404, `"nope"`)

	// One backfill, with its dates as they move on: the run of the 1st
	// fails, those of the 2nd and the 3rd hold.
	k.WaitBackfill("bf-1", "the 1st to fail", func(bf *store.Backfill) bool {
		return backfillDate(bf, utcDate(1, 2, 0)).State == store.RunFailed
	})
	r = call(t, "GET", base+"/api/v1/backfills/bf-1", "")
	if diff := cmp.Diff(backfillKeys, keys(t, r.body)); diff != "" {
		t.Errorf("backfill keys (-want +got):\n%s", diff)
	}
	var bf ui.Backfill
	r.decode(t, &bf)
	if bf.ID != "bf-1" || len(bf.Dates) != 3 || bf.Counts != (ui.BackfillCounts{Total: 3, Running: 2, Failed: 1}) {
		t.Errorf("bf-1 = %+v", bf)
	}
	if st := bf.Dates[0].State; st == nil || *st != store.RunFailed {
		t.Errorf("first date = %+v, want failed", bf.Dates[0])
	}
	call(t, "GET", base+"/api/v1/backfills/bf-9", "").wantError(t, 404, "bf-9")
}

// serialDAG runs one run at a time, each held at the gate "serial".
const serialDAG = `
id: serial
schedule: "@daily"
start_date: 2026-01-01
paused: true
max_active_runs: 1
tasks: [{id: hold, plugin: shell, with: {command: "read gate < gates/serial"}}]
`

func TestCancelBackfill(t *testing.T) {
	t.Parallel()
	k, base := newBackfillAPI(t, serialDAG)
	k.Gate("serial")
	r := call(t, "POST", base+"/api/v1/dags/serial/backfills", `{"from": "2026-01-01", "to": "2026-01-04", "max_active_runs": 2}`)
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	// The DAG runs one run at a time: the 1st runs, the 2nd waits queued.
	k.WaitTask("serial", "backfill__2026-01-01T00:00:00Z", "hold", store.TaskRunning)

	r = call(t, "DELETE", base+"/api/v1/backfills/bf-1", "")
	var bf ui.Backfill
	r.decode(t, &bf)
	if r.status != 200 || bf.State != store.BackfillCancelled || bf.EndDate == nil {
		t.Fatalf("cancel: %d %s", r.status, r.body)
	}
	// The running run finishes; the queued one fails without running; the
	// dates without a run stay pending, never to run.
	if got := bf.Counts; got != (ui.BackfillCounts{Total: 4, Running: 1, Failed: 1, Pending: 2}) {
		t.Errorf("counts = %+v", got)
	}
	if d := bf.Dates[1]; d.State == nil || *d.State != store.RunFailed || !strings.Contains(d.Reason, "cancelled") {
		t.Errorf("queued date = %+v", d)
	}
	if run, err := k.Store().GetRun("serial", "backfill__2026-01-02T00:00:00Z"); err != nil || run.State != store.RunFailed || run.StartDate != nil {
		t.Errorf("the queued run after the cancel: %+v, %v; want failed without starting", run, err)
	}
	call(t, "DELETE", base+"/api/v1/backfills/bf-1", "").wantError(t, 409, "already ended")
	call(t, "DELETE", base+"/api/v1/backfills/bf-9", "").wantError(t, 404, "bf-9")

	// The DAG may be backfilled again.
	if r := call(t, "POST", base+"/api/v1/dags/serial/backfills", `{"from": "2026-01-10", "to": "2026-01-10"}`); r.status != 201 {
		t.Errorf("after cancel: %d %s", r.status, r.body)
	}
}

func TestRunsOfABackfill(t *testing.T) {
	t.Parallel()
	k, base := newBackfillAPI(t)
	// A run on the 4th succeeds, one on the 5th fails.
	for day, state := range map[int]store.RunState{4: store.RunSuccess, 5: store.RunFailed} {
		r := trigger(t, k, "churn", fmt.Sprintf("2026-01-%02dT02:00:00Z", day), nil)
		k.WaitRun("churn", r.RunID, state)
	}
	r := call(t, "POST", base+"/api/v1/dags/churn/backfills", `{"from": "2026-01-04", "to": "2026-01-06", "reprocess": "failed"}`)
	if r.status != 201 {
		t.Fatalf("%d %s", r.status, r.body)
	}

	r = call(t, "GET", base+"/api/v1/dags/churn/runs?backfill_id=bf-1", "")
	var raw []json.RawMessage
	r.decode(t, &raw)
	if r.status != 200 || len(raw) != 2 || r.header.Get("X-Total-Count") != "2" {
		t.Fatalf("backfill_id=bf-1: %d %s", r.status, r.body)
	}
	wantKeys := append(slices.Clone(runKeys), "backfill_id")
	slices.Sort(wantKeys)
	if diff := cmp.Diff(wantKeys, keys(t, raw[0])); diff != "" {
		t.Errorf("keys of a backfill's run (-want +got):\n%s", diff)
	}
	var runs []ui.Run
	r.decode(t, &runs)
	var got []string
	for _, run := range runs {
		if run.BackfillID != "bf-1" {
			t.Errorf("%s: backfill_id %q", run.RunID, run.BackfillID)
		}
		got = append(got, run.RunType+" "+run.RunID)
	}
	// The failed run is re-run as it is: its type and id stay.
	want := []string{"backfill backfill__2026-01-06T02:00:00Z", "manual manual__2026-01-05T02:00:00Z"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("runs (-want +got):\n%s", diff)
	}

	call(t, "GET", base+"/api/v1/dags/~/runs?run_type=backfill&backfill_id=bf-1", "").decode(t, &runs)
	if len(runs) != 1 || runs[0].RunID != "backfill__2026-01-06T02:00:00Z" {
		t.Errorf("run_type=backfill&backfill_id=bf-1 = %+v", runs)
	}
	// A run of no backfill keeps the keys docs/api.md#runs lists.
	r = call(t, "GET", base+"/api/v1/dags/churn/runs/manual__2026-01-04T02:00:00Z", "")
	if diff := cmp.Diff(runKeys, keys(t, r.body)); diff != "" {
		t.Errorf("keys of a run of no backfill (-want +got):\n%s", diff)
	}
}
