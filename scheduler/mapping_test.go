package scheduler

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// mapDAG maps a no-op task over the items its upstream lists.
const mapDAG = `
id: fan
max_active_tasks: 16
tasks:
  - {id: list, plugin: shell, with: {command: "true"}}
  - id: noop
    plugin: shell
    depends_on: [list]
    map: outputs.list.items
    max_map_length: 10000
    with: {command: "echo {{ .item }}"}
  - {id: after, plugin: shell, depends_on: [noop], with: {command: "true"}}
`

func items(n int) string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprint(i)
	}
	return "[" + strings.Join(s, ",") + "]"
}

// TestMapExpansionTurn: the turn that ends the list expands the mapped
// task into every instance and dispatches as many as max_active_tasks
// allows; the instances are in the store with that turn's commit.
func TestMapExpansionTurn(t *testing.T) {
	h := newHarness(t, mapDAG)
	r, as := h.trigger("fan", nil)
	as = h.run(as[0], true, map[string]any{"items": items(100)})
	if len(as) != 16 || as[0].TaskID != "noop[0]" || as[15].TaskID != "noop[15]" {
		t.Fatalf("dispatched %s, want noop[0] to noop[15]", taskIDs(as))
	}
	if as[3].Env["KILN_MAP_INDEX"] != "3" || as[3].Env["KILN_TASK_ID"] != "noop" || as[3].With["command"] != "echo 3" {
		t.Errorf("noop[3]'s assignment: env %v, with %v", as[3].Env, as[3].With)
	}
	tis, err := h.s.cfg.Store.TaskInstances("fan", r.RunID)
	if err != nil || len(tis) != 103 {
		t.Fatalf("%d instances stored (%v), want 103", len(tis), err)
	}
	for len(as) > 0 {
		a := as[0]
		as = append(as[1:], h.run(a, true, nil)...)
	}
	if got := h.runState("fan", r.RunID); got != store.RunSuccess {
		t.Errorf("run %s, want success; %v", got, h.states("fan", r.RunID))
	}
}

// BenchmarkMapExpansion times the loop turn that expands a task over
// 10,000 items: the list's finished event applied, the instances made and
// written, the first dispatches rendered, the store commit. The target is
// 50 ms (docs/performance.md#mapping). The time includes the next turn,
// which applies JetStream's answers to the dispatches (harness.call).
func BenchmarkMapExpansion(b *testing.B) {
	list := map[string]any{"items": items(10000)}
	var took time.Duration
	for range b.N {
		h := newHarness(b, mapDAG)
		_, as := h.trigger("fan", nil)
		h.event(as[0], wire.EventStarted, true, nil)
		begin := time.Now()
		as = h.event(as[0], wire.EventFinished, true, list)
		took += time.Since(begin)
		if len(as) != 16 {
			b.Fatalf("dispatched %d", len(as))
		}
	}
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/expansion")
}

// TestMapMarkAndClear: marking a failed instance success settles its task
// again and lets the run go on; clearing the upstream and the mapped task
// expands it again over the new, shorter list, reusing the instances
// (their try numbers go on) and noting the ones past its end as removed.
func TestMapMarkAndClear(t *testing.T) {
	h := newHarness(t, mapDAG)
	ctx := t.Context()
	r, as := h.trigger("fan", nil)
	as = h.run(as[0], true, map[string]any{"items": "[10, 11, 12, 13, 14]"})
	if len(as) != 5 {
		t.Fatalf("dispatched %s", taskIDs(as))
	}
	for _, a := range as {
		h.run(a, a.TaskID != "noop[4]", nil)
	}
	states := h.states("fan", r.RunID)
	if states["noop"] != store.TaskFailed || states["noop[4]"] != store.TaskFailed || states["after"] != store.TaskUpstreamFailed || h.runState("fan", r.RunID) != store.RunFailed {
		t.Fatalf("after noop[4] failed: run %s, %v", h.runState("fan", r.RunID), states)
	}

	var err error
	as = h.call(func() { _, err = h.s.MarkTasks(ctx, "fan", r.RunID, []string{"noop[4]"}, store.TaskSuccess) })
	if err != nil {
		t.Fatal(err)
	}
	states = h.states("fan", r.RunID)
	if states["noop"] != store.TaskSuccess || len(as) != 1 || as[0].TaskID != "after" {
		t.Fatalf("after marking noop[4] success: %v, dispatched %s", states, taskIDs(as))
	}
	h.run(as[0], true, nil)
	if got := h.runState("fan", r.RunID); got != store.RunSuccess {
		t.Fatalf("run %s, want success", got)
	}

	as = h.call(func() {
		_, err = h.s.Clear(ctx, "fan", r.RunID, ClearRequest{Tasks: []string{"list"}, Downstream: true})
	})
	if err != nil || len(as) != 1 || as[0].TaskID != "list" {
		t.Fatalf("clear: %v, dispatched %s", err, taskIDs(as))
	}
	as = h.run(as[0], true, map[string]any{"items": `["a", "b", "c"]`})
	if taskIDs(as) != "noop[0],noop[1],noop[2]" || as[2].With["command"] != "echo c" {
		t.Fatalf("expanded again: dispatched %s", taskIDs(as))
	}
	for _, a := range as {
		if a.Try != 2 {
			t.Errorf("%s: try %d, want 2", a.TaskID, a.Try)
		}
	}
	ar := h.s.active[runKey{"fan", r.RunID}]
	for _, k := range []string{"noop[3]", "noop[4]"} {
		if ti := ar.tis[k]; ti.State != store.TaskSkipped || !strings.Contains(ti.Error, "removed") {
			t.Errorf("%s past the new list's end: %s %q", k, ti.State, ti.Error)
		}
	}
	for _, a := range as {
		as = append(as, h.run(a, true, nil)...)
	}
	h.run(as[len(as)-1], true, nil)
	if got := h.runState("fan", r.RunID); got != store.RunSuccess {
		t.Errorf("run %s after the second expansion, want success; %v", got, h.states("fan", r.RunID))
	}
}
