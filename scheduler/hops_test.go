package scheduler_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/worker"
)

// BenchmarkChainHops takes the hops of the 100-task chain apart
// (docs/performance.md). It times every try along its path: when the
// scheduler's turn that queued it ran (the try's stored queue time), when
// its assignment went over NATS (seen by a plain subscriber on kiln.>),
// when the worker began the try and when it sent the finished event (the
// times of its started and finished events), and when the worker called
// the plugin host and got the result back. It reports the median of each
// part of a hop, in milliseconds, and the store's commits.
func BenchmarkChainHops(b *testing.B) {
	reg := prometheus.NewRegistry()
	tr := &tracer{tries: map[string]*tryTimes{}}
	e := start(b, map[string]string{"chain": chainDAG(100)}, options{workers: 1, slots: 8, metrics: reg,
		wrap: func(r worker.Runner) worker.Runner { return timedRunner{r, tr} }})
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Subscribe("kiln.>", tr.onMsg); err != nil {
		b.Fatal(err)
	}
	e.waitRun(e.trigger("chain", nil), time.Minute) // starts the plugin process
	commits0 := histogram(b, reg, "kiln_store_commit_duration_seconds")
	var parts hopParts
	var fl floor
	b.ResetTimer()
	for b.Loop() {
		fl.sample(b, floorSamples)
		r := e.waitRun(e.trigger("chain", nil), time.Minute)
		if r.State != store.RunSuccess {
			b.Fatalf("run %s", r.State)
		}
		b.StopTimer()
		parts.add(b, e, tr, r)
		b.StartTimer()
	}
	b.StopTimer()
	commits := histogram(b, reg, "kiln_store_commit_duration_seconds")
	n := commits.count - commits0.count
	b.ReportMetric(fl.median(), "floor-ms")
	parts.report(b)
	b.ReportMetric(1000*(commits.sum-commits0.sum)/float64(n), "commit-ms")
	b.ReportMetric(float64(n)/float64(len(parts.hop)), "commits/hop")
}

// tryTimes are the moments of one try's path.
type tryTimes struct {
	assigned         time.Time // the assignment went over NATS
	began, finished  time.Time // the worker's started and finished events
	runBegin, runEnd time.Time // around the worker's Runner.Run
}

// tracer collects tryTimes by try key (wire.TryKey.String).
type tracer struct {
	mu    sync.Mutex
	tries map[string]*tryTimes
}

// set records a moment of a try the first time it is seen: a publish
// retried is stored once.
func (tr *tracer) set(key string, at time.Time, field func(*tryTimes) *time.Time) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	t := tr.tries[key]
	if t == nil {
		t = &tryTimes{}
		tr.tries[key] = t
	}
	if f := field(t); f.IsZero() {
		*f = at
	}
}

func (tr *tracer) get(key string) tryTimes {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if t := tr.tries[key]; t != nil {
		return *t
	}
	return tryTimes{}
}

// onMsg stamps assignments as they go over NATS, and reads the times the
// worker put in its started and finished events.
func (tr *tracer) onMsg(m *nats.Msg) {
	at := time.Now()
	var ev wire.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	key := ev.TryKey.String()
	switch {
	case strings.HasPrefix(m.Subject, "kiln.task."):
		tr.set(key, at, func(t *tryTimes) *time.Time { return &t.assigned })
	case ev.Kind == wire.EventStarted:
		tr.set(key, ev.Time, func(t *tryTimes) *time.Time { return &t.began })
	case ev.Kind == wire.EventFinished:
		tr.set(key, ev.Time, func(t *tryTimes) *time.Time { return &t.finished })
	}
}

// timedRunner is the worker's real runner, timed.
type timedRunner struct {
	worker.Runner
	tr *tracer
}

func (r timedRunner) Run(ctx context.Context, plugin string, req host.Request, log io.Writer) (host.Result, error) {
	begin := time.Now()
	res, err := r.Runner.Run(ctx, plugin, req, log)
	end := time.Now()
	r.tr.set(req.Try, begin, func(t *tryTimes) *time.Time { return &t.runBegin })
	r.tr.set(req.Try, end, func(t *tryTimes) *time.Time { return &t.runEnd })
	return res, err
}

// hopParts are the parts of the hops to tasks 1 to 99 of the chain runs:
// from the worker sending the previous task's finished event to its
// sending this one's.
type hopParts struct {
	hop      []time.Duration
	wake     []time.Duration // previous finished event sent → the turn that queued the task
	dispatch []time.Duration // that turn → the assignment on NATS: scheduling, commit, publish
	pickup   []time.Duration // assignment on NATS → the worker begins the try
	ack      []time.Duration // → the worker calls the plugin host: ack and started event confirmed
	run      []time.Duration // the plugin host's Run: gRPC, the plugin, /bin/sh -c true
	after    []time.Duration // Run returned → the worker sends the finished event
}

func (p *hopParts) add(b *testing.B, e *env, tr *tracer, r *store.Run) {
	tis, err := e.st.TaskInstances(r.DAGID, r.RunID)
	if err != nil {
		b.Fatal(err)
	}
	queued := map[string]time.Time{}
	for _, ti := range tis {
		queued[ti.TaskID] = *ti.QueuedAt
	}
	key := func(i int) string {
		return wire.TryKey{DAGID: r.DAGID, RunID: r.RunID, TaskID: fmt.Sprintf("t%03d", i), Try: 1}.String()
	}
	for i := 1; i < 100; i++ {
		prev, t := tr.get(key(i-1)), tr.get(key(i))
		for _, at := range []time.Time{prev.finished, t.assigned, t.began, t.runBegin, t.runEnd, t.finished} {
			if at.IsZero() {
				b.Fatalf("try %s: not every moment seen: %+v", key(i), t)
			}
		}
		q := queued[fmt.Sprintf("t%03d", i)]
		p.hop = append(p.hop, t.finished.Sub(prev.finished))
		p.wake = append(p.wake, q.Sub(prev.finished))
		p.dispatch = append(p.dispatch, t.assigned.Sub(q))
		p.pickup = append(p.pickup, t.began.Sub(t.assigned))
		p.ack = append(p.ack, t.runBegin.Sub(t.began))
		p.run = append(p.run, t.runEnd.Sub(t.runBegin))
		p.after = append(p.after, t.finished.Sub(t.runEnd))
	}
}

func (p *hopParts) report(b *testing.B) {
	med := func(d []time.Duration) float64 {
		s := slices.Clone(d)
		slices.Sort(s)
		return ms(s[len(s)/2])
	}
	b.ReportMetric(med(p.hop), "hop-ms")
	b.ReportMetric(med(p.wake), "1wake-ms")
	b.ReportMetric(med(p.dispatch), "2dispatch-ms")
	b.ReportMetric(med(p.pickup), "3pickup-ms")
	b.ReportMetric(med(p.ack), "4ack-ms")
	b.ReportMetric(med(p.run), "5run-ms")
	b.ReportMetric(med(p.after), "6after-ms")
}

type histogramSum struct {
	count uint64
	sum   float64
}

// histogram reads a histogram's count and sum from the registry.
func histogram(b *testing.B, g prometheus.Gatherer, name string) histogramSum {
	mfs, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			h := mf.GetMetric()[0].GetHistogram()
			return histogramSum{h.GetSampleCount(), h.GetSampleSum()}
		}
	}
	b.Fatalf("no histogram %s", name)
	return histogramSum{}
}
