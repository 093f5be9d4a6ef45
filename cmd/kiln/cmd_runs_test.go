package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func TestRunsList(t *testing.T) {
	e := newCLIEnv(t)
	for day := 1; day <= 4; day++ {
		state := store.RunSuccess
		if day == 2 {
			state = store.RunFailed
		}
		putChurnRun(e.b, day, state)
	}
	e.run("trigger", "needs", "--param", "n=1")

	stdout, stderr, code := e.run("runs", "list", "churn", "--json")
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
	want := "scheduled__2026-01-04T02:00:00Z scheduled__2026-01-03T02:00:00Z scheduled__2026-01-02T02:00:00Z scheduled__2026-01-01T02:00:00Z"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("runs = %s\nwant %s (newest first)", got, want)
	}

	stdout, _, _ = e.run("runs", "list", "churn", "--state", "failed", "--json")
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
	if f := strings.Fields(lines[1]); f[0] != "needs" || f[2] != "manual" || f[3] != "queued" || f[5] != "-" {
		t.Errorf("first row = %q, want the manual run of needs, queued, not started", lines[1])
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
	r := putChurnRun(e.b, 5, store.RunRunning)
	stdout, stderr, code := e.run("runs", "show", r.RunID, "--dag", "churn", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	run := checkRunJSON(t, []byte(stdout))
	if run.RunID != r.RunID || len(run.Tasks) != 3 || run.Tasks[0].TaskID != "extract" {
		t.Errorf("run = %+v", run)
	}

	stdout, _, code = e.run("runs", "show", r.RunID, "--dag", "churn")
	for _, want := range []string{"Run:", r.RunID, "running", "TASK", "extract", "none", `{"region":"eu"}`} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show does not mention %q:\n%s", want, stdout)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}

	_, stderr, code = e.run("runs", "show", r.RunID)
	wantExit(t, code, stderr, 2, "dag")
	_, stderr, code = e.run("runs", "show", "manual__nope", "--dag", "churn")
	wantExit(t, code, stderr, 1, "manual__nope")
}

func TestRunsMark(t *testing.T) {
	e := newCLIEnv(t)
	r := putChurnRun(e.b, 1, store.RunRunning)

	stdout, stderr, code := e.run("runs", "mark", r.RunID, "--dag", "churn", "--task", "train", "--state", "failed")
	if code != 0 || !strings.Contains(stdout, "marked task train of run "+r.RunID+" failed") {
		t.Fatalf("mark a task: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	stdout, stderr, code = e.run("runs", "mark", r.RunID, "--dag", "churn", "--state", "success")
	if code != 0 || !strings.Contains(stdout, "marked run "+r.RunID+" of DAG churn success; it is now success") {
		t.Fatalf("mark the run: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	want := []string{"churn " + r.RunID + " [train] failed", "churn " + r.RunID + " [] success"}
	var got []string
	for _, m := range e.b.Marks {
		got = append(got, fmt.Sprintf("%s %s %v %s", m.DAGID, m.RunID, m.Tasks, m.State))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("marks = %q, want %q", got, want)
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
