package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// The keys of a backfill object, sorted; lists leave out dates.
var (
	specBackfillKeys     = []string{"counts", "created_at", "dag_id", "dates", "end_date", "from", "id", "max_active_runs", "params", "reprocess", "requested_by", "reverse", "state", "to"}
	specBackfillDateKeys = []string{"action", "logical_date", "reason", "run_id", "state"}
)

// backfillDAG is churn as the backfill tests need it: scheduled from
// 2026-01-01, so that every day of January can be backfilled, and paused,
// so that the scheduler makes no run of it by itself. Its task holds at
// the gate named after the run's day (2026-01-05), when the test made
// one, and fails on the 5th, the 11th, the 13th and the 20th.
const backfillDAG = `
id: churn
schedule: "0 3 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
paused: true
params:
  sample_frac: {type: number, default: 1.0, minimum: 0, maximum: 1}
  region: {type: string, enum: [eu, us], default: eu}
  features: {type: array, default: [age]}
tasks:
  - id: load
    plugin: shell
    with:
      command: 'if [ -p gates/{{ .ds }} ]; then read gate < gates/{{ .ds }}; fi; case {{ .ds }} in 2026-01-05|2026-01-11|2026-01-13|2026-01-20) exit 1;; esac'
`

// newBackfillEnv is a CLI environment with backfillDAG as churn, and
// needs.
func newBackfillEnv(t *testing.T, dags ...string) *cliEnv {
	t.Helper()
	e := &cliEnv{t: t, k: kilntest.New(t, append([]string{backfillDAG, testRequiredDAG}, dags...)...)}
	e.serve()
	return e
}

// holdDays makes the gates that hold the runs of backfillDAG on the given
// days of January 2026 running.
func holdDays(e *cliEnv, days ...int) {
	for _, day := range days {
		e.k.Gate(fmt.Sprintf("2026-01-%02d", day))
	}
}

// onlyEvents moves the fallback re-read of --wait an hour away for the
// test's duration, so that only the server's event stream moves it on.
func onlyEvents(t *testing.T) {
	t.Helper()
	prev := eventFallback
	eventFallback = time.Hour
	t.Cleanup(func() { eventFallback = prev })
}

// churnDay is the logical date of churn on 2026-01-DAY: 03:00 in Berlin.
func churnDay(day int) time.Time { return time.Date(2026, 1, day, 2, 0, 0, 0, time.UTC) }

// checkBackfillJSON checks that raw is a backfill object with its dates.
func checkBackfillJSON(t *testing.T, raw []byte) ui.Backfill {
	t.Helper()
	if got := jsonKeys(t, raw); !slices.Equal(got, specBackfillKeys) {
		t.Errorf("backfill keys = %v, want %v", got, specBackfillKeys)
	}
	var dates struct{ Dates []json.RawMessage }
	if err := json.Unmarshal(raw, &dates); err != nil {
		t.Fatal(err)
	}
	for _, d := range dates.Dates {
		if got := jsonKeys(t, d); !slices.Equal(got, specBackfillDateKeys) {
			t.Errorf("date keys = %v, want %v", got, specBackfillDateKeys)
		}
	}
	var bf ui.Backfill
	if err := json.Unmarshal(raw, &bf); err != nil {
		t.Fatal(err)
	}
	return bf
}

type cliResult struct {
	stdout, stderr string
	code           int
	at             time.Time // when the command returned
}

// runAsync runs a command line in the background.
func runAsync(t *testing.T, args ...string) <-chan cliResult {
	done := make(chan cliResult, 1)
	go func() {
		stdout, stderr, code := runCLI(t, args...)
		done <- cliResult{stdout, stderr, code, time.Now()}
	}()
	return done
}

