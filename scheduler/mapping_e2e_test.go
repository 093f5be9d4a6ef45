package scheduler_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// mapReduce lists FILES "files" (an output list written as KEY=VALUE),
// processes each in a mapped task whose 13th item fails its first try, and
// sums what they wrote (docs/dag-format.md#mapping).
const mapReduce = `
defaults: {plugin: shell, retry_delay: 50ms}
params:
  files: {default: 50}
tasks:
  - id: list_files
    with: {command: 'echo "files=[$(seq -s, 1 {{ .params.files }})]" > "$KILN_OUTPUT"'}
  - id: process
    depends_on: [list_files]
    map: outputs.list_files.files
    retries: 1
    with:
      command: |
        [ "$KILN_MAP_INDEX" = "{{ .map_index }}" ] && [ "$KILN_TASK_ID" = process ] || exit 9
        if [ {{ .item }} = 13 ] && [ "$KILN_TRY_NUMBER" = 1 ]; then exit 1; fi
        echo "n=$(( {{ .item }} * 2 ))" > "$KILN_OUTPUT"
  - id: reduce
    depends_on: [process]
    with:
      command: |
        t=0; for n in {{ range .outputs.process }}{{ .n }} {{ end }}; do t=$((t+n)); done
        echo "sum=$t" > "$KILN_OUTPUT"
        echo '{{ json .outputs.process }}' | grep -q '^\[{"n":"2"},{"n":"4"},'
`

