package scheduler_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// The throughput benchmarks run the standalone shape: embedded NATS, the
// scheduler, one worker with 8 slots, every task `true` through the real
// shell plugin process. Each op is one run, measured from its creation to
// its end as the scheduler stored them. Each also measures the floor, the
// least such a task can cost on the machine, in the same run; the figures
// are reported as ratios to it and to the targets (docs/performance.md),
// with the CPU time a task costs in each process.

func chainDAG(n int) string {
	var b strings.Builder
	b.WriteString("id: chain\ndefaults: {plugin: shell, with: {command: 'true'}}\ntasks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: t%03d\n", i)
		if i > 0 {
			fmt.Fprintf(&b, "    depends_on: [t%03d]\n", i-1)
		}
	}
	return b.String()
}

func fanDAG(n int) string {
	var b strings.Builder
	b.WriteString("id: fan\nmax_active_tasks: 1000\ndefaults: {plugin: shell, with: {command: 'true'}}\ntasks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: t%04d\n", i)
	}
	return b.String()
}

// floor samples the time to start `/bin/sh -c true` with os/exec and wait
// for it: what a task running a shell command costs at the least.
type floor []time.Duration

// floorSamples is how many samples are taken before each run.
const floorSamples = 20

// sample adds n samples, with b's timer stopped.
func (f *floor) sample(b *testing.B, n int) {
	b.StopTimer()
	defer b.StartTimer()
	for range n {
		begin := time.Now()
		if err := exec.Command("/bin/sh", "-c", "true").Run(); err != nil {
			b.Fatalf("the floor: /bin/sh -c true: %v", err)
		}
		*f = append(*f, time.Since(begin))
	}
}

// median is the floor: the median of the samples, in milliseconds.
func (f floor) median() float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return ms(s[len(s)/2])
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchRuns triggers a run of the DAG, of tasks tasks, per op, sampling
// the floor before each. It returns the mean time of a run and the floor,
// in milliseconds, and reports them with the CPU time a task took in each
// part (cpuUse).
func benchRuns(b *testing.B, dagID, src string, tasks int, timeout time.Duration) (runMS, floorMS float64) {
	return benchRunsOn(b, options{workers: 1, slots: 8}, dagID, src, tasks, timeout)
}

// benchRunsOn is benchRuns on an installation made with o. In cluster
// mode it also reports what the log and the store grew by per run, and
// with a standby how far the standby's store fell behind the leader's: at
// most, in log messages, and how long after each run's end it had the
// run's end.
func benchRunsOn(b *testing.B, o options, dagID, src string, tasks int, timeout time.Duration) (runMS, floorMS float64) {
	e := start(b, map[string]string{dagID: src}, o)
	// A warm-up run starts the plugin process.
	e.waitRun(e.trigger(dagID, nil), timeout)
	var total, catchUp time.Duration
	var fl floor
	var maxLag atomic.Uint64
	sampling := make(chan struct{})
	var sampler sync.WaitGroup
	if o.standby {
		sampler.Go(func() {
			for {
				select {
				case <-sampling:
					return
				case <-time.After(time.Millisecond):
				}
				if l := e.st.AppliedSeq() - min(e.st.AppliedSeq(), e.standby.AppliedSeq()); l > maxLag.Load() {
					maxLag.Store(l)
				}
			}
		})
	}
	log0, store0 := e.growth()
	cpu0, cpuOK := cpuNow()
	b.ResetTimer()
	for b.Loop() {
		fl.sample(b, floorSamples)
		r := e.waitRun(e.trigger(dagID, nil), timeout)
		if r.State != store.RunSuccess {
			b.Fatalf("run %s", r.State)
		}
		total += r.EndDate.Sub(r.QueuedAt)
		if o.standby {
			b.StopTimer()
			seen := time.Now()
			e.waitFor("the standby to have the run's end", timeout, func() bool {
				got, err := e.standby.GetRun(r.DAGID, r.RunID)
				return err == nil && got.State == store.RunSuccess
			})
			catchUp += time.Since(seen)
			b.StartTimer()
		}
	}
	close(sampling)
	sampler.Wait()
	if o.cluster {
		log1, store1 := e.growth()
		b.ReportMetric(float64(log1-log0)/float64(b.N)/1024, "log-KiB/run")
		b.ReportMetric(float64(store1-store0)/float64(b.N)/1024, "store-KiB/run")
	}
	if o.standby {
		b.ReportMetric(float64(maxLag.Load()), "standby-max-lag-msgs")
		b.ReportMetric(ms(catchUp)/float64(b.N), "standby-catch-up-ms")
	}
	runMS, floorMS = ms(total)/float64(b.N), fl.median()
	b.ReportMetric(runMS, "ms/run")
	b.ReportMetric(floorMS, "floor-ms")
	if cpu1, ok := cpuNow(); ok && cpuOK {
		reportCPU(b, cpu1.sub(cpu0), b.N*tasks)
	}
	return runMS, floorMS
}