func TestBackfillDryRun(t *testing.T) {
	e := newBackfillEnv(t)
	e.k.WaitRun("churn", e.trigger("churn", "2026-01-04T02:00:00Z", nil).RunID, store.RunSuccess)
	e.k.WaitRun("churn", e.trigger("churn", "2026-01-05T02:00:00Z", nil).RunID, store.RunFailed)

	stdout, stderr, code := e.run("backfill", "churn", "--from", "2026-01-03", "--to", "2026-01-06", "--reprocess", "failed", "--dry-run")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `2026-01-03T02:00:00Z  new
2026-01-04T02:00:00Z  skip: run exists (success)
2026-01-05T02:00:00Z  re-run: run failed
2026-01-06T02:00:00Z  new
dry run of a backfill of DAG churn: 4 logical date(s) from 2026-01-03T02:00:00Z to 2026-01-06T02:00:00Z: 2 new, 1 re-run, 1 skip; nothing was created
`
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("dry run output (-want +got):\n%s", diff)
	}

	stdout, _, code = e.run("backfill", "churn", "--from", "2026-01-03", "--to", "2026-01-04", "--dry-run", "--json", "--reverse", "--reprocess", "failed")
	bf := checkBackfillJSON(t, []byte(stdout))
	if code != 0 || bf.ID != "" || len(bf.Dates) != 2 || !bf.Dates[0].LogicalDate.Equal(churnDay(4)) {
		t.Errorf("--dry-run --json: exit %d, %+v", code, bf)
	}
	// The bare dates reach the server, which reads them in Berlin: the
	// start of the 3rd and the end of the 4th.
	if !bf.From.Equal(time.Date(2026, 1, 2, 23, 0, 0, 0, time.UTC)) || !bf.To.Equal(time.Date(2026, 1, 4, 22, 59, 59, 999999999, time.UTC)) ||
		bf.Reprocess != "failed" || bf.MaxActiveRuns != 10 || !bf.Reverse {
		t.Errorf("plan = %+v", bf.BackfillSummary)
	}
	if bfs, _ := e.k.Store().Backfills(""); len(bfs) != 0 {
		t.Errorf("a dry run stored %d backfill(s)", len(bfs))
	}
	if _, total, _ := e.k.Store().ListRuns(store.RunQuery{}); total != 2 {
		t.Errorf("%d runs after dry runs, want the 2 there were", total)
	}
}

