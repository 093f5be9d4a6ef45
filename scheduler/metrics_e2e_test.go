package scheduler_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kilnhq/kiln/store"
)

// scrape gathers reg into name{label="value",...} → value, labels sorted
// by name; a histogram gives name_count and name_sum.
func scrape(t *testing.T, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			labels := ""
			if len(ls) > 0 {
				labels = "{" + strings.Join(ls, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[mf.GetName()+labels] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[mf.GetName()+labels] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[mf.GetName()+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
				out[mf.GetName()+"_sum"+labels] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// TestMetricsOfRealRuns runs a chain of three tasks and a task that waits
// for a pool slot through the real scheduler and a worker, and checks
// what a scrape of the scheduler's registry says along the way.
func TestMetricsOfRealRuns(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	e := start(t, map[string]string{
		"chain": `
id: chain
defaults: {plugin: shell, with: {command: "true"}}
tasks:
  - {id: a}
  - {id: b, depends_on: [a]}
  - {id: c, depends_on: [b]}
`,
		"gated": `
id: gated
tasks:
  - {id: wait, plugin: shell, with: {command: "true"}, pool: gate}
`,
	}, options{workers: 1, metrics: reg})

	want := func(what string, cond func(m map[string]float64) bool) {
		t.Helper()
		var m map[string]float64
		e.waitFor(what, 10*time.Second, func() bool { m = scrape(t, reg); return cond(m) })
	}
	eq := func(name string, v float64) func(map[string]float64) bool {
		return func(m map[string]float64) bool { return m[name] == v }
	}

	if r := e.waitRun(e.trigger("chain", nil), 30*time.Second); r.State != store.RunSuccess {
		t.Fatalf("chain run %s, want success", r.State)
	}
	want("the chain's run counted", eq(`kiln_runs_finished_total{state="success"}`, 1))
	m := scrape(t, reg)
	for name, v := range map[string]float64{
		`kiln_tries_finished_total{state="success"}`:               3,
		`kiln_tries_finished_total{state="failed"}`:                0,
		`kiln_try_duration_seconds_count{state="success"}`:         3,
		`kiln_run_duration_seconds_count{state="success"}`:         1,
		`kiln_dispatch_latency_seconds_count`:                      3,
		`kiln_task_queue_wait_seconds_count`:                       3,
		`kiln_task_to_task_latency_seconds_count`:                  2, // a→b, b→c
		`kiln_assignments_published_total`:                         3,
		`kiln_dag_folder_load_duration_seconds_count{kind="full"}`: 1,
		`kiln_scheduler_up`:                                        1,
		`kiln_dags{paused="false"}`:                                2,
		`kiln_dag_import_errors`:                                   0,
		`kiln_runs_active{state="running"}`:                        0,
		`kiln_task_instances_active{state="running"}`:              0,
		`kiln_pool_slots{pool="default_pool"}`:                     store.DefaultPoolSlots,
		`kiln_pool_slots_used{pool="default_pool"}`:                0,
		`kiln_queue_depth{queue="default"}`:                        0,
	} {
		if got, ok := m[name]; !ok || got != v {
			t.Errorf("%s = %g (present %v), want %g", name, got, ok, v)
		}
	}
	for _, name := range []string{"kiln_scheduler_turn_duration_seconds_count", "kiln_store_commit_duration_seconds_count"} {
		if m[name] == 0 {
			t.Errorf("%s = 0, want turns and commits observed", name)
		}
	}
	// Every hop of the chain is a few milliseconds here; the sum bounds them.
	if s := m["kiln_task_to_task_latency_seconds_sum"]; s <= 0 || s > 5 {
		t.Errorf("task-to-task latency sum %gs, want a positive few", s)
	}

	// A task whose pool has no slots waits, scheduled, until the pool grows.
	r := e.trigger("gated", nil)
	want("the gated task to wait for a slot", eq(`kiln_task_instances_active{state="scheduled"}`, 1))
	m = scrape(t, reg)
	for name, v := range map[string]float64{
		`kiln_runs_active{state="running"}`: 1,
		`kiln_pool_slots{pool="gate"}`:      0,
		`kiln_pool_slots_used{pool="gate"}`: 0,
	} {
		if m[name] != v {
			t.Errorf("%s = %g, want %g", name, m[name], v)
		}
	}
	time.Sleep(200 * time.Millisecond) // waiting for the slot is part of the dispatch latency
	if err := e.s.SetPool(context.Background(), "gate", 1); err != nil {
		t.Fatal(err)
	}
	if r := e.waitRun(r, 30*time.Second); r.State != store.RunSuccess {
		t.Fatalf("gated run %s, want success", r.State)
	}
	want("the gated run counted", eq(`kiln_runs_finished_total{state="success"}`, 2))
	m = scrape(t, reg)
	if got := m["kiln_dispatch_latency_seconds_sum"]; got < 0.2 {
		t.Errorf("dispatch latency sum %gs, want the 0.2 s the gated task waited for its slot in it", got)
	}
	if got := m["kiln_runs_active{state=\"running\"}"]; got != 0 {
		t.Errorf("runs running after both ended: %g", got)
	}

	// What the registry serves passes the Prometheus linter.
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}
