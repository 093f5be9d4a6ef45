package scheduler

import (
	"fmt"
	"strings"
	"testing"

	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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
	// The gauges count the instances, not the running task as a whole.
	var sn *snapshot
	h.inLoop(func() { sn = h.s.snapshot() })
	if sn.tis[store.TaskRunning] != 0 || sn.tis[store.TaskQueued] != 16 || sn.tis[store.TaskScheduled] != 84 || sn.poolUsed[store.DefaultPool] != 16 {
		t.Errorf("snapshot: task instances %v, pool slots used %v", sn.tis, sn.poolUsed)
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
// 50 ms (docs/performance.md#mapping-make-bench-packages-scheduler-and-ui). turn-ms is the loop's own measure
// of that turn (kiln_scheduler_turn_duration_seconds), commit-ms the
// store commit within it. Each op is a new run in the same store, whose
// file the first expansion grew.
func BenchmarkMapExpansion(b *testing.B) {
	list := map[string]any{"items": items(10000)}
	var turn, commit float64
	h := newHarness(b, mapDAG)
	for i := range b.N + 1 {
		h.clock.now = h.clock.now.Add(time.Minute)
		r, as := h.trigger("fan", nil)
		h.event(as[0], wire.EventStarted, true, nil)
		turn0, commit0 := histSum(b, h.s.metrics.turnDuration), histSum(b, h.s.metrics.commitDuration)
		var took float64
		h.inLoop(func() {
			h.s.applyEvent(eventMsg{ev: wire.Event{TryKey: as[0].TryKey, Kind: wire.EventFinished, Time: h.clock.Now(), Success: true, Outputs: list}, worker: "w1"})
		})
		took = histSum(b, h.s.metrics.turnDuration) - turn0
		if sent, _, _ := h.sent.take(); len(sent) != 16 {
			b.Fatalf("dispatched %d", len(sent))
		}
		if i > 0 { // the first, on an empty store, grows its file
			turn += took
			commit += histSum(b, h.s.metrics.commitDuration) - commit0
		}
		h.call(func() {
			if _, err := h.s.MarkRun(b.Context(), "fan", r.RunID, store.RunFailed); err != nil {
				b.Fatal(err)
			}
		})
	}
	b.ReportMetric(turn*1000/float64(b.N), "turn-ms")
	b.ReportMetric(commit*1000/float64(b.N), "commit-ms")
}

// histSum is the sum of a histogram's observations.
func histSum(b *testing.B, h prometheus.Histogram) float64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil {
		b.Fatal(err)
	}
	return m.GetHistogram().GetSampleSum()
}

// TestMappedGroupWhen: a task of a mapped group evaluates its `when` per
// branch, with the branch's item; a skipped instance skips the rest of its
// branch only.
func TestMappedGroupWhen(t *testing.T) {
	h := newHarness(t, `
id: branches
groups:
  each:
    map: "[0, 1, 2]"
    tasks: [a, b, c]
defaults: {plugin: shell, with: {command: "true"}}
tasks:
  - id: a
  - {id: b, depends_on: [a], when: "item != 1"}
  - {id: c, depends_on: [b]}
`)
	r, as := h.trigger("branches", nil)
	if taskIDs(as) != "a[0],a[1],a[2]" {
		t.Fatalf("dispatched %s", taskIDs(as))
	}
	for len(as) > 0 {
		a := as[0]
		as = append(as[1:], h.run(a, true, nil)...)
	}
	want := map[string]store.TaskState{
		"a": store.TaskSuccess, "b": store.TaskSuccess, "c": store.TaskSuccess,
		"a[0]": store.TaskSuccess, "a[1]": store.TaskSuccess, "a[2]": store.TaskSuccess,
		"b[0]": store.TaskSuccess, "b[1]": store.TaskSkipped, "b[2]": store.TaskSuccess,
		"c[0]": store.TaskSuccess, "c[1]": store.TaskSkipped, "c[2]": store.TaskSuccess,
	}
	if got := h.states("branches", r.RunID); !equalStates(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
}

// TestMarkUpstreamRerunsMappedInstances: in a mapped group, marking a
// failed instance success runs again its branch's later instances that
// were upstream_failed for it, and their task settles from them anew.
func TestMarkUpstreamRerunsMappedInstances(t *testing.T) {
	h := newHarness(t, `
id: chain
groups:
  each:
    map: "[1, 2, 3]"
    tasks: [a, b]
defaults: {plugin: shell, with: {command: "true"}}
tasks:
  - id: a
  - {id: b, depends_on: [a]}
`)
	r, as := h.trigger("chain", nil)
	for len(as) > 0 {
		a := as[0]
		as = append(as[1:], h.run(a, a.TaskID != "a[1]", nil)...)
	}
	if got := h.states("chain", r.RunID); got["b[1]"] != store.TaskUpstreamFailed || got["b"] != store.TaskUpstreamFailed {
		t.Fatalf("after a[1] failed: %v", got)
	}
	var err error
	as = h.call(func() { _, err = h.s.MarkTasks(t.Context(), "chain", r.RunID, []string{"a[1]"}, store.TaskSuccess) })
	if err != nil {
		t.Fatal(err)
	}
	if taskIDs(as) != "b[1]" {
		t.Fatalf("after marking a[1] success: dispatched %q, want b[1]", taskIDs(as))
	}
	h.run(as[0], true, nil)
	if got := h.runState("chain", r.RunID); got != store.RunSuccess {
		t.Errorf("run %s, want success; %v", got, h.states("chain", r.RunID))
	}
}
