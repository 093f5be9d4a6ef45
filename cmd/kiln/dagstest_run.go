package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/secrets"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/registry"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/worker"
)

// testSlots are the task slots of the in-process worker of `kiln dags
// test`: as many as a DAG runs at once by default (max_active_tasks), so
// that the DAG's own limits, not the worker, decide what runs in parallel.
const testSlots = 16

// testRun runs one manual run of g as req asks, with the scheduler, a
// worker and the plugins in this process, on a throw-away data folder and
// an embedded NATS server on a free loopback port, and reports it;
// started is when the command started.
func testRun(ctx context.Context, started time.Time, g *dag.DAG, req scheduler.TriggerRequest, reg *registry.Registry, f dagsTestFlags, stdout io.Writer) (err error) {
	ctx, stopSignals := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	logPluginProblems(logger, reg)

	tmp, err := os.MkdirTemp("", "kiln-dags-test-")
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("creating the throw-away data folder: %v", err)}
	}
	defer os.RemoveAll(tmp)
	ns, access, err := startEmbeddedNATS(embeddedNATSFlags{listen: "127.0.0.1:0"}, nil, tmp, logger)
	if err != nil {
		return err
	}
	defer ns.Shutdown()
	st, err := openStore(tmp, "")
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Commit(ctx, testSetup(g)); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	nc, err := connectNATS(access.url, "kiln-dags-test", access.scheduler...)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer nc.Close()
	sched, err := scheduler.New(scheduler.Config{
		Store:   st,
		NATS:    nc,
		Folder:  dag.NewFolder(loadOptions(reg), g.File), // this DAG only
		DataDir: tmp,
		Logger:  logger,
		Secrets: secrets.Source{Dir: f.secrets},
	})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	plugins := pluginHost(reg, logger)
	defer plugins.Close()
	w, err := worker.New(worker.Config{
		NATSURL:     access.url,
		NATSOptions: access.workers,
		Name:        wire.WorkerNameFrom(fmt.Sprintf("%s-%d-test", hostname(), os.Getpid())),
		Queues:      testQueues(g),
		Slots:       testSlots,
		Runner:      plugins,
		DataDir:     filepath.Join(tmp, "work"),
		Logger:      logger,
	})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}

	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// stopped says why the scheduler or the worker stopped by itself;
	// nothing can go on without either.
	stopped := make(chan error, 2)
	for name, run := range map[string]func(context.Context) error{"scheduler": sched.Run, "worker": w.Run} {
		wg.Go(func() {
			err := run(runCtx)
			if runCtx.Err() == nil {
				stopped <- fmt.Errorf("the %s stopped: %v", name, err)
				cancel()
			}
		})
	}
	defer func() {
		cancel()
		if err != nil {
			plugins.Close() // kills what still runs, rather than wait for it
		}
		wg.Wait()
	}()

	cur := st.ChangesAfter(st.LastChange())
	rep := &testReporter{w: stdout, quiet: f.asJSON, g: g, st: st, logs: sched, start: started, seen: map[string]seenTask{}}
	rep.keep, _ = scheduler.UpstreamClosure(g, req.Tasks) // checked by the flags
	rep.run, err = sched.Trigger(runCtx, g.ID, req)
	if err == nil {
		if !f.asJSON {
			rep.header()
		}
		err = rep.follow(runCtx, cur)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return &exitError{code: 1, msg: "interrupted: the run was stopped"}
	case runCtx.Err() != nil:
		return &exitError{code: 1, msg: (<-stopped).Error()}
	default:
		return &exitError{code: 1, msg: err.Error()}
	}
	return reportTestRun(stdout, st, sched, g, rep.run, rep.callbacks, f.asJSON, time.Since(started))
}

// testSetup is what the throw-away store holds before the scheduler
// starts: the DAG paused, so that its schedule adds no run beside the one
// tested, and every pool its tasks name, with default_pool's size, which a
// server would have had to be given (docs/cli.md#kiln-pools-set).
func testSetup(g *dag.DAG) *store.Batch {
	b := &store.Batch{}
	b.PutDAGState(&store.DAGState{DAGID: g.ID, Paused: true, Seen: true})
	for _, t := range g.Tasks {
		if t.Pool != store.DefaultPool {
			b.PutPool(store.Pool{Name: t.Pool, Slots: store.DefaultPoolSlots})
		}
	}
	return b
}

