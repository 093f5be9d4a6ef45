package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
)

// fanoutDAG maps square over the 12 letters list writes; the instances of
// even index fail (six of them), and total runs whatever they did
// (docs/cli.md#mapped-tasks).
var fanoutDAG = kilntest.FanoutDAG(`'echo "item {{ .item }}"; [ $(( {{ .map_index }} % 2 )) = 1 ]'`, "all_done")

// TestRunsShowMapped: a mapped task's row says how many instances it has,
// and each instance has a row right under it, in index order; the logs of
// the first five failed instances follow, and a note counts the others.
func TestRunsShowMapped(t *testing.T) {
	e := newCLIEnv(t, fanoutDAG)
	r := e.trigger("fanout", "2026-01-05T02:00:00Z", nil)
	e.k.WaitRun("fanout", r.RunID, store.RunFailed)
	stdout, stderr, code := e.run("runs", "show", r.RunID, "--dag", "fanout")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The table of tasks ends where the failed tries' logs start.
	table := stdout[strings.Index(stdout, "TASK"):]
	table = table[:strings.Index(table, "\n\n")]
	rows := strings.Split(table, "\n")[1:]
	want := []string{"list success 1", "square failed (12 instances) -"}
	for i := range 12 {
		state := "success"
		if i%2 == 0 {
			state = "failed"
		}
		want = append(want, fmt.Sprintf("square[%d] %s 1", i, state))
	}
	want = append(want, "total success 1")
	if len(rows) != len(want) {
		t.Fatalf("%d task rows, want %d:\n%s", len(rows), len(want), stdout)
	}
	for i, row := range rows {
		if row = strings.Join(strings.Fields(row), " "); !strings.HasPrefix(row, want[i]+" ") {
			t.Errorf("row %d = %q, want it to start %q", i, row, want[i])
		}
	}
	for _, want := range []string{"\nsquare[0] failed (try 1): exit status 1\n", "  | item a\n", "\nsquare[8] failed (try 1)",
		"\nsquare: 1 more failed instance(s); kiln tasks logs fanout --run " + r.RunID + " --task square --map-index N reads one\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "square[10] failed (try") {
		t.Errorf("show prints the log of a sixth failed instance:\n%s", stdout)
	}
}

func TestTasksMapIndex(t *testing.T) {
	e := newCLIEnv(t, fanoutDAG)
	r := e.trigger("fanout", "2026-01-05T02:00:00Z", nil)
	e.k.WaitRun("fanout", r.RunID, store.RunFailed)
	task := []string{"--run", r.RunID, "--task", "square"}
	cmd := func(args ...string) (string, string, int) {
		return e.run(append(args, task...)...)
	}

	if stdout, stderr, code := cmd("tasks", "logs", "fanout", "--map-index", "3"); code != 0 || !strings.Contains(stdout, "item d\n") {
		t.Errorf("logs --map-index 3: exit %d, %q %q", code, stdout, stderr)
	}
	_, stderr, code := cmd("tasks", "logs", "fanout", "--map-index", "12")
	wantExit(t, code, stderr, 2, `task "square" has map indexes 0 to 11`)
	_, stderr, code = cmd("tasks", "logs", "fanout", "--map-index", "-1")
	wantExit(t, code, stderr, 2, "--map-index -1: map indexes count from 0")
	_, stderr, code = cmd("tasks", "logs", "fanout")
	wantExit(t, code, stderr, 1, "is mapped: its instances have the tries")
	_, stderr, code = cmd("tasks", "logs", "fanout", "--map-index", "2", "--follow")
	wantExit(t, code, stderr, 1, "try 1 of task square[2] ended failed")

	stdout, stderr, code := cmd("tasks", "show", "fanout", "--map-index", "3")
	if code != 0 || !regexp.MustCompile(`(?m)^Task:\s+square\[3\]$`).MatchString(stdout) {
		t.Errorf("show --map-index 3: exit %d\n%s%s", code, stdout, stderr)
	}

	// Clearing two instances runs them again, alone.
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"tasks", "clear", "fanout", "--run", r.RunID, "--map-index", "1"}, "give exactly one --task (0 given)"},
		{[]string{"tasks", "clear", "fanout", "--run", r.RunID, "--task", "square", "--task", "total", "--map-index", "1"}, "give exactly one --task (2 given)"},
		{[]string{"tasks", "clear", "fanout", "--from", "2026-01-01", "--task", "square", "--map-index", "1"}, "use it with --run"},
		{[]string{"tasks", "clear", "fanout", "--run", r.RunID, "--task", "square", "--map-index", "-2"}, "map indexes count from 0"},
		{[]string{"runs", "mark", r.RunID, "--dag", "fanout", "--state", "success", "--map-index", "1"}, "give --task"},
	} {
		_, stderr, code := e.run(tt.args...)
		wantExit(t, code, stderr, 2, tt.want)
	}
	stdout, stderr, code = cmd("tasks", "clear", "fanout", "--map-index", "1", "--map-index", "2")
	if code != 0 || stdout != "cleared 2 task instance(s) of run "+r.RunID+": square[1], square[2]\n" {
		t.Fatalf("clear two instances: exit %d, %q %q", code, stdout, stderr)
	}
	e.k.WaitRun("fanout", r.RunID, store.RunFailed)
	for key, want := range map[string]int{"square[1]": 2, "square[2]": 2, "square[3]": 1} {
		if ti, err := e.k.Store().GetTaskInstance("fanout", r.RunID, key); err != nil || ti.TryNumber != want {
			t.Errorf("%s: %+v (%v), want %d tries", key, ti, err, want)
		}
	}
	_, stderr, code = cmd("tasks", "clear", "fanout", "--map-index", "12")
	wantExit(t, code, stderr, 2, "map indexes 0 to 11 in this run, not 12")

	stdout, stderr, code = e.run("runs", "mark", r.RunID, "--dag", "fanout", "--task", "square", "--map-index", "0", "--state", "success")
	if code != 0 || stdout != "marked task square[0] of run "+r.RunID+" success\n" {
		t.Errorf("mark square[0]: exit %d, %q %q", code, stdout, stderr)
	}
}
