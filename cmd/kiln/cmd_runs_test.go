package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// nightlyDAG catches up on the first four days of 2026 as soon as it is
// loaded; the run of the 2nd fails.
const nightlyDAG = `
id: nightly
schedule: "@daily"
start_date: 2026-01-01
end_date: 2026-01-04
catchup: true
tasks: [{id: load, plugin: shell, with: {command: "test {{ .ds }} != 2026-01-02"}}]
`

func TestRunsList(t *testing.T) {
	e := newCLIEnv(t, nightlyDAG)
	for day := 1; day <= 4; day++ {
		e.k.WaitRun("nightly", fmt.Sprintf("scheduled__2026-01-%02dT00:00:00Z", day))
	}
	stdout, stderr, code := e.run("trigger", "needs", "--param", "n=1", "--json")
	if code != 0 {
		t.Fatalf("trigger: exit %d: %s", code, stderr)
	}
	e.k.WaitRun("needs", checkRunJSON(t, []byte(stdout)).RunID, store.RunSuccess)

	stdout, stderr, code = e.run("runs", "list", "nightly", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	var ids []string
	for _, r := range raw {
		ids = append(ids, checkRunJSON(t, r).RunID)
	}
	want := "scheduled__2026-01-04T00:00:00Z scheduled__2026-01-03T00:00:00Z scheduled__2026-01-02T00:00:00Z scheduled__2026-01-01T00:00:00Z"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("runs = %s\nwant %s (newest first)", got, want)
	}

	stdout, _, _ = e.run("runs", "list", "nightly", "--state", "failed", "--json")
	var runs []ui.Run
	json.Unmarshal([]byte(stdout), &runs)
	if len(runs) != 1 || runs[0].State != store.RunFailed {
		t.Errorf("--state failed: %s", stdout)
	}

	// Without a DAG: the runs of every DAG, as a table.
	stdout, stderr, code = e.run("runs", "list", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 {
		t.Fatalf("exit %d, table:\n%s", code, stdout)
	}
	if h := strings.Join(strings.Fields(lines[0]), " "); h != "DAG RUN ID TYPE STATE LOGICAL DATE START END" {
		t.Errorf("header = %q", h)
	}
	if f := strings.Fields(lines[1]); f[0] != "needs" || f[2] != "manual" || f[3] != "success" || f[5] == "-" || f[6] == "-" {
		t.Errorf("first row = %q, want the manual run of needs, succeeded, with its start and end", lines[1])
	}
	if !strings.Contains(stderr, "2 of 5") {
		t.Errorf("stderr = %q, want a note that 2 of 5 runs are shown", stderr)
	}

	_, stderr, code = e.run("runs", "list", "--state", "done")
	wantExit(t, code, stderr, 2, "--state", "done")
	_, stderr, code = e.run("runs", "list", "--limit", "0")
	wantExit(t, code, stderr, 2, "--limit")
	_, stderr, code = e.run("runs", "list", "nope")
	wantExit(t, code, stderr, 1, `DAG "nope" not found`)
	_, stderr, code = e.run("runs", "list", "a", "b")
	wantExit(t, code, stderr, 2)
}

func TestRunsShow(t *testing.T) {
	e := newCLIEnv(t)
	e.k.Gate("train")
	r := e.trigger("churn", "2026-01-05T02:00:00Z", nil)
	e.k.WaitTask("churn", r.RunID, "train", store.TaskRunning)
	stdout, stderr, code := e.run("runs", "show", r.RunID, "--dag", "churn", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	run := checkRunJSON(t, []byte(stdout))
	if run.RunID != r.RunID || len(run.Tasks) != 3 || run.Tasks[0].TaskID != "extract" {
		t.Errorf("run = %+v", run)
	}

	stdout, _, code = e.run("runs", "show", r.RunID, "--dag", "churn")
	for _, want := range []string{"Run:", r.RunID, "running", "TASK", "extract", "none", `"region":"eu"`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show does not mention %q:\n%s", want, stdout)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}

	// Without --dag: the one DAG that has the run.
	if stdout, stderr, code := e.run("runs", "show", r.RunID, "--json"); code != 0 || !strings.Contains(stdout, `"dag_id": "churn"`) {
		t.Errorf("runs show without --dag: exit %d, %q %q", code, stdout, stderr)
	}
	_, stderr, code = e.run("runs", "show", "manual__nope", "--dag", "churn")
	wantExit(t, code, stderr, 1, "manual__nope")
}

func TestRunsMark(t *testing.T) {
	e := newCLIEnv(t)
	e.k.Gate("train")
	r := e.trigger("churn", "2026-01-01T02:00:00Z", nil)
	e.k.WaitTask("churn", r.RunID, "train", store.TaskRunning)

	stdout, stderr, code := e.run("runs", "mark", r.RunID, "--dag", "churn", "--task", "train", "--state", "failed")
	if code != 0 || !strings.Contains(stdout, "marked task train of run "+r.RunID+" failed") {
		t.Fatalf("mark a task: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	stdout, stderr, code = e.run("runs", "mark", r.RunID, "--dag", "churn", "--state", "success")
	if code != 0 || !strings.Contains(stdout, "marked run "+r.RunID+" of DAG churn success; it is now success") {
		t.Fatalf("mark the run: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	tis, err := e.k.Store().TaskInstances("churn", r.RunID)
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range tis {
		if ti.State != store.TaskSuccess {
			t.Errorf("%s = %s after marking the run success", ti.TaskID, ti.State)
		}
	}
	if tr, err := e.k.Store().GetTry("churn", r.RunID, "train", 1); err != nil || tr.State != store.TaskFailed || !strings.Contains(tr.Error, "marked failed by hand") {
		t.Errorf("train's try = %+v, %v; want stopped by the mark", tr, err)
	}

	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"runs", "mark", r.RunID, "--dag", "churn", "--state", "done"}, 2, `--state "done": want success or failed`},
		{[]string{"runs", "mark", r.RunID, "--state", "success"}, 2, `"dag" not set`},
		{[]string{"runs", "mark", "nope", "--dag", "churn", "--state", "failed"}, 1, "not found"},
	} {
		_, stderr, code := e.run(tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tt.args, code, stderr, tt.code, tt.want)
		}
	}
}

// failingDAG's task prints twelve lines, then fails.
const failingDAG = `
id: failing
tasks: [{id: boom, plugin: shell, with: {command: 'for i in $(seq 1 12); do echo "line $i"; done; exit 3'}}]
`

// TestRunsShowFailedTask: a failed task comes with its error and the last
// lines of its log.
func TestRunsShowFailedTask(t *testing.T) {
	e := newCLIEnv(t, failingDAG)
	r := e.trigger("failing", "2026-01-05T02:00:00Z", nil)
	e.k.WaitRun("failing", r.RunID, store.RunFailed)
	stdout, stderr, code := e.run("runs", "show", r.RunID, "--dag", "failing")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := "\nboom failed (try 1): exit status 3\n" +
		"  | line 4\n  | line 5\n  | line 6\n  | line 7\n  | line 8\n  | line 9\n  | line 10\n  | line 11\n  | line 12\n  | kiln: exit status 3\n"
	if !strings.HasSuffix(stdout, want) {
		t.Errorf("show ends\n%s\nwant it to end\n%s", stdout, want)
	}
	// --json prints the run as the API has it, nothing more.
	stdout, _, _ = e.run("runs", "show", r.RunID, "--dag", "failing", "--json")
	checkRunJSON(t, []byte(stdout))
}