// reportCPU reports the CPU time of each part per task.
func reportCPU(b *testing.B, u cpuUse, tasks int) {
	per := func(d time.Duration) float64 { return ms(d) / float64(tasks) }
	b.ReportMetric(per(u.kiln), "kiln-cpu-ms/task")
	b.ReportMetric(per(u.plugins), "plugin-cpu-ms/task")
	b.ReportMetric(per(u.tasks), "sh-cpu-ms/task")
}

// chainTarget is what a hop of the chain may add to the floor.
const chainTarget = 1.5 // ms

// BenchmarkChain100 is a chain of 100 tasks, trigger to success. A hop is
// a task and the step to the next; target: floor + 1.5 ms per hop, and
// hop/target at most 1.
func BenchmarkChain100(b *testing.B) {
	runMS, floorMS := benchRuns(b, "chain", chainDAG(100), 100, time.Minute)
	hop := runMS / 100
	b.ReportMetric(hop, "ms/hop")
	b.ReportMetric(hop/floorMS, "hop/floor")
	b.ReportMetric(hop/(floorMS+chainTarget), "hop/target")
}

// fanTarget is the target time of the 1,000 independent tasks.
const fanTarget = 2000 // ms

// BenchmarkIndependent1000 is 1,000 independent tasks on 8 slots; target
// 2 s, run/target at most 1.
func BenchmarkIndependent1000(b *testing.B) {
	runMS, floorMS := benchRuns(b, "fan", fanDAG(1000), 1000, 2*time.Minute)
	b.ReportMetric(runMS/floorMS, "run/floor")
	b.ReportMetric(runMS/fanTarget, "run/target")
}

// BenchmarkReplication runs chain100 and fan1000 side by side in the
// standalone shape and in cluster mode: a 3-node NATS cluster on loopback,
// every commit appended to the replicated log before the store commits
// it. "cluster" is the leader alone, as it runs on its host;
// "cluster+standby" adds a standby's store following the log in the same
// process, on the same cores, and reports its lag. Target: cluster
// within 1.5× of standalone.
func BenchmarkReplication(b *testing.B) {
	for _, w := range []struct {
		name, dagID, src string
		tasks            int
	}{{"chain100", "chain", chainDAG(100), 100}, {"fan1000", "fan", fanDAG(1000), 1000}} {
		for _, mode := range []string{"standalone", "cluster", "cluster+standby"} {
			b.Run(w.name+"/"+mode, func(b *testing.B) {
				o := options{workers: 1, slots: 8, cluster: mode != "standalone", standby: mode == "cluster+standby"}
				benchRunsOn(b, o, w.dagID, w.src, w.tasks, 2*time.Minute)
			})
		}
	}
}

// BenchmarkCacheHits is the chain of 100 tasks with every task cached: a
// warm-up run fills the cache, then each op is a run in which every task
// is taken from it without a worker. ms/hit is the run's time per task,
// commits included; loop-ms/hit the scheduler loop's time per hit, and
// loop-ms/hit-uncommitted the same without the store's commits: the
// scheduler's cost of a hit (target: at most 1 ms); kiln-cpu-ms/task the
// whole process's CPU time per task, log notes written off the loop
// included.
func BenchmarkCacheHits(b *testing.B) {
	src := strings.Replace(chainDAG(100), "defaults: {plugin: shell,", "defaults: {plugin: shell, cache: true,", 1)
	reg := prometheus.NewRegistry()
	e := start(b, map[string]string{"chain": src}, options{workers: 1, slots: 8, metrics: reg})
	e.waitFor("the worker's plugin builds", 10*time.Second, func() bool { return e.s.PluginBuildKnown("default", "shell") })
	e.waitRun(e.trigger("chain", nil), time.Minute)
	var total time.Duration
	turns0 := histogram(b, reg, "kiln_scheduler_turn_duration_seconds")
	commits0 := histogram(b, reg, "kiln_store_commit_duration_seconds")
	cpu0, cpuOK := cpuNow()
	for b.Loop() {
		r := e.waitRun(e.trigger("chain", nil), time.Minute)
		if r.State != store.RunSuccess {
			b.Fatalf("run %s", r.State)
		}
		total += r.EndDate.Sub(r.QueuedAt)
	}
	b.ReportMetric(ms(total)/float64(b.N), "ms/run")
	b.ReportMetric(ms(total)/float64(b.N*100), "ms/hit")
	turns := histogram(b, reg, "kiln_scheduler_turn_duration_seconds").sum - turns0.sum
	commits := histogram(b, reg, "kiln_store_commit_duration_seconds").sum - commits0.sum
	b.ReportMetric(turns*1000/float64(b.N*100), "loop-ms/hit")
	b.ReportMetric((turns-commits)*1000/float64(b.N*100), "loop-ms/hit-uncommitted")
	if cpu1, ok := cpuNow(); ok && cpuOK {
		b.ReportMetric(ms(cpu1.sub(cpu0).kiln)/float64(b.N*100), "kiln-cpu-ms/task")
	}
}

