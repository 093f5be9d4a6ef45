package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// logsDAG's train fails its first try and succeeds its second, each
// saying which it is.
const logsDAG = `
id: logs
tasks:
  - id: train
    plugin: shell
    retries: 1
    retry_delay: 0s
    with: {command: "if [ {{ .try_number }} = 1 ]; then echo try one; exit 1; fi; printf 'try two\\nno newline at the end'"}
`

// ranTry is the first line of the log of logsDAG's try n: the shell stage
// logs the command it runs.
func ranTry(n int) string {
	return fmt.Sprintf("kiln: running: if [ %d = 1 ]; then echo try one; exit 1; fi; printf 'try two\\nno newline at the end'\n", n)
}

func TestTasksLogs(t *testing.T) {
	e := newCLIEnv(t, logsDAG)
	r := e.trigger("logs", "2026-01-05T02:00:00Z", nil)
	e.k.WaitRun("logs", r.RunID, store.RunSuccess)

	logs := func(extra ...string) (string, string, int) {
		return e.run(append([]string{"tasks", "logs", "logs", "--run", r.RunID, "--task", "train"}, extra...)...)
	}
	if stdout, stderr, code := logs(); code != 0 || stdout != ranTry(2)+"try two\nno newline at the end" {
		t.Errorf("latest: exit %d, %q %q", code, stdout, stderr)
	}
	// The worker notes how a failed try ended.
	if stdout, _, code := logs("--try", "1"); code != 0 || stdout != ranTry(1)+"try one\nkiln: exit status 1\n" {
		t.Errorf("--try 1: exit %d, %q", code, stdout)
	}
	_, stderr, code := logs("--try", "0")
	wantExit(t, code, stderr, 2, "--try")
	_, stderr, code = logs("--try", "3")
	wantExit(t, code, stderr, 1, "try 3")
	_, stderr, code = e.run("tasks", "logs", "logs", "--run", r.RunID, "--task", "nope")
	wantExit(t, code, stderr, 1, "nope")
	_, stderr, code = e.run("tasks", "logs", "logs", "--run", r.RunID)
	wantExit(t, code, stderr, 2, "task")

	// --follow of tries that ended: the whole log, then the exit code says
	// how the try ended.
	if stdout, stderr, code := logs("--follow"); code != 0 || stdout != ranTry(2)+"try two\nno newline at the end" {
		t.Errorf("follow a success: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, stderr, code := logs("--follow", "--try", "1")
	wantExit(t, code, stderr, 1, "try 1 of task train ended failed")
	if stdout != ranTry(1)+"try one\nkiln: exit status 1\n" {
		t.Errorf("follow a failure: stdout %q", stdout)
	}

	// --timestamps: each line starts with its receive time, read whole or
	// followed.
	stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ kiln: running: .*\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ try two\n\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ no newline at the end$`)
	for _, extra := range [][]string{{"--timestamps"}, {"--timestamps", "--follow"}} {
		if stdout, stderr, code := logs(extra...); code != 0 || !stamped.MatchString(stdout) {
			t.Errorf("%v: exit %d, %q %q", extra, code, stdout, stderr)
		}
	}
}

// liveDAG's task logs a line, holds at the gate "more", then logs two.
const liveDAG = `
id: live
tasks: [{id: extract, plugin: shell, with: {command: "echo started; read gate < gates/more; echo working; echo done"}}]
`

func TestTasksLogsFollowLive(t *testing.T) {
	e := newCLIEnv(t, liveDAG)
	more := e.k.Gate("more")
	r := e.trigger("live", "2026-01-05T02:00:00Z", nil)
	e.k.WaitLog(wire.TryKey{DAGID: "live", RunID: r.RunID, TaskID: "extract", Try: 1}, "started\n")

	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		stdout, stderr, code := runCLI(t, "tasks", "logs", "live", "--run", r.RunID, "--task", "extract", "--follow")
		done <- result{stdout, stderr, code}
	}()
	// The log grows and the try ends while the command follows it; it
	// must end on its own once the try has. As the scheduler does it (the
	// worker reports the try's end once the task has exited), the log is
	// whole before the try's end is committed.
	e.waitRequest("GET /api/v1/dags/live/runs/" + r.RunID + "/tasks/extract/logs")
	more.Open()
	res := <-done
	if res.code != 0 || res.stdout != "kiln: running: echo started; read gate < gates/more; echo working; echo done\nstarted\nworking\ndone\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestTasksClear(t *testing.T) {
	e := newCLIEnv(t)
	// A run of region us fails: train failed, report upstream_failed.
	r := e.trigger("churn", "2026-01-05T02:00:00Z", map[string]any{"region": "us"})
	e.k.WaitRun("churn", r.RunID, store.RunFailed)
	stdout, stderr, code := e.run("tasks", "clear", "churn", "--run", r.RunID, "--task", "extract", "--downstream", "--only-failed")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if strings.TrimSpace(stdout) != "cleared 2 task instance(s) of run "+r.RunID+": train, report" {
		t.Errorf("stdout = %q", stdout)
	}
	// train runs again, and fails again.
	e.k.WaitRun("churn", r.RunID, store.RunFailed)
	if tries, _ := e.k.Store().Tries("churn", r.RunID, "train"); len(tries) != 6 {
		t.Errorf("train tried %d times, want 6: twice three tries", len(tries))
	}
	stdout, _, _ = e.run("tasks", "clear", "churn", "--run", r.RunID, "--task", "extract", "--only-failed")
	if strings.TrimSpace(stdout) != "nothing to clear in run "+r.RunID {
		t.Errorf("stdout = %q", stdout)
	}
	stdout, _, code = e.run("tasks", "clear", "churn", "--run", r.RunID)
	if code != 0 || strings.TrimSpace(stdout) != "cleared 3 task instance(s) of run "+r.RunID+": extract, train, report" {
		t.Errorf("clear all: exit %d, %q", code, stdout)
	}
	e.k.WaitRun("churn", r.RunID, store.RunFailed)
	_, stderr, code = e.run("tasks", "clear", "churn", "--run", r.RunID, "--task", "nope")
	wantExit(t, code, stderr, 2, "nope")
	_, stderr, code = e.run("tasks", "clear", "churn", "--run", "manual__nope")
	wantExit(t, code, stderr, 1, "manual__nope")
	_, stderr, code = e.run("tasks", "clear", "churn")
	wantExit(t, code, stderr, 2, "run")
}
