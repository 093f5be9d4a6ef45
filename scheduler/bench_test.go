package scheduler_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// The throughput benchmarks run the standalone shape: embedded NATS, the
// scheduler, one worker with 8 slots, every task `true` through the real
// shell plugin process. Each op is one run, measured from its creation to
// its end as the scheduler stored them.

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

func benchRuns(b *testing.B, dagID, src string, timeout time.Duration) {
	e := start(b, map[string]string{dagID: src}, options{workers: 1, slots: 8})
	// A warm-up run starts the plugin process.
	e.waitRun(e.trigger(dagID, nil), timeout)
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		r := e.waitRun(e.trigger(dagID, nil), timeout)
		if r.State != store.RunSuccess {
			b.Fatalf("run %s", r.State)
		}
		total += r.EndDate.Sub(r.QueuedAt)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/run")
}

// BenchmarkChain100 is a chain of 100 tasks, trigger to success (target
// under 0.3 s: under 3 ms per task-to-task hop).
func BenchmarkChain100(b *testing.B) { benchRuns(b, "chain", chainDAG(100), time.Minute) }

// BenchmarkIndependent1000 is 1,000 independent tasks (target under 3 s).
func BenchmarkIndependent1000(b *testing.B) { benchRuns(b, "fan", fanDAG(1000), 2*time.Minute) }