// BenchmarkMLAllCached is the bundled ML example with every task cached
// (cache: true added to its defaults), on the same day, so the keys stay:
// each op is a run with nothing run, timed from the trigger's call until
// the store shows it succeeded (waitRun polls it); target 0.2 s.
func BenchmarkMLAllCached(b *testing.B) {
	if _, err := exec.LookPath("python3"); err != nil {
		b.Skip("no python3")
	}
	raw, err := os.ReadFile("../examples/dags/ml_pipeline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	src := strings.Replace(string(raw), "defaults:\n  plugin: shell\n", "defaults:\n  plugin: shell\n  cache: true\n", 1)
	root, err := filepath.Abs("..")
	if err != nil {
		b.Fatal(err)
	}
	e := start(b, map[string]string{"ml_pipeline": src}, options{workers: 1, slots: 8, projectDir: root})
	e.waitFor("the worker's plugin builds", 10*time.Second, func() bool { return e.s.PluginBuildKnown("default", "shell") })
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	trigger := func(i int) *store.Run {
		ld := day.Add(time.Duration(i) * time.Millisecond)
		r, err := e.s.Trigger(context.Background(), "ml_pipeline", scheduler.TriggerRequest{LogicalDate: &ld})
		if err != nil {
			b.Fatal(err)
		}
		return e.waitRun(r, time.Minute)
	}
	if r := trigger(0); r.State != store.RunSuccess {
		b.Fatalf("warm-up run %s: %v", r.State, e.taskStates(r))
	}
	var total time.Duration
	i := 1
	for b.Loop() {
		begin := time.Now()
		r := trigger(i)
		took := time.Since(begin)
		i++
		if r.State != store.RunSuccess {
			b.Fatalf("run %s", r.State)
		}
		for task, st := range e.taskStates(r) {
			if ti, _ := e.st.GetTaskInstance("ml_pipeline", r.RunID, task); st != store.TaskSuccess || ti.CachedFrom == nil {
				b.Fatalf("task %s %s, cached from %v: want every task cached", task, st, ti.CachedFrom)
			}
		}
		total += took
	}
	b.ReportMetric(ms(total)/float64(b.N), "ms/trigger-to-success")
	b.ReportMetric(ms(total)/float64(b.N)/200, "run/target")
}

// mapDAG maps a no-op task over n items its upstream lists.
func mapDAG(n int) string {
	return fmt.Sprintf(`id: mapped
max_active_tasks: 1000
tasks:
  - id: list
    plugin: shell
    with: {command: 'echo "items=[$(seq -s, 1 %d)]" > "$KILN_OUTPUT"'}
  - id: noop
    plugin: shell
    depends_on: [list]
    map: outputs.list.items
    max_map_length: %d
    with: {command: 'true'}
`, n, n)
}

// BenchmarkMap10000 maps a no-op task over 10,000 items on 8 slots:
// ms/instance is the run's time per instance, against the floor and the
// 1,000 independent tasks' 2 ms a task (docs/performance.md#mapping-make-bench-packages-scheduler-and-ui).
func BenchmarkMap10000(b *testing.B) {
	const n = 10000
	runMS, floorMS := benchRuns(b, "mapped", mapDAG(n), n, 10*time.Minute)
	b.ReportMetric(runMS/n, "ms/instance")
	b.ReportMetric(runMS/n/floorMS, "instance/floor")
}