// testQueues are the queues the in-process worker pulls: the default one
// and every one the DAG's tasks name, so that each task finds a worker.
func testQueues(g *dag.DAG) []string {
	queues := []string{dag.DefaultQueue}
	for _, t := range g.Tasks {
		if !slices.Contains(queues, t.Queue) {
			queues = append(queues, t.Queue)
		}
	}
	return queues
}

// testReporter prints a run's progress as the store's change feed tells
// of it: each task's state as it changes, and each try's log when the try
// ends.
type testReporter struct {
	w     io.Writer
	quiet bool // --json: nothing but the JSON at the end
	g     *dag.DAG
	st    *store.Store
	logs  logPaths
	start time.Time
	run   *store.Run
	seen  map[string]seenTask
	// keep are the tasks --task asked for and their upstream; nil for all.
	keep map[string]bool
	// callbacks are the ids of the callback stages seen running, in the
	// order first seen.
	callbacks []string
}

type seenTask struct {
	state store.TaskState
	try   int
}

func (r *testReporter) header() {
	zone := r.g.Location.String()
	fmt.Fprintf(r.w, "testing DAG %s: run %s\n  logical date   %s\n  data interval  %s\n  params         %s\n",
		r.g.ID, r.run.RunID, fmtTimeZoned(&r.run.LogicalDate, zone), fmtInterval(r.run.DataIntervalStart, r.run.DataIntervalEnd, zone), keyValues(r.run.Params))
	if r.keep == nil {
		return
	}
	var runs, skips []string
	for _, t := range r.g.Tasks {
		if r.keep[t.ID] {
			runs = append(runs, t.ID)
		} else {
			skips = append(skips, t.ID)
		}
	}
	fmt.Fprintf(r.w, "  tasks          %s", strings.Join(runs, ", "))
	if len(skips) > 0 {
		fmt.Fprintf(r.w, " (skipped, not needed by --task: %s)", strings.Join(skips, ", "))
	}
	fmt.Fprintln(r.w)
}

