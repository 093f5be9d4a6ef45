package main

import (
	"github.com/kilnhq/kiln/scheduler"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// putTries records tries 1..n of task in run, each in the given state.
func putTries(e *cliEnv, r *store.Run, task string, states ...store.TaskState) {
	e.b.Commit(func(batch *store.Batch) {
		last := states[len(states)-1]
		batch.PutTaskInstance(&store.TaskInstance{DAGID: r.DAGID, RunID: r.RunID, TaskID: task, State: last, TryNumber: len(states), MaxTries: 3})
		for i, st := range states {
			batch.PutTry(&store.Try{DAGID: r.DAGID, RunID: r.RunID, TaskID: task, Number: i + 1, State: st})
		}
	})
}

func TestTasksLogs(t *testing.T) {
	e := newCLIEnv(t)
	r := putChurnRun(e.b, 5, store.RunRunning)
	putTries(e, r, "train", store.TaskFailed, store.TaskSuccess)
	key := func(n int) wire.TryKey { return wire.TryKey{DAGID: "churn", RunID: r.RunID, TaskID: "train", Try: n} }
	e.b.AppendLog(key(1), "try one\n")
	e.b.AppendLog(key(2), "try two\nno newline at the end")

	logs := func(extra ...string) (string, string, int) {
		return e.run(append([]string{"tasks", "logs", "churn", "--run", r.RunID, "--task", "train"}, extra...)...)
	}
	if stdout, stderr, code := logs(); code != 0 || stdout != "try two\nno newline at the end" {
		t.Errorf("latest: exit %d, %q %q", code, stdout, stderr)
	}
	if stdout, _, code := logs("--try", "1"); code != 0 || stdout != "try one\n" {
		t.Errorf("--try 1: exit %d, %q", code, stdout)
	}
	_, stderr, code := logs("--try", "0")
	wantExit(t, code, stderr, 2, "--try")
	_, stderr, code = logs("--try", "3")
	wantExit(t, code, stderr, 1, "try 3")
	_, stderr, code = e.run("tasks", "logs", "churn", "--run", r.RunID, "--task", "nope")
	wantExit(t, code, stderr, 1, "nope")
	_, stderr, code = e.run("tasks", "logs", "churn", "--run", r.RunID)
	wantExit(t, code, stderr, 2, "task")

	// --follow of tries that ended: the whole log, then the exit code says
	// how the try ended.
	e.b.FinishTry(key(1))
	e.b.FinishTry(key(2))
	if stdout, stderr, code := logs("--follow"); code != 0 || stdout != "try two\nno newline at the end" {
		t.Errorf("follow a success: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, stderr, code := logs("--follow", "--try", "1")
	wantExit(t, code, stderr, 1, "try 1 of task train ended failed")
	if stdout != "try one\n" {
		t.Errorf("follow a failure: stdout %q", stdout)
	}
}

func TestTasksLogsFollowLive(t *testing.T) {
	e := newCLIEnv(t)
	r := putChurnRun(e.b, 5, store.RunRunning)
	putTries(e, r, "extract", store.TaskRunning)
	k := wire.TryKey{DAGID: "churn", RunID: r.RunID, TaskID: "extract", Try: 1}
	e.b.AppendLog(k, "started\n")

	type result struct {
		stdout, stderr string
		code           int
	}
	done := make(chan result, 1)
	go func() {
		stdout, stderr, code := runCLI(t, "tasks", "logs", "churn", "--run", r.RunID, "--task", "extract", "--follow")
		done <- result{stdout, stderr, code}
	}()
	// The log grows and the try ends while the command follows it; it
	// must end on its own once the try has. As the scheduler does it, the
	// log is whole before the try's end is committed.
	e.b.AppendLog(k, "working\n")
	e.b.AppendLog(k, "done\n")
	putTries(e, r, "extract", store.TaskSuccess)
	res := <-done
	if res.code != 0 || res.stdout != "started\nworking\ndone\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
}

func TestTasksClear(t *testing.T) {
	e := newCLIEnv(t)
	r := putChurnRun(e.b, 5, store.RunFailed)
	stdout, stderr, code := e.run("tasks", "clear", "churn", "--run", r.RunID, "--task", "train", "--task", "report", "--downstream", "--only-failed")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if diff := cmp.Diff(scheduler.ClearRequest{Tasks: []string{"train", "report"}, Downstream: true, OnlyFailed: true}, e.b.Clears[0]); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	if strings.TrimSpace(stdout) != "nothing to clear in run "+r.RunID {
		t.Errorf("stdout = %q", stdout)
	}
	stdout, _, code = e.run("tasks", "clear", "churn", "--run", r.RunID)
	if code != 0 || strings.TrimSpace(stdout) != "cleared 3 task instance(s) of run "+r.RunID+": extract, report, train" {
		t.Errorf("clear all: exit %d, %q", code, stdout)
	}
	_, stderr, code = e.run("tasks", "clear", "churn", "--run", r.RunID, "--task", "nope")
	wantExit(t, code, stderr, 2, "nope")
	_, stderr, code = e.run("tasks", "clear", "churn", "--run", "manual__nope")
	wantExit(t, code, stderr, 1, "manual__nope")
	_, stderr, code = e.run("tasks", "clear", "churn")
	wantExit(t, code, stderr, 2, "run")
}