// TestE2EMapping runs mapReduce over 50 items: 50 instances, the failing
// one retried alone, the right sum; then clears one instance, which runs
// again alone with the reduce downstream of it.
func TestE2EMapping(t *testing.T) {
	e := start(t, map[string]string{"mapreduce": mapReduce}, options{workers: 2})
	r := e.waitRun(e.trigger("mapreduce", nil), 60*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run %s, want success; tasks %v", r.State, e.taskStates(r))
	}
	tries := func() map[string]int {
		tis, err := e.st.TaskInstances(r.DAGID, r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, ti := range tis {
			out[ti.Key()] = ti.TryNumber
		}
		return out
	}
	before := tries()
	if len(before) != 53 {
		t.Fatalf("%d task instances, want 53 (list_files, process, 50 instances of it, reduce): %v", len(before), before)
	}
	for i := range 50 {
		want := 1
		if i == 12 {
			want = 2
		}
		if got := before[fmt.Sprintf("process[%d]", i)]; got != want {
			t.Errorf("process[%d] ran %d tries, want %d", i, got, want)
		}
	}
	parent, err := e.st.GetTaskInstance(r.DAGID, r.RunID, "process")
	if err != nil || parent.MapLength != 50 || parent.State != store.TaskSuccess || parent.MapIndex != store.NoMapIndex {
		t.Fatalf("process = %+v (%v), want success with 50 instances", parent, err)
	}
	in7, err := e.st.GetTaskInstance(r.DAGID, r.RunID, "process[7]")
	if err != nil || in7.Item != 8.0 || in7.Outputs["n"] != "16" {
		t.Fatalf("process[7] = %+v (%v), want item 8 and n=16", in7, err)
	}
	reduce, _ := e.st.GetTaskInstance(r.DAGID, r.RunID, "reduce")
	if got := reduce.Outputs["sum"]; got != "2550" {
		t.Errorf("sum = %v, want 2550 (2 × (1 + … + 50))", got)
	}

	cleared, err := e.s.Clear(context.Background(), r.DAGID, r.RunID, scheduler.ClearRequest{Tasks: []string{"process"}, MapIndexes: []int{7}, Downstream: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cleared, " "); got != "process[7] reduce" {
		t.Errorf("cleared %q, want process[7] and reduce", got)
	}
	r = e.waitRun(r, 30*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("after the clear: run %s; tasks %v", r.State, e.taskStates(r))
	}
	after := tries()
	for k, n := range before {
		want := n
		if k == "process[7]" || k == "reduce" {
			want++
		}
		if after[k] != want {
			t.Errorf("after clearing process[7]: %s has %d tries, want %d", k, after[k], want)
		}
	}
	if reduce, _ := e.st.GetTaskInstance(r.DAGID, r.RunID, "reduce"); reduce.Outputs["sum"] != "2550" {
		t.Errorf("sum after the clear = %v, want 2550", reduce.Outputs["sum"])
	}
	if _, err := e.s.Clear(context.Background(), r.DAGID, r.RunID, scheduler.ClearRequest{Tasks: []string{"process"}, MapIndexes: []int{50}}); err == nil ||
		!strings.Contains(err.Error(), "map indexes 0 to 49 in this run, not 50") {
		t.Errorf("clearing process[50]: err = %v", err)
	}
}

// TestE2EMappingEdges: an empty list skips the mapped task and its
// all_success downstream; a list longer than max_map_length fails the
// task, naming the limit, and creates no instance.
func TestE2EMappingEdges(t *testing.T) {
	e := start(t, map[string]string{"mapreduce": mapReduce, "capped": strings.Replace(mapReduce, "params:", "max_map_length: 1024\nparams:", 1)}, options{workers: 1})
	r := e.waitRun(e.trigger("mapreduce", map[string]any{"files": 0}), 20*time.Second)
	states := e.taskStates(r)
	if r.State != store.RunSuccess || states["process"] != store.TaskSkipped || states["reduce"] != store.TaskSkipped || len(states) != 3 {
		t.Errorf("empty list: run %s, tasks %v; want success with process and reduce skipped", r.State, states)
	}
	r = e.waitRun(e.trigger("capped", map[string]any{"files": 2000}), 20*time.Second)
	states = e.taskStates(r)
	process, _ := e.st.GetTaskInstance(r.DAGID, r.RunID, "process")
	if r.State != store.RunFailed || states["reduce"] != store.TaskUpstreamFailed || len(states) != 3 ||
		!strings.Contains(process.Error, "yielded 2000 items, more than max_map_length 1024") {
		t.Errorf("2,000 items: run %s, tasks %v, process error %q", r.State, states, process.Error)
	}
}

// TestE2EMappedGroup maps a group of three tasks over three branches, of
// which branch 1's first task is slow: branch 0 runs to its end meanwhile
// (depth-first), and the task after the group gets every branch's result.
func TestE2EMappedGroup(t *testing.T) {
	e := start(t, map[string]string{"branches": `
defaults: {plugin: shell}
groups:
  branch:
    map: "[0, 1, 2]"
    tasks: [a, b, c]
tasks:
  - {id: a, with: {command: 'if [ {{ .item }} = 1 ]; then sleep 2; else sleep 0.2; fi; echo "x={{ .item }}" > "$KILN_OUTPUT"'}}
  - {id: b, depends_on: [a], with: {command: 'sleep 0.2; echo "y={{ .outputs.a.x }}{{ .map_index }}" > "$KILN_OUTPUT"'}}
  - {id: c, depends_on: [b], with: {command: 'sleep 0.2; echo "z={{ .outputs.b.y }}" > "$KILN_OUTPUT"'}}
  - id: after
    depends_on: [branch]
    with: {command: 'echo "all={{ range .outputs.c }}{{ .z }},{{ end }}" > "$KILN_OUTPUT"'}
`}, options{workers: 1, slots: 4})
	r := e.waitRun(e.trigger("branches", nil), 30*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run %s, want success; tasks %v", r.State, e.taskStates(r))
	}
	get := func(k string) *store.TaskInstance {
		ti, err := e.st.GetTaskInstance(r.DAGID, r.RunID, k)
		if err != nil || ti.StartDate == nil || ti.EndDate == nil {
			t.Fatalf("%s = %+v (%v)", k, ti, err)
		}
		return ti
	}
	if c0, a1 := get("c[0]"), get("a[1]"); !c0.EndDate.Before(*a1.EndDate) {
		t.Errorf("branch 0 ended at %v, after branch 1's first task ended at %v: not depth-first", c0.EndDate, a1.EndDate)
	}
	for i := range 3 {
		b, a := get(fmt.Sprintf("b[%d]", i)), get(fmt.Sprintf("a[%d]", i))
		if b.StartDate.Before(*a.EndDate) {
			t.Errorf("b[%d] started before a[%d] ended", i, i)
		}
	}
	if got := get("after").Outputs["all"]; got != "00,11,22," {
		t.Errorf("after saw %q, want each branch's result in order: 00,11,22,", got)
	}
}