// follow reports the run until it and its callbacks have ended; r.run is
// then the run as it ended.
func (r *testReporter) follow(ctx context.Context, cur *store.ChangeCursor) error {
	var buf []store.Change
	for {
		var err error
		buf, err = cur.Read(buf[:0])
		if err != nil && !errors.Is(err, store.ErrChangesLost) {
			return err
		}
		concerns := err != nil // lost changes: look again
		for _, c := range buf {
			if c.RunID != r.run.RunID || c.DAGID != r.run.DAGID {
				continue
			}
			concerns = true
			if id, _, _ := store.SplitInstanceKey(c.TaskID); c.Kind == store.ChangeTry && r.g.Task(id) == nil {
				r.callback(c)
			}
		}
		if concerns {
			done, err := r.sync()
			if err != nil || done {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cur.Wait():
		}
	}
}

// sync reads the run and its task instances, reports what changed since
// the last look, and tells whether the run and its callbacks have ended.
func (r *testReporter) sync() (bool, error) {
	run, err := r.st.GetRun(r.run.DAGID, r.run.RunID)
	if err != nil {
		return false, err
	}
	r.run = run
	tis, err := r.st.TaskInstances(run.DAGID, run.RunID)
	if err != nil {
		return false, err
	}
	// Each task, then its mapped instances in index order.
	byID := make(map[string][]*store.TaskInstance, len(r.g.Tasks))
	for _, ti := range tis {
		byID[ti.TaskID] = append(byID[ti.TaskID], ti)
	}
	for _, t := range r.g.Tasks {
		its := byID[t.ID]
		slices.SortFunc(its, func(a, b *store.TaskInstance) int { return cmp.Compare(a.MapIndex, b.MapIndex) })
		for _, ti := range its {
			r.task(ti)
		}
	}
	if !run.State.Finished() {
		return false, nil
	}
	open, err := r.st.OpenCallbacks()
	if err != nil {
		return false, err
	}
	for _, tr := range open {
		if tr.DAGID == run.DAGID && tr.RunID == run.RunID {
			return false, nil
		}
	}
	return true, nil
}

// task reports a task instance whose state or try changed; a try that
// ended is followed by its log.
func (r *testReporter) task(ti *store.TaskInstance) {
	k := ti.Key()
	prev := r.seen[k]
	if prev.state == ti.State && prev.try == ti.TryNumber {
		return
	}
	r.seen[k] = seenTask{ti.State, ti.TryNumber}
	if r.quiet || r.keep != nil && !r.keep[ti.TaskID] {
		return // the header named the tasks --task leaves out
	}
	if ti.MapLength > 0 { // a mapped task as a whole: its instances have the tries
		r.line(k, string(ti.State), strings.TrimSuffix(instanceCount(ti.MapLength)+"; "+ti.Error, "; "))
		return
	}
	switch ti.State {
	case store.TaskNone, store.TaskScheduled, store.TaskQueued:
		return
	case store.TaskRunning:
		r.line(k, string(ti.State), fmt.Sprintf("try %d", ti.TryNumber))
		return
	case store.TaskSuccess, store.TaskFailed, store.TaskUpForRetry:
		if ti.TryNumber > 0 {
			if prev != (seenTask{store.TaskRunning, ti.TryNumber}) {
				// It ran between two looks, or so fast that its start
				// was committed with its end: it did run.
				r.line(k, string(store.TaskRunning), fmt.Sprintf("try %d", ti.TryNumber))
			}
			r.tryEnded(ti)
			return
		}
	}
	r.line(k, string(ti.State), ti.Error)
}

// tryEnded reports the try of ti that just ended, with its log.
func (r *testReporter) tryEnded(ti *store.TaskInstance) {
	k := ti.Key()
	tr, err := r.st.GetTry(ti.DAGID, ti.RunID, k, ti.TryNumber)
	if err != nil {
		r.line(k, string(ti.State), ti.Error)
		return
	}
	r.line(k, string(ti.State), tryDetail(tr))
	r.printLog(wire.TryKey{DAGID: ti.DAGID, RunID: ti.RunID, TaskID: k, Try: ti.TryNumber})
}

// callback notes a change of a callback stage's try, and reports one
// that ended.
func (r *testReporter) callback(c store.Change) {
	if !slices.Contains(r.callbacks, c.TaskID) {
		r.callbacks = append(r.callbacks, c.TaskID)
	}
	if r.quiet || !store.TaskState(c.State).Finished() {
		return
	}
	detail := fmt.Sprintf("callback, try %d", c.Try)
	if tr, err := r.st.GetTry(c.DAGID, c.RunID, c.TaskID, c.Try); err == nil {
		detail = "callback, " + tryDetail(tr)
	}
	r.line(c.TaskID, c.State, detail)
	r.printLog(wire.TryKey{DAGID: c.DAGID, RunID: c.RunID, TaskID: c.TaskID, Try: c.Try})
}

// tryDetail says which try it was, how long it took and why it failed.
func tryDetail(tr *store.Try) string {
	s := fmt.Sprintf("try %d", tr.Number)
	if d := ui.NewTry(tr).DurationS; d != nil {
		s += " in " + fmtDuration(d)
	}
	if tr.Error != "" {
		s += ": " + tr.Error
	}
	return s
}

func (r *testReporter) line(task, state, detail string) {
	s := fmt.Sprintf("[%7.2fs] %-*s %-15s %s", time.Since(r.start).Seconds(), r.width(), task, state, detail)
	fmt.Fprintln(r.w, strings.TrimRight(s, " "))
}

// width is that of the longest task id, with its highest map index for
// a mapped task, so that states line up.
func (r *testReporter) width() int {
	n := 0
	for _, t := range r.g.Tasks {
		w := len(t.ID)
		if t.Map != nil {
			w = len(store.InstanceKey(t.ID, t.Map.MaxLength-1))
		}
		n = max(n, w)
	}
	return n
}

func (r *testReporter) printLog(k wire.TryKey) {
	b, err := os.ReadFile(r.logs.LogPath(k))
	if err != nil || len(b) == 0 {
		return
	}
	for line := range strings.Lines(string(b)) {
		fmt.Fprintf(r.w, "    | %s", line)
	}
	if b[len(b)-1] != '\n' {
		fmt.Fprintln(r.w)
	}
}
