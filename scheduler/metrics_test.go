package scheduler

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/store"
)

// observed reads the sample count and sum of a histogram.
func observed(t *testing.T, o prometheus.Observer) (uint64, float64) {
	t.Helper()
	var m dto.Metric
	if err := o.(prometheus.Metric).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
}

// wantObserved checks a histogram's sample count and sum (to the microsecond).
func wantObserved(t *testing.T, name string, o prometheus.Observer, count uint64, sum float64) {
	t.Helper()
	gotCount, gotSum := observed(t, o)
	if gotCount != count || math.Abs(gotSum-sum) > 1e-6 {
		t.Errorf("%s: %d samples summing to %gs, want %d summing to %gs", name, gotCount, gotSum, count, sum)
	}
}

// TestMetricsFollowTries drives a two-task run with a retry on the fake
// clock and checks what each step adds to the latency histograms and
// counters, and what a snapshot of the loop's state shows.
func TestMetricsFollowTries(t *testing.T) {
	h := newHarness(t, `
id: m
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
  - {id: b, plugin: shell, with: {command: "true"}, depends_on: [a], retries: 1, retry_delay: 10s, queue: gpu, pool: gpu}
`)
	m := h.s.metrics
	if err := h.s.SetPool(context.Background(), "gpu", 2); err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	h.sent.delay = 3 * ms // JetStream answers the publication 3 ms after the commit
	r, as := h.trigger("m", nil)
	wantObserved(t, "dispatch latency after a is published", m.dispatchLatency, 1, 0.003)
	h.sent.delay = ms
	sn := h.s.snapshot()
	if diff := cmp.Diff(map[store.RunState]int{store.RunRunning: 1}, sn.runs); diff != "" {
		t.Errorf("runs by state (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[store.TaskState]int{store.TaskQueued: 1, store.TaskNone: 1}, sn.tis); diff != "" {
		t.Errorf("task instances by state (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]queueWait{"default": {queued: 1, oldest: sn.at}}, sn.waits, cmp.AllowUnexported(queueWait{})); diff != "" {
		t.Errorf("waiting on queues (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{store.DefaultPool: 1}, sn.poolUsed); diff != "" {
		t.Errorf("pool slots used (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{store.DefaultPool: store.DefaultPoolSlots, "gpu": 2}, sn.poolSlots); diff != "" {
		t.Errorf("pool slots (-want +got):\n%s", diff)
	}

	h.advance(10 * ms)
	h.event(as[0], wire.EventStarted, true, nil)
	wantObserved(t, "queue wait after a started", m.queueWait, 1, 0.010)
	h.advance(time.Second)
	next := h.event(as[0], wire.EventFinished, true, nil)
	if taskIDs(next) != "b" {
		t.Fatalf("after a: %s, want b", taskIDs(next))
	}
	wantObserved(t, "success try duration", m.tryDuration.WithLabelValues("success"), 1, 1)
	wantObserved(t, "dispatch latency after b is published", m.dispatchLatency, 2, 0.004)

	h.advance(2 * ms)
	h.event(next[0], wire.EventStarted, true, nil)
	wantObserved(t, "task-to-task latency a to b", m.taskToTask, 1, 0.002)
	wantObserved(t, "queue wait after b started", m.queueWait, 2, 0.012)
	if sn := h.s.snapshot(); sn.poolUsed["gpu"] != 1 || sn.tis[store.TaskRunning] != 1 {
		t.Errorf("b running: pool gpu used %d, running %d; want 1 and 1", sn.poolUsed["gpu"], sn.tis[store.TaskRunning])
	}

	h.advance(500 * ms)
	h.event(next[0], wire.EventFinished, false, nil) // try 1 of b fails: retried
	h.advance(10 * time.Second)
	retry := h.turn(nil)
	if len(retry) != 1 || retry[0].Try != 2 {
		t.Fatalf("after the retry delay: %v, want try 2 of b", retry)
	}
	// Ready when the retry delay ended, published 1 ms later.
	wantObserved(t, "dispatch latency after b's retry", m.dispatchLatency, 3, 0.005)
	h.run(retry[0], true, nil)
	wantObserved(t, "task-to-task latency after a retry", m.taskToTask, 1, 0.002) // a retry is no hop
	wantObserved(t, "failed try duration", m.tryDuration.WithLabelValues("failed"), 1, 0.5)

	if got := h.runState("m", r.RunID); got != store.RunSuccess {
		t.Fatalf("run %s, want success", got)
	}
	for name, c := range map[string]struct {
		c    prometheus.Collector
		want float64
	}{
		"success tries": {m.triesFinished.WithLabelValues("success"), 2},
		"failed tries":  {m.triesFinished.WithLabelValues("failed"), 1},
		"retries":       {m.retries, 1},
		"published":     {m.published, 3},
	} {
		if got := testutil.ToFloat64(c.c); got != c.want {
			t.Errorf("%s = %g, want %g", name, got, c.want)
		}
	}
	if len(m.readyAt) != 0 {
		t.Errorf("readyAt keeps %d entries after every try was published", len(m.readyAt))
	}

	// The run ended in the last turn, whose commit forgot it.
	wantObserved(t, "run duration", m.runDuration.WithLabelValues("success"), 1, (10*ms + time.Second + 2*ms + 500*ms + 10*time.Second).Seconds())
	if got := testutil.ToFloat64(m.runsFinished.WithLabelValues("success")); got != 1 {
		t.Errorf("runs finished = %g, want 1", got)
	}
}

// TestMetricsReadyAtForgottenWithItsRun checks that a task instance that
// became ready but was never published (its try failed while rendering)
// leaves nothing behind once its run ends.
func TestMetricsReadyAtForgottenWithItsRun(t *testing.T) {
	h := newHarness(t, `
id: tmpl
tasks:
  - {id: a, plugin: shell, with: {command: "x"}}
  - {id: b, plugin: shell, depends_on: [a], with: {command: "use {{ .outputs.a.missing }}"}}
`)
	r, as := h.trigger("tmpl", nil)
	if next := h.run(as[0], true, map[string]any{"other": 1}); len(next) != 0 {
		t.Fatalf("b was dispatched despite its template error: %v", next)
	}
	if got := h.runState("tmpl", r.RunID); got != store.RunFailed {
		t.Fatalf("run %s, want failed", got)
	}
	if got := testutil.ToFloat64(h.s.metrics.triesFinished.WithLabelValues("failed")); got != 1 {
		t.Errorf("failed tries = %g, want 1", got)
	}
	// The run ended in the last turn, whose commit forgot it.
	if n := len(h.s.metrics.readyAt); n != 0 {
		t.Errorf("readyAt keeps %d entries after the run ended", n)
	}
}

// TestMetricsCollector checks the collector as a registry sees it: names
// and help that pass the Prometheus linter, and the DAG gauges, which are
// read without the loop, and the state gauges, read through it. With no
// NATS, kiln_scheduler_up is 0.
func TestMetricsCollector(t *testing.T) {
	h := newHarness(t, `
id: one
tasks: [{id: a, plugin: shell, with: {command: "true"}}]
`, `
id: two
paused: true
tasks: [{id: a, plugin: shell, with: {command: "true"}}]
`)
	c := collector{h.s}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := h.s.registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP kiln_dags DAGs loaded (a file with errors counts with its last good version), by paused.
# TYPE kiln_dags gauge
kiln_dags{paused="false"} 1
kiln_dags{paused="true"} 1
# HELP kiln_dag_import_errors DAG files that do not load as they are now.
# TYPE kiln_dag_import_errors gauge
kiln_dag_import_errors 0
# HELP kiln_runs_active DAG runs not yet ended, by state (queued, running).
# TYPE kiln_runs_active gauge
kiln_runs_active{state="queued"} 0
kiln_runs_active{state="running"} 0
# HELP kiln_scheduler_up 1 when the scheduler loop runs, the store and NATS are up and the DAGs folder reloads (as /healthz), else 0.
# TYPE kiln_scheduler_up gauge
kiln_scheduler_up 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kiln_dags", "kiln_dag_import_errors", "kiln_scheduler_up", "kiln_runs_active"); err != nil {
		t.Error(err)
	}
}

// BenchmarkMetricsPerTask is what the metrics add to the loop's work for
// one task that runs once: its hooks from ready to ended, and the
// observations of one turn.
func BenchmarkMetricsPerTask(b *testing.B) {
	m := newMetrics()
	now := t0
	up := &store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: "d", RunID: "r", TaskID: "a", State: store.TaskSuccess, EndDate: &now}
	ti := &store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: "d", RunID: "r", TaskID: "b", TryNumber: 1, QueuedAt: &now}
	g, err := dag.Parse("d.yaml", []byte(`
id: d
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
  - {id: b, plugin: shell, with: {command: "true"}, depends_on: [a]}
`), dag.Options{Plugins: plugins.Builtin()})
	if err != nil {
		b.Fatal(err)
	}
	d := &activeRun{dag: g, tis: map[string]*store.TaskInstance{"a": up, "b": ti}}
	k := wire.TryKey{DAGID: "d", RunID: "r", TaskID: "b", Try: 1}
	started, ended := now.Add(time.Millisecond), now.Add(time.Second)
	tr := &store.Try{MapIndex: store.NoMapIndex, State: store.TaskSuccess, StartDate: &started, EndDate: &ended}
	for b.Loop() {
		m.taskReady(ti, now)
		m.assignmentPublished(k, started)
		m.taskStarted(d, ti, started)
		m.tryEnded(tr)
		m.turnDuration.Observe(0.001)
		m.commitDuration.Observe(0.001)
	}
}
