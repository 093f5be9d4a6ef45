package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

func tryKey(r *store.Run, task string, try int) wire.TryKey {
	return wire.TryKey{DAGID: r.DAGID, RunID: r.RunID, TaskID: task, Try: try}
}

func TestE2EOutputsReachDownstream(t *testing.T) {
	e := start(t, map[string]string{"outs": `
params: {region: {type: string, default: eu}}
tasks:
  - id: extract
    plugin: shell
    with: {command: 'echo "extracting for $KILN_DS"; echo rows=42 >> "$KILN_OUTPUT"; echo "region=$REGION" >> "$KILN_OUTPUT"'}
    env: {REGION: "{{ .params.region }}"}
  - id: report
    depends_on: [extract]
    plugin: shell
    with: {command: 'echo "rows {{ .outputs.extract.rows }} in {{ .outputs.extract.region }} try $KILN_TRY_NUMBER"'}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("outs", map[string]any{"region": "us"}), 20*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run %s, want success; tasks %v; logs: %q %q", r.State, e.taskStates(r), e.log(r, "extract", 1), e.log(r, "report", 1))
	}
	if got := e.log(r, "report", 1); !strings.Contains(got, "rows 42 in us try 1") {
		t.Errorf("report log = %q, want the upstream outputs", got)
	}
	if got := e.log(r, "extract", 1); !strings.Contains(got, "extracting for "+r.LogicalDate.Format(time.DateOnly)) {
		t.Errorf("extract log = %q", got)
	}
	ti, err := e.st.GetTaskInstance("outs", r.RunID, "extract")
	if err != nil || fmt.Sprint(ti.Outputs["rows"]) != "42" {
		t.Errorf("stored outputs = %v (%v)", ti.Outputs, err)
	}
}

func TestE2ETriggerRules(t *testing.T) {
	rules := []struct {
		rule string
		want store.TaskState
	}{
		{"all_success", store.TaskUpstreamFailed},
		{"all_failed", store.TaskSkipped},
		{"all_done", store.TaskSuccess},
		{"all_done_min_one_success", store.TaskSuccess},
		{"all_skipped", store.TaskSkipped},
		{"one_success", store.TaskSuccess},
		{"one_failed", store.TaskSuccess},
		{"one_done", store.TaskSuccess},
		{"none_failed", store.TaskUpstreamFailed},
		{"none_failed_min_one_success", store.TaskUpstreamFailed},
		{"none_skipped", store.TaskSuccess},
		{"always", store.TaskSuccess},
	}
	var b strings.Builder
	b.WriteString("tasks:\n  - {id: ok, plugin: shell, with: {command: 'true'}}\n  - {id: bad, plugin: shell, with: {command: 'exit 3'}}\n")
	for _, r := range rules {
		fmt.Fprintf(&b, "  - {id: r_%s, plugin: shell, with: {command: 'true'}, depends_on: [ok, bad], trigger_rule: %s}\n", r.rule, r.rule)
	}
	// Skipped upstreams: a gate that is always false.
	b.WriteString("  - {id: skipper, plugin: shell, with: {command: 'true'}, when: 'false'}\n")
	b.WriteString("  - {id: s_all_skipped, plugin: shell, with: {command: 'true'}, depends_on: [skipper], trigger_rule: all_skipped}\n")
	b.WriteString("  - {id: s_none_skipped, plugin: shell, with: {command: 'true'}, depends_on: [skipper, ok], trigger_rule: none_skipped}\n")
	e := start(t, map[string]string{"rules": b.String()}, options{workers: 1})
	r := e.waitRun(e.trigger("rules", nil), 30*time.Second)
	got := e.taskStates(r)
	for _, rr := range rules {
		if got["r_"+rr.rule] != rr.want {
			t.Errorf("%s with upstreams [success, failed]: %s, want %s", rr.rule, got["r_"+rr.rule], rr.want)
		}
	}
	if got["bad"] != store.TaskFailed || got["skipper"] != store.TaskSkipped {
		t.Errorf("bad = %s, skipper = %s", got["bad"], got["skipper"])
	}
	if got["s_all_skipped"] != store.TaskSuccess || got["s_none_skipped"] != store.TaskSkipped {
		t.Errorf("all_skipped over skipped = %s (want success), none_skipped = %s (want skipped)", got["s_all_skipped"], got["s_none_skipped"])
	}
	if r.State != store.RunFailed {
		t.Errorf("run = %s, want failed", r.State)
	}
	tr, err := e.st.GetTry("rules", r.RunID, "bad", 1)
	if err != nil || tr.ExitCode == nil || *tr.ExitCode != 3 {
		t.Errorf("bad's try = %+v (%v), want exit code 3", tr, err)
	}
}

func TestE2ERetriesReachTry3(t *testing.T) {
	e := start(t, map[string]string{"flaky": `
tasks:
  - {id: flaky, plugin: shell, with: {command: 'echo "try $KILN_TRY_NUMBER"; exit 1'}, retries: 2, retry_delay: 100ms}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("flaky", nil), 20*time.Second)
	tries, err := e.st.Tries("flaky", r.RunID, "flaky")
	if err != nil || len(tries) != 3 {
		t.Fatalf("tries = %d (%v), want 3", len(tries), err)
	}
	for i, tr := range tries {
		if tr.Number != i+1 || tr.State != store.TaskFailed {
			t.Errorf("try %d: number %d state %s", i+1, tr.Number, tr.State)
		}
		if got := e.log(r, "flaky", i+1); !strings.Contains(got, fmt.Sprintf("try %d", i+1)) {
			t.Errorf("log of try %d = %q", i+1, got)
		}
	}
	if gap := tries[1].QueuedAt.Sub(*tries[0].EndDate); gap < 100*time.Millisecond {
		t.Errorf("try 2 queued %s after try 1 ended, want at least retry_delay", gap)
	}
	if r.State != store.RunFailed {
		t.Errorf("run = %s, want failed", r.State)
	}
}

func TestE2ETimeoutKillsSleep(t *testing.T) {
	e := start(t, map[string]string{"slow": `
tasks:
  - {id: nap, plugin: shell, with: {command: 'sleep 29.0417 & sleep 29.0417'}, timeout: 1s}
`}, options{workers: 1})
	began := time.Now()
	r := e.waitRun(e.trigger("slow", nil), 20*time.Second)
	if took := time.Since(began); took > 10*time.Second {
		t.Errorf("the timed-out run took %s", took)
	}
	tr, err := e.st.GetTry("slow", r.RunID, "nap", 1)
	if err != nil || tr.State != store.TaskFailed || !strings.Contains(tr.Error, "timed out") {
		t.Fatalf("try = %+v (%v), want failed with a timeout", tr, err)
	}
	// Both sleeps, in the shell's process group, are gone (the plugin
	// kills the group as the try ends; allow it a moment).
	e.waitFor("the sleeps to be killed", 5*time.Second, func() bool { return pgrep("sleep 29.0417") == "" })
}

func TestE2EWhenSkipCascades(t *testing.T) {
	e := start(t, map[string]string{"gated": `
params: {enabled: {type: boolean, default: false}}
tasks:
  - {id: a, plugin: shell, with: {command: 'true'}}
  - {id: gate, plugin: shell, with: {command: 'true'}, depends_on: [a], when: params.enabled}
  - {id: b, plugin: shell, with: {command: 'true'}, depends_on: [gate]}
  - {id: c, plugin: shell, with: {command: 'true'}, depends_on: [b]}
  - {id: always, plugin: shell, with: {command: 'true'}, depends_on: [c], trigger_rule: all_done}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("gated", nil), 20*time.Second)
	want := map[string]store.TaskState{"a": store.TaskSuccess, "gate": store.TaskSkipped, "b": store.TaskSkipped, "c": store.TaskSkipped, "always": store.TaskSuccess}
	if got := e.taskStates(r); fmt.Sprint(got) != fmt.Sprint(want) || r.State != store.RunSuccess {
		t.Errorf("states %v run %s; want %v and success", got, r.State, want)
	}
	r2 := e.waitRun(e.trigger("gated", map[string]any{"enabled": true}), 20*time.Second)
	if got := e.taskStates(r2)["c"]; got != store.TaskSuccess {
		t.Errorf("with enabled=true, c = %s", got)
	}
}

func TestE2ECatchupCreatesEndedIntervals(t *testing.T) {
	from := time.Now().Add(-5*time.Hour - 30*time.Minute).UTC().Truncate(time.Second)
	e := start(t, map[string]string{"hourly": fmt.Sprintf(`
schedule: "@every 1h"
start_date: %s
catchup: true
tasks: [{id: a, plugin: shell, with: {command: 'true'}}]
`, from.Format(time.RFC3339))}, options{workers: 1})
	var runs []*store.Run
	e.waitFor("5 runs to succeed", 30*time.Second, func() bool {
		var err error
		runs, _, err = e.st.ListRuns(store.RunQuery{DAGID: "hourly", State: store.RunSuccess})
		return err == nil && len(runs) == 5
	})
	// A run's end asks the next cron pass to look at the DAG again; once a
	// turn that began after the last end was committed has run, a sixth
	// run would be stored.
	e.sync()
	all, total, _ := e.st.ListRuns(store.RunQuery{DAGID: "hourly"})
	if total != 5 {
		t.Fatalf("%d runs, want exactly the 5 ended intervals", total)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].LogicalDate.Before(all[j].LogicalDate) })
	for i, r := range all {
		want := from.Add(time.Duration(i) * time.Hour)
		if !r.LogicalDate.Equal(want) || !r.DataIntervalEnd.Equal(want.Add(time.Hour)) || r.RunID != "scheduled__"+want.Format(time.RFC3339) {
			t.Errorf("run %d: %s [%s, %s), want logical date %s", i, r.RunID, r.DataIntervalStart, r.DataIntervalEnd, want)
		}
	}
}

func TestE2EDuplicateLogicalDateRefused(t *testing.T) {
	e := start(t, map[string]string{"dup": "tasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n"}, options{})
	ld := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	r, err := e.s.Trigger(context.Background(), "dup", scheduler.TriggerRequest{LogicalDate: &ld})
	if err != nil || r.RunID != "manual__2026-01-02T03:00:00Z" {
		t.Fatalf("first trigger: %+v, %v", r, err)
	}
	_, err = e.s.Trigger(context.Background(), "dup", scheduler.TriggerRequest{LogicalDate: &ld})
	if !errors.Is(err, scheduler.ErrConflict) {
		t.Errorf("second trigger for the same date: %v, want ErrConflict", err)
	}
	if _, total, _ := e.st.ListRuns(store.RunQuery{DAGID: "dup"}); total != 1 {
		t.Errorf("%d runs stored, want 1", total)
	}
}

func TestE2EPoolOfTwoNeverRunsThree(t *testing.T) {
	var b strings.Builder
	b.WriteString("tasks:\n")
	for i := range 6 {
		fmt.Fprintf(&b, "  - {id: t%d, plugin: shell, pool: pair, with: {command: 'sleep 0.3'}}\n", i)
	}
	e := start(t, map[string]string{"pooled": b.String()}, options{workers: 1, slots: 8})
	if err := e.s.SetPool(context.Background(), "pair", 2); err != nil {
		t.Fatal(err)
	}
	r := e.waitRun(e.trigger("pooled", nil), 30*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run %s", r.State)
	}
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for i := range 6 {
		tr, err := e.st.GetTry("pooled", r.RunID, fmt.Sprintf("t%d", i), 1)
		if err != nil || tr.StartDate == nil || tr.EndDate == nil {
			t.Fatalf("t%d try: %+v %v", i, tr, err)
		}
		edges = append(edges, edge{*tr.StartDate, 1}, edge{*tr.EndDate, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta
		}
		return edges[i].at.Before(edges[j].at)
	})
	running, peak := 0, 0
	for _, ed := range edges {
		running += ed.delta
		peak = max(peak, running)
	}
	if peak != 2 {
		t.Errorf("at most %d tasks ran at once in a pool of 2 slots, want exactly 2", peak)
	}
}

func TestE2EDependsOnPast(t *testing.T) {
	ready := filepath.Join(t.TempDir(), "ready")
	e := start(t, map[string]string{"past": fmt.Sprintf(`
max_active_runs: 2
tasks:
  - {id: load, plugin: shell, depends_on_past: true, with: {command: 'test -f %s'}}
`, ready)}, options{workers: 1})
	ld1, ld2 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	r1, err := e.s.Trigger(context.Background(), "past", scheduler.TriggerRequest{LogicalDate: &ld1})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.s.Trigger(context.Background(), "past", scheduler.TriggerRequest{LogicalDate: &ld2})
	if err != nil {
		t.Fatal(err)
	}
	if e.waitRun(r1, 20*time.Second).State != store.RunFailed {
		t.Fatal("the first run did not fail")
	}
	// Every turn's dispatch pass decides on the held task; one that began
	// after the first run's failure was committed has seen it.
	e.sync()
	if got := e.taskStates(r2)["load"]; got != store.TaskScheduled {
		t.Fatalf("second run's task = %s while the previous run's failed; want it held as scheduled", got)
	}
	// Fix the cause and re-run the first run: the second follows.
	if err := os.WriteFile(ready, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Clear(context.Background(), "past", r1.RunID, scheduler.ClearRequest{OnlyFailed: true}); err != nil {
		t.Fatal(err)
	}
	if got := e.waitRun(r2, 20*time.Second); got.State != store.RunSuccess {
		t.Fatalf("second run = %s", got.State)
	}
	r1 = e.waitRun(r1, 5*time.Second)
	t1, _ := e.st.GetTaskInstance("past", r1.RunID, "load")
	t2, _ := e.st.GetTaskInstance("past", r2.RunID, "load")
	if r1.State != store.RunSuccess || t1.TryNumber != 2 || !t2.StartDate.After(*t1.EndDate) && !t2.StartDate.Equal(*t1.EndDate) {
		t.Errorf("first run %s try %d ended %v; second started %v: want the second to start after the first succeeded", r1.State, t1.TryNumber, t1.EndDate, t2.StartDate)
	}
}

// pgrep lists the processes whose command line matches pattern.
func pgrep(pattern string) string {
	out, _ := osexec.Command("pgrep", "-f", pattern).Output()
	return strings.TrimSpace(string(out))
}

// TestClearStopsARunningTry clears a running task: as in Airflow, its try
// is stopped, recorded as cleared, and the task runs again.
func TestClearStopsARunningTry(t *testing.T) {
	e := start(t, map[string]string{"cleared": `
tasks:
  - id: long
    plugin: shell
    with: {command: 'echo "try $KILN_TRY_NUMBER"; if [ "$KILN_TRY_NUMBER" = 1 ]; then sleep 600; fi'}
`}, options{workers: 1})
	r := e.trigger("cleared", nil)
	e.waitFor("try 1 to run", 20*time.Second, func() bool { return strings.Contains(e.log(r, "long", 1), "try 1\n") })
	cleared, err := e.s.Clear(context.Background(), "cleared", r.RunID, scheduler.ClearRequest{Tasks: []string{"long"}})
	if err != nil || len(cleared) != 1 {
		t.Fatalf("clear: %v %v", cleared, err)
	}
	if r = e.waitRun(r, 20*time.Second); r.State != store.RunSuccess {
		t.Fatalf("run %s", r.State)
	}
	tries, err := e.st.Tries("cleared", r.RunID, "long")
	if err != nil || len(tries) != 2 {
		t.Fatalf("%d tries (%v), want 2", len(tries), err)
	}
	if tries[0].State != store.TaskFailed || tries[0].Error != "cleared by hand while running; this try was stopped" {
		t.Errorf("try 1: %s %q", tries[0].State, tries[0].Error)
	}
	if tries[1].State != store.TaskSuccess || !strings.Contains(e.log(r, "long", 2), "try 2\n") {
		t.Errorf("try 2: %s\n%s", tries[1].State, e.log(r, "long", 2))
	}
}
