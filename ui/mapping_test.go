package ui_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// fanoutDAG maps square over the 12 letters list writes; square[2] (item
// "c") fails, and total runs whatever they did (docs/api.md#mapped-tasks).
// Twelve instances, so that square[10] sorts after square[2] only by
// index.
var fanoutDAG = kilntest.FanoutDAG(`'echo "item {{ .item }} at {{ .map_index }}"; [ {{ .map_index }} != 2 ]'`, "all_done")

// heldDAG maps after a task held at the gate "hold": its mapped task has
// not expanded while the test runs.
const heldDAG = `
id: held
tasks:
  - id: wait
    plugin: shell
    with: {command: 'read gate < gates/hold; echo "n=[1,2]" > "$KILN_OUTPUT"'}
  - id: each
    depends_on: [wait]
    map: outputs.wait.n
    plugin: shell
    with: {command: "true"}
`

// newFanoutRun starts a Kiln with fanoutDAG and heldDAG and its server
// (at root), and runs fanout to its end (failed, by square[2]). held's run
// waits.
func newFanoutRun(t *testing.T) (k *kilntest.Kiln, root, runID, heldRunID string) {
	t.Helper()
	k, srv := newAPI(t, fanoutDAG, heldDAG)
	k.Gate("hold")
	run := trigger(t, k, "fanout", "", nil)
	if r := k.WaitRun("fanout", run.RunID); r.State != store.RunFailed {
		t.Fatalf("fanout run %s, want failed (square[2] fails)", r.State)
	}
	held := trigger(t, k, "held", "", nil)
	k.WaitTask("held", held.RunID, "wait", store.TaskRunning)
	return k, srv.URL, run.RunID, held.RunID
}

// instanceKeys are the instance keys of task instances, in their order.
func instanceKeys(tis []ui.TaskInstance) []string {
	out := make([]string, len(tis))
	for i, ti := range tis {
		out[i] = store.InstanceKey(ti.TaskID, ti.MapIndex)
	}
	return out
}

func TestMappedTaskInstances(t *testing.T) {
	t.Parallel()
	_, root, runID, held := newFanoutRun(t)
	base := root + "/api/v1/dags/"
	runURL := base + "fanout/runs/" + runID

	// Every instance, in the DAG's task order, a mapped task's after it by
	// index.
	var tis []ui.TaskInstance
	r := call(t, "GET", runURL+"/tasks", "")
	r.decode(t, &tis)
	want := []string{"list", "square"}
	for i := range 12 {
		want = append(want, fmt.Sprintf("square[%d]", i))
	}
	want = append(want, "total")
	if diff := cmp.Diff(want, instanceKeys(tis)); diff != "" {
		t.Fatalf("task instances (-want +got):\n%s", diff)
	}
	square, third := tis[1], tis[4]
	if square.MapIndex != -1 || square.MapLength != 12 || square.State != store.TaskFailed || len(square.Tries) != 0 || square.Item != nil {
		t.Errorf("square = %+v, want map_index -1, 12 instances, failed, no tries of its own", square)
	}
	if third.MapIndex != 2 || third.Item != "c" || third.State != store.TaskFailed || len(third.Tries) != 1 || third.MapLength != 0 {
		t.Errorf("square[2] = %+v, want item c, failed after one try", third)
	}
	var raw []map[string]any
	r.decode(t, &raw)
	if _, ok := raw[0]["map_length"]; ok || raw[0]["map_index"] != -1.0 {
		t.Errorf("list's JSON = %v, want map_index -1 and no map_length", raw[0])
	}
	if _, ok := raw[0]["item"]; ok {
		t.Errorf("list's JSON has an item: %v", raw[0])
	}

	// The run lists a mapped task once, with its instance count.
	var run ui.Run
	call(t, "GET", runURL, "").decode(t, &run)
	var tasks []string
	for _, rt := range run.Tasks {
		tasks = append(tasks, fmt.Sprintf("%s:%s:%d", rt.TaskID, rt.State, rt.MapLength))
	}
	if got := strings.Join(tasks, " "); got != "list:success:0 square:failed:12 total:success:0" {
		t.Errorf("run tasks = %s", got)
	}

	// One instance, by map_index, on every route that names a task
	// instance.
	var one ui.TaskInstance
	call(t, "GET", runURL+"/tasks/square?map_index=10", "").decode(t, &one)
	if one.MapIndex != 10 || one.Item != "k" || one.State != store.TaskSuccess || len(one.Tries) != 1 {
		t.Errorf("GET square?map_index=10 = %+v", one)
	}
	call(t, "GET", runURL+"/tasks/square", "").decode(t, &one)
	if one.MapIndex != -1 || one.MapLength != 12 {
		t.Errorf("GET square = %+v, want the task as a whole", one)
	}
	if log := call(t, "GET", runURL+"/tasks/square/logs?map_index=4", ""); log.status != 200 || !strings.Contains(string(log.body), "item e at 4") {
		t.Errorf("log of square[4]: %d %q", log.status, log.body)
	}
	var tries []ui.TryDetail
	call(t, "GET", runURL+"/tasks/square/tries?map_index=2", "").decode(t, &tries)
	if len(tries) != 1 || tries[0].MapIndex != 2 || tries[0].State != store.TaskFailed || tries[0].Manifest == nil {
		t.Errorf("tries of square[2] = %+v", tries)
	}
	var tr ui.TryDetail
	call(t, "GET", runURL+"/tasks/square/tries/1?map_index=11", "").decode(t, &tr)
	if tr.MapIndex != 11 || tr.TaskID != "square" || tr.State != store.TaskSuccess {
		t.Errorf("try 1 of square[11] = %+v", tr)
	}

	// What does not name an instance is a 400 that says why; the mapped
	// task itself has no tries.
	for _, tt := range []struct {
		path   string
		status int
		want   []string
	}{
		{"fanout/runs/" + runID + "/tasks/square?map_index=12", 400, []string{"map_index 12", `task "square" has map indexes 0 to 11`}},
		{"fanout/runs/" + runID + "/tasks/square/logs?map_index=12", 400, []string{"map indexes 0 to 11"}},
		{"fanout/runs/" + runID + "/tasks/square/tries?map_index=-1", 400, []string{"map_index: want a whole number from 0"}},
		{"fanout/runs/" + runID + "/tasks/square/tries/1?map_index=x", 400, []string{`map_index: want a whole number from 0, got "x"`}},
		{"fanout/runs/" + runID + "/tasks/list/logs?map_index=0", 400, []string{`task "list" is not mapped`}},
		{"fanout/runs/" + runID + "/tasks/square[3]?map_index=0", 400, []string{`"square[3]" is an instance of a mapped task already`}},
		{"held/runs/" + held + "/tasks/each?map_index=0", 400, []string{`task "each" is mapped but has not expanded`}},
		{"fanout/runs/" + runID + "/tasks/square/logs", 404, []string{`task "square" of run`, "is mapped: its instances have the tries; name one with map_index (0 to 11)"}},
		{"fanout/runs/" + runID + "/tasks/square/tries/1", 404, []string{"is mapped"}},
		{"fanout/runs/" + runID + "/tasks/sqaure/logs?map_index=1", 404, []string{`did you mean "square"`}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			call(t, "GET", base+tt.path, "").wantError(t, tt.status, tt.want...)
		})
	}
}