func TestBackfillCreate(t *testing.T) {
	e := newBackfillEnv(t)
	t.Setenv("USER", "ada")
	stdout, stderr, code := e.run("backfill", "churn", "--from", "2026-01-01", "--to", "2026-01-03T03:00",
		"--param", "sample_frac=0.5", "--param", "region=us", "--max-active-runs", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	bf := checkBackfillJSON(t, []byte(stdout))
	if bf.ID != "bf-1" || bf.State != store.BackfillRunning || len(bf.Dates) != 3 || bf.MaxActiveRuns != 2 ||
		bf.Counts != (ui.BackfillCounts{Total: 3, Queued: 2, Pending: 1}) {
		t.Errorf("backfill = %+v", bf)
	}
	if !strings.HasPrefix(bf.RequestedBy, "ada@") {
		t.Errorf("requested_by = %q, want ada@HOST", bf.RequestedBy)
	}
	// A time without an offset is read in the DAG's timezone.
	if got := bf.To; !got.Equal(churnDay(3)) {
		t.Errorf("to = %v, want %v", got, churnDay(3))
	}
	want := map[string]any{"sample_frac": 0.5, "region": "us", "features": []any{"age"}}
	if diff := cmp.Diff(want, bf.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if stderr != "" {
		t.Errorf("stderr = %q", stderr)
	}

	// Without --json: one line saying what was created.
	e.k.WaitBackfill("bf-1", "end", func(bf *store.Backfill) bool { return bf.State.Finished() })
	stdout, _, code = e.run("backfill", "churn", "--from", "2026-01-10", "--to", "2026-01-12")
	wantLine := "created backfill bf-2 of DAG churn: 3 logical date(s) from 2026-01-10T02:00:00Z to 2026-01-12T02:00:00Z: 3 new, 0 re-run, 0 skip\n"
	if code != 0 || stdout != wantLine {
		t.Errorf("exit %d, stdout %q, want %q", code, stdout, wantLine)
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

func TestBackfillRefused(t *testing.T) {
	e := newBackfillEnv(t, minutelyDAG)
	holdDays(e, 1) // the first backfill stays active
	if _, stderr, code := e.run("backfill", "churn", "--from", "2026-01-01", "--to", "2026-01-02"); code != 0 {
		t.Fatalf("first backfill: exit %d: %s", code, stderr)
	}
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"no --to", []string{"churn", "--from", "2026-01-01"}, 2, []string{"to"}},
		{"no DAG", []string{"--from", "2026-01-01", "--to", "2026-01-02"}, 2, []string{"arg"}},
		{"bad --reprocess", []string{"churn", "--from", "2026-01-01", "--to", "2026-01-02", "--reprocess", "all"}, 2, []string{"--reprocess", "all"}},
		{"bad --max-active-runs", []string{"churn", "--from", "2026-01-01", "--to", "2026-01-02", "--max-active-runs", "0"}, 2, []string{"--max-active-runs"}},
		{"bad --from", []string{"churn", "--from", "last week", "--to", "2026-01-02"}, 2, []string{"--from", "last week"}},
		{"from after to", []string{"churn", "--from", "2026-01-20", "--to", "2026-01-10"}, 2, []string{"after"}},
		{"future", []string{"churn", "--from", "2099-01-30", "--to", "2099-02-05"}, 2, []string{"future"}},
		{"too many dates", []string{"minutely", "--from", "2026-01-01", "--to", "2026-03-15"}, 2, []string{"100000 or more logical dates", "in parts"}},
		{"no schedule", []string{"needs", "--from", "2026-01-01", "--to", "2026-01-02", "--param", "n=1"}, 2, []string{"no schedule"}},
		{"bad param", []string{"churn", "--from", "2026-01-10", "--to", "2026-01-12", "--param", "region=mars"}, 2, []string{"region"}},
		{"unknown DAG", []string{"nope", "--from", "2026-01-01", "--to", "2026-01-02"}, 1, []string{`DAG "nope" not found`}},
		{"one active backfill per DAG", []string{"churn", "--from", "2026-01-10", "--to", "2026-01-12"}, 1, []string{"active backfill", "bf-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := e.run(append([]string{"backfill"}, tt.args...)...)
			wantExit(t, code, stderr, tt.code, tt.want...)
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
	if bfs, _ := e.k.Store().Backfills(""); len(bfs) != 1 {
		t.Errorf("%d backfills stored, want 1", len(bfs))
	}
}

func TestBackfillWait(t *testing.T) {
	onlyEvents(t)
	e := newBackfillEnv(t)

	// The runs hold until the command has shown the backfill once.
	holdDays(e, 1, 2, 3)
	done := runAsync(t, "backfill", "churn", "--from", "2026-01-01", "--to", "2026-01-03", "--max-active-runs", "2", "--wait")
	e.waitRequest("GET /api/v1/backfills/bf-1")
	for day := 1; day <= 3; day++ {
		e.k.Gate(fmt.Sprintf("2026-01-%02d", day)).Open()
	}
	res := <-done
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if !strings.Contains(res.stdout, "created backfill bf-1") || !strings.HasSuffix(res.stdout, "backfill bf-1 succeeded: 3 run(s)\n") {
		t.Errorf("stdout = %q", res.stdout)
	}
	// Not a terminal: plain progress lines, each printed once.
	lines := strings.Split(strings.TrimSpace(res.stderr), "\n")
	first, last := lines[0], lines[len(lines)-1]
	// The two runs started may or may not have begun to run yet.
	var queued, running int
	if _, err := fmt.Sscanf(first, "backfill bf-1: 0/3 done, 0 failed, %d queued, %d running, 1 pending, elapsed ", &queued, &running); err != nil || queued+running != 2 {
		t.Errorf("first progress line = %q", first)
	}
	if !strings.HasPrefix(last, "backfill bf-1: 3/3 done, 0 failed, 0 queued, 0 running, 0 pending, elapsed ") {
		t.Errorf("last progress line = %q", last)
	}
	for i := 1; i < len(lines); i++ {
		if cut(lines[i]) == cut(lines[i-1]) {
			t.Errorf("progress line printed twice: %q", lines[i])
		}
	}

	// A failure: exit 1 with the failed dates listed (runs on the 11th and
	// the 13th fail).
	res = <-runAsync(t, "backfill", "churn", "--from", "2026-01-10", "--to", "2026-01-13", "--wait")
	wantExit(t, res.code, res.stderr, 1, "backfill bf-2 of DAG churn failed: 2 of 4 run(s) failed; failed dates:\n"+
		"  2026-01-11T02:00:00Z  backfill__2026-01-11T02:00:00Z\n"+
		"  2026-01-13T02:00:00Z  backfill__2026-01-13T02:00:00Z\n")
	if !strings.Contains(res.stderr, "backfill bf-2: 4/4 done, 2 failed") {
		t.Errorf("stderr = %q", res.stderr)
	}

	// --json --wait: only the backfill as it ended on stdout, no progress
	// (the run of the 20th fails).
	res = <-runAsync(t, "backfill", "churn", "--from", "2026-01-20", "--to", "2026-01-21", "--wait", "--json")
	bf := checkBackfillJSON(t, []byte(res.stdout))
	if res.code != 1 || bf.State != store.BackfillFailed || bf.EndDate == nil || bf.Counts.Failed != 1 {
		t.Errorf("--json: exit %d, %+v", res.code, bf)
	}
	if strings.Contains(res.stderr, "done,") || !strings.Contains(res.stderr, "2026-01-20T02:00:00Z") {
		t.Errorf("--json stderr = %q, want only the failure", res.stderr)
	}
}

// cut drops the elapsed time from a progress line.
func cut(line string) string {
	before, _, _ := strings.Cut(line, ", elapsed")
	return before
}

func TestBackfillWaitBar(t *testing.T) {
	onlyEvents(t)
	prev := isTerminal
	isTerminal = func(io.Writer) bool { return true }
	t.Cleanup(func() { isTerminal = prev })
	newBackfillEnv(t)

	// The run of the 5th fails.
	res := <-runAsync(t, "backfill", "churn", "--from", "2026-01-04", "--to", "2026-01-05", "--wait")
	wantExit(t, res.code, res.stderr, 1, "backfill bf-1: 1 failed", "(2/2", "2026-01-05T02:00:00Z")
	if strings.Contains(res.stderr, "done,") {
		t.Errorf("progress lines on a terminal: %q", res.stderr)
	}
}

func TestBackfillWaitInterrupted(t *testing.T) {
	onlyEvents(t)
	interrupt := make(chan struct{})
	prev := notifyInterrupt
	notifyInterrupt = func(ctx context.Context) (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(ctx)
		go func() {
			select {
			case <-interrupt:
				cancel()
			case <-ctx.Done():
			}
		}()
		return ctx, cancel
	}
	t.Cleanup(func() { notifyInterrupt = prev })
	e := newBackfillEnv(t)
	holdDays(e, 1, 2, 3)

	done := runAsync(t, "backfill", "churn", "--from", "2026-01-01", "--to", "2026-01-03", "--wait")
	e.waitRequest("GET /api/v1/backfills/bf-1")
	close(interrupt)
	res := <-done
	wantExit(t, res.code, res.stderr, 130, "stopped following; backfill bf-1 keeps running (kiln backfills show bf-1)")
	if bf, _ := e.k.Store().GetBackfill("bf-1"); bf.State != store.BackfillRunning {
		t.Errorf("the backfill was touched: %s", bf.State)
	}
}

func TestBackfillsListShowCancel(t *testing.T) {
	e := newBackfillEnv(t, "id: hourly\nschedule: \"@hourly\"\nstart_date: 2026-01-01\npaused: true\ntasks: [{id: a, plugin: shell, with: {command: \"true\"}}]")
	e.k.WaitRun("churn", e.trigger("churn", "2026-01-02T02:00:00Z", nil).RunID, store.RunSuccess)
	holdDays(e, 1)
	e.run("backfill", "churn", "--from", "2026-01-01", "--to", "2026-01-03", "--max-active-runs", "1")
	e.run("backfill", "hourly", "--from", "2026-01-05T00:00:00Z", "--to", "2026-01-05T01:00:00Z")

	stdout, stderr, code := e.run("backfills", "list", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil || len(raw) != 2 {
		t.Fatalf("list --json = %s (%v)", stdout, err)
	}
	wantKeys := slices.DeleteFunc(slices.Clone(specBackfillKeys), func(k string) bool { return k == "dates" })
	if got := jsonKeys(t, raw[0]); !slices.Equal(got, wantKeys) {
		t.Errorf("list item keys = %v, want %v", got, wantKeys)
	}
	var list []ui.BackfillSummary
	json.Unmarshal([]byte(stdout), &list)
	if list[0].ID != "bf-2" || list[1].ID != "bf-1" {
		t.Errorf("list = %+v, want newest first", list)
	}

	stdout, _, code = e.run("backfills", "list", "--dag", "churn")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("list --dag churn: exit %d\n%s", code, stdout)
	}
	if h := strings.Join(strings.Fields(lines[0]), " "); h != "ID DAG STATE FROM TO DONE FAILED SKIPPED REQUESTED BY CREATED" {
		t.Errorf("header = %q", h)
	}
	if f := strings.Fields(lines[1]); f[0] != "bf-1" || f[1] != "churn" || f[2] != "running" || f[5] != "0/2" || f[7] != "1" {
		t.Errorf("row = %q", lines[1])
	}
	_, stderr, code = e.run("backfills", "list", "--dag", "nope")
	wantExit(t, code, stderr, 1, "nope")

	// show: a header, then a row per date.
	stdout, _, code = e.run("backfills", "show", "bf-1")
	if code != 0 {
		t.Fatalf("show: exit %d", code)
	}
	for _, want := range []string{"Backfill:", "bf-1", "Reprocess:", "none", "Max active runs:", "3: 0 success, 0 failed, 0 queued, 1 running, 1 pending, 1 skipped"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show does not mention %q:\n%s", want, stdout)
		}
	}
	_, table, _ := strings.Cut(stdout, "\n\n")
	rows := strings.Split(strings.TrimSpace(table), "\n")
	wantRows := []string{
		"LOGICAL DATE ACTION RUN STATE REASON",
		"2026-01-01T02:00:00Z new backfill__2026-01-01T02:00:00Z running -",
		"2026-01-02T02:00:00Z skip manual__2026-01-02T02:00:00Z - run exists (success)",
		"2026-01-03T02:00:00Z new - - -",
	}
	for i := range rows {
		rows[i] = strings.Join(strings.Fields(rows[i]), " ")
	}
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Errorf("show table (-want +got):\n%s", diff)
	}
	stdout, _, _ = e.run("backfills", "show", "bf-1", "--json")
	if bf := checkBackfillJSON(t, []byte(stdout)); bf.ID != "bf-1" || len(bf.Dates) != 3 {
		t.Errorf("show --json = %+v", bf)
	}
	_, stderr, code = e.run("backfills", "show", "bf-9")
	wantExit(t, code, stderr, 1, "bf-9", "not found")

	// cancel: the queued run does not start, the pending date gets none.
	stdout, stderr, code = e.run("backfills", "cancel", "bf-1")
	if code != 0 || !strings.HasPrefix(stdout, "cancelled backfill bf-1 of DAG churn: 1 date(s) without a run will get none") {
		t.Errorf("cancel: exit %d, %q %q", code, stdout, stderr)
	}
	bf, _ := e.k.Store().GetBackfill("bf-1")
	if bf.State != store.BackfillCancelled {
		t.Errorf("state after cancel = %s", bf.State)
	}
	_, stderr, code = e.run("backfills", "cancel", "bf-1")
	wantExit(t, code, stderr, 1, "already ended")
	_, stderr, code = e.run("backfills", "cancel")
	wantExit(t, code, stderr, 2)
}

func TestRunsListBackfillFilters(t *testing.T) {
	e := newBackfillEnv(t)
	e.k.WaitRun("churn", e.trigger("churn", "2026-01-04T02:00:00Z", nil).RunID, store.RunSuccess)
	e.k.WaitRun("churn", e.trigger("churn", "2026-01-05T02:00:00Z", nil).RunID, store.RunFailed)
	e.run("backfill", "churn", "--from", "2026-01-04", "--to", "2026-01-06", "--reprocess", "failed")

	stdout, stderr, code := e.run("runs", "list", "churn", "--backfill", "bf-1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var raw []json.RawMessage
	json.Unmarshal([]byte(stdout), &raw)
	wantKeys := append(slices.Clone(specRunKeys), "backfill_id")
	slices.Sort(wantKeys)
	var ids []string
	for _, r := range raw {
		if got := jsonKeys(t, r); !slices.Equal(got, wantKeys) {
			t.Errorf("keys of a backfill's run = %v, want %v", got, wantKeys)
		}
		var run ui.Run
		json.Unmarshal(r, &run)
		if run.BackfillID != "bf-1" {
			t.Errorf("%s: backfill_id %q", run.RunID, run.BackfillID)
		}
		ids = append(ids, run.RunID)
	}
	if want := []string{"backfill__2026-01-06T02:00:00Z", "manual__2026-01-05T02:00:00Z"}; !slices.Equal(ids, want) {
		t.Errorf("--backfill bf-1: %v, want %v", ids, want)
	}

	stdout, _, code = e.run("runs", "list", "--run-type", "backfill", "--backfill", "bf-1", "--json")
	var runs []ui.Run
	json.Unmarshal([]byte(stdout), &runs)
	if code != 0 || len(runs) != 1 || runs[0].RunID != "backfill__2026-01-06T02:00:00Z" {
		t.Errorf("--run-type backfill --backfill bf-1: exit %d, %s", code, stdout)
	}
	stdout, _, _ = e.run("runs", "list", "churn", "--run-type", "manual", "--json")
	json.Unmarshal([]byte(stdout), &runs)
	if len(runs) != 2 {
		t.Errorf("--run-type manual: %d runs, want 2", len(runs))
	}
	_, stderr, code = e.run("runs", "list", "--run-type", "cron")
	wantExit(t, code, stderr, 2, "--run-type", "cron")
}

// failingDailyDAG makes a scheduled run a day from the 1st to the 6th of
// January 2026 as soon as it is loaded; train fails in every one, so
// report never runs.
const failingDailyDAG = `
id: churn
schedule: "0 3 * * *"
timezone: Europe/Berlin
start_date: 2026-01-01
end_date: 2026-01-07
catchup: true
tasks:
  - {id: extract, plugin: shell, with: {command: "true"}}
  - {id: train, plugin: shell, depends_on: [extract], with: {command: "exit 1"}}
  - {id: report, plugin: shell, depends_on: [train], with: {command: "true"}}
`

func TestTasksClearRange(t *testing.T) {
	prev := runPageSize
	runPageSize = 2 // pages through the runs
	t.Cleanup(func() { runPageSize = prev })
	e := &cliEnv{t: t, k: kilntest.New(t, failingDailyDAG)}
	e.serve()
	runID := func(day int) string { return "scheduled__" + churnDay(day).Format(time.RFC3339) }
	for day := 1; day <= 6; day++ {
		e.k.WaitRun("churn", runID(day), store.RunFailed)
	}
	// Logical dates at 03:00 in Berlin: --to 2026-01-04 takes in the
	// whole 4th.
	stdout, stderr, code := e.run("tasks", "clear", "churn", "--from", "2026-01-02", "--to", "2026-01-04", "--only-failed", "--downstream")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `cleared 2 task instance(s) of run scheduled__2026-01-02T02:00:00Z: train, report
cleared 2 task instance(s) of run scheduled__2026-01-03T02:00:00Z: train, report
cleared 2 task instance(s) of run scheduled__2026-01-04T02:00:00Z: train, report
cleared 6 task instance(s) in 3 of 3 run(s) of DAG churn with a logical date in 2026-01-01T23:00:00Z .. 2026-01-04T22:59:59Z
`
	if diff := cmp.Diff(want, stdout); diff != "" {
		t.Errorf("stdout (-want +got):\n%s", diff)
	}
	// The cleared runs ran train again; the others did not.
	for day := 1; day <= 6; day++ {
		e.k.WaitRun("churn", runID(day), store.RunFailed)
		tries, _ := e.k.Store().Tries("churn", runID(day), "train")
		want := 1
		if day >= 2 && day <= 4 {
			want = 2
		}
		if len(tries) != want {
			t.Errorf("day %d: train tried %d time(s), want %d", day, len(tries), want)
		}
	}

	// An open range, RFC 3339 bounds.
	stdout, _, code = e.run("tasks", "clear", "churn", "--from", "2026-01-05T02:00:00Z")
	if code != 0 || !strings.Contains(stdout, "in 2 of 2 run(s)") || strings.Contains(stdout, "2026-01-04T02") {
		t.Errorf("--from only: exit %d\n%s", code, stdout)
	}
	stdout, _, code = e.run("tasks", "clear", "churn", "--from", "2026-01-20", "--to", "2026-01-21")
	if code != 0 || !strings.HasPrefix(stdout, "no runs of DAG churn with a logical date in") {
		t.Errorf("empty range: exit %d, %q", code, stdout)
	}

	_, stderr, code = e.run("tasks", "clear", "churn", "--run", "scheduled__2026-01-02T02:00:00Z", "--from", "2026-01-02")
	wantExit(t, code, stderr, 2, "--run", "--from")
	_, stderr, code = e.run("tasks", "clear", "churn", "--from", "2026-01-05", "--to", "2026-01-02")
	wantExit(t, code, stderr, 2, "after")
	_, stderr, code = e.run("tasks", "clear", "churn", "--to", "soon")
	wantExit(t, code, stderr, 2, "--to", "soon")
	_, stderr, code = e.run("tasks", "clear", "nope", "--from", "2026-01-02")
	wantExit(t, code, stderr, 1, "nope")
}

func TestBackfillCommandsHelp(t *testing.T) {
	for _, args := range [][]string{
		{"backfill"}, {"backfills"}, {"backfills", "list"}, {"backfills", "show"}, {"backfills", "cancel"},
	} {
		stdout, stderr, code := runCLI(t, append(args, "-h")...)
		if code != 0 || !strings.Contains(stdout, "Usage:") || stderr != "" {
			t.Errorf("%s -h: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}