func TestClearAndMarkMappedInstances(t *testing.T) {
	t.Parallel()
	k, root, runID, heldRun := newFanoutRun(t)
	base := root + "/api/v1/dags/"
	runURL := base + "fanout/runs/" + runID

	for _, tt := range []struct {
		name, body string
		want       []string
	}{
		{"index out of range", `{"tasks": ["square"], "map_indexes": [12]}`, []string{"map indexes 0 to 11 in this run, not 12"}},
		{"two tasks", `{"tasks": ["square", "total"], "map_indexes": [1]}`, []string{"name exactly one task"}},
		{"no task", `{"map_indexes": [1]}`, []string{"name exactly one task"}},
		{"unmapped task", `{"tasks": ["list"], "map_indexes": [0]}`, []string{"task list is not mapped"}},
		{"not a list", `{"tasks": ["square"], "map_indexes": 1}`, []string{"map_indexes"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			call(t, "POST", runURL+"/clear", tt.body).wantError(t, 400, tt.want...)
		})
	}
	call(t, "POST", base+"held/runs/"+heldRun+"/clear", `{"tasks": ["each"], "map_indexes": [0]}`).wantError(t, 400, "has not expanded in this run")

	// Clearing square[2] with downstream clears it and total, alone.
	var res ui.ClearResult
	r := call(t, "POST", runURL+"/clear", `{"tasks": ["square"], "map_indexes": [2], "downstream": true}`)
	r.decode(t, &res)
	if r.status != 200 || !slices.Equal(res.Cleared, []string{"square[2]", "total"}) {
		t.Fatalf("clear square[2]: %d %s, want square[2] and total cleared", r.status, r.body)
	}
	k.WaitRun("fanout", runID, store.RunFailed)
	var tis []ui.TaskInstance
	call(t, "GET", runURL+"/tasks", "").decode(t, &tis)
	for _, ti := range tis {
		want := 1
		switch {
		case ti.MapIndex < 0 && ti.TaskID == "square":
			want = 0
		case ti.MapIndex == 2, ti.TaskID == "total":
			want = 2
		}
		if ti.TryNumber != want {
			t.Errorf("%s[%d] has %d tries, want %d", ti.TaskID, ti.MapIndex, ti.TryNumber, want)
		}
	}

	// Marking square[2] success settles square, and the run, success.
	var ti ui.TaskInstance
	r = call(t, "PATCH", runURL+"/tasks/square?map_index=2", `{"state": "success"}`)
	r.decode(t, &ti)
	if r.status != 200 || ti.MapIndex != 2 || ti.State != store.TaskSuccess || len(ti.Tries) != 2 {
		t.Fatalf("mark square[2] success: %d %s", r.status, r.body)
	}
	k.WaitRun("fanout", runID, store.RunSuccess)
	if sq := k.WaitTask("fanout", runID, "square"); sq.State != store.TaskSuccess {
		t.Errorf("square is %s after its failed instance was marked success", sq.State)
	}
	call(t, "PATCH", runURL+"/tasks/square?map_index=99", `{"state": "failed"}`).wantError(t, 400, "map indexes 0 to 11")
}
