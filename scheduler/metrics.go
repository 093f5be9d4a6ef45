package scheduler

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// The scheduler's Prometheus metrics (docs/operations.md lists them) come
// in two kinds.
//
// What happens (runs and tries ending, dispatches, latencies, turn and
// commit times, DAG loads) is counted by the loop as it happens, into
// counters and histograms whose updates are a few atomic operations: cheap
// enough for the hot path, and safe to read from a scrape at any time.
//
// What is (runs and task instances by state, queue depth, pool usage,
// callbacks in flight) is state the loop owns. Keeping gauges of it up to
// date would mean a hook at every state change, or a walk over every
// active task instance each turn; instead a scrape asks the loop for a
// snapshot, as an API call does (Scheduler.do), and pays one walk over the
// active runs itself. The workers, and the live workers of each queue, are
// read from the registry of their entries (workers.go), which needs no
// loop.

// snapshotTimeout bounds how long a scrape waits for the loop; the state
// gauges are left out of a scrape that the loop does not answer in time.
const snapshotTimeout = 3 * time.Second

var (
	// latencyBuckets cover a scheduler hop (well under 3 ms on a healthy
	// installation) up to a task that waited minutes for a slot.
	latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}
	// turnBuckets cover a loop turn or a store commit (an fsync is about
	// 0.25 ms).
	turnBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	// loadBuckets cover a DAG folder scan up to parsing a large folder.
	loadBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	// durationBuckets cover tries and runs: a second to a day.
	durationBuckets = []float64{.01, .1, .5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 24 * 3600}
)

// Label values of the DAG folder load histogram.
const (
	loadFull        = "full"        // the first load: every file parsed
	loadIncremental = "incremental" // a reload that parsed the changed files
	loadUnchanged   = "unchanged"   // a reload that found no file changed
)

// metrics holds the scheduler's instruments.
type metrics struct {
	turnDuration    prometheus.Histogram
	commitDuration  prometheus.Histogram
	dispatchLatency prometheus.Histogram
	queueWait       prometheus.Histogram
	taskToTask      prometheus.Histogram
	tryDuration     *prometheus.HistogramVec
	runDuration     *prometheus.HistogramVec
	triesFinished   *prometheus.CounterVec
	runsFinished    *prometheus.CounterVec
	published       prometheus.Counter
	publishErrors   prometheus.Counter
	retries         prometheus.Counter
	cacheHits       prometheus.Counter
	zombies         *prometheus.CounterVec
	lost            prometheus.Counter
	dagLoad         *prometheus.HistogramVec
	dagLoadErrors   prometheus.Counter
	dagLastLoad     prometheus.Gauge
	dagFilesParsed  prometheus.Counter

	// readyAt is when each task instance waiting to be dispatched became
	// ready (scheduled). Owned by the loop; an entry goes when the task's
	// assignment is published or its run ends, so it holds at most the
	// active task instances.
	readyAt map[tiKey]time.Time
	// loopUp is set while the loop goroutine runs, so that a scrape asks
	// it for a snapshot only when it can answer.
	loopUp atomic.Bool
}

func newMetrics() *metrics {
	m := &metrics{
		turnDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kiln_scheduler_turn_duration_seconds",
			Help:    "Time of one scheduler loop turn once it woke: applying the waiting events and commands, time-driven work, scheduling and dispatch, the store commit, publishing assignments and acking events.",
			Buckets: turnBuckets,
		}),
		commitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kiln_store_commit_duration_seconds",
			Help:    "Time of the store transaction (fsync included) that commits the writes of one scheduler loop turn.",
			Buckets: turnBuckets,
		}),
		dispatchLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kiln_dispatch_latency_seconds",
			Help:    "Time from a task instance becoming ready to run (its upstreams done, its retry delay or sensor poke interval over) to its assignment being stored in the KILN_TASKS stream; includes waiting for pool slots and max_active_tasks.",
			Buckets: latencyBuckets,
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kiln_task_queue_wait_seconds",
			Help:    "Time from a try being queued (its assignment created) to the scheduler receiving the worker's started event: time in the worker queue plus event delivery.",
			Buckets: latencyBuckets,
		}),
		taskToTask: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kiln_task_to_task_latency_seconds",
			Help:    "Time from the scheduler recording the end of a task instance's last upstream to receiving the started event of the task instance's first try (first poke of a sensor); task instances with upstreams only.",
			Buckets: latencyBuckets,
		}),
		tryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_try_duration_seconds",
			Help:    "Duration of task tries that started, from the worker's start to the scheduler recording the end, by final state of the try.",
			Buckets: durationBuckets,
		}, []string{"state"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_run_duration_seconds",
			Help:    "Duration of DAG runs that started, from start to end, by final state.",
			Buckets: durationBuckets,
		}, []string{"state"}),
		triesFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_tries_finished_total",
			Help: "Task tries that ended, by final state (success, failed, skipped); a failed try may be retried.",
		}, []string{"state"}),
		runsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_runs_finished_total",
			Help: "DAG runs that ended, by final state; a cleared run that ends again counts again.",
		}, []string{"state"}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_assignments_published_total",
			Help: "Assignments (task tries, sensor pokes, callbacks) stored in the KILN_TASKS stream.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_assignment_publish_errors_total",
			Help: "Assignments that failed to publish; the lost-assignment check sends them again.",
		}),
		cacheHits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_task_cache_hits_total",
			Help: "Task instances that succeeded from the task cache without running.",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_task_retries_total",
			Help: "Failed tries that put their task instance up for retry.",
		}),
		zombies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kiln_zombie_tries_total",
			Help: "Running tries the scheduler failed itself: reason heartbeat when the worker stopped sending heartbeats, timeout when the worker did not enforce the task's timeout.",
		}, []string{"reason"}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_assignments_lost_total",
			Help: "Queued tries whose assignment was gone before any worker started it, queued again as a new try.",
		}),
		dagLoad: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kiln_dag_folder_load_duration_seconds",
			Help:    "Time to load the DAGs folder, by kind: full (the first load, every file parsed), incremental (a reload that parsed changed files), unchanged (a reload that found no change).",
			Buckets: loadBuckets,
		}, []string{"kind"}),
		dagLoadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_dag_folder_load_errors_total",
			Help: "Loads of the DAGs folder that failed as a whole (an unreadable folder); errors in files are import errors.",
		}),
		dagLastLoad: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kiln_dag_folder_last_load_timestamp_seconds",
			Help: "Unix time the last load of the DAGs folder ended without error; loads run every 2 s, and /healthz fails when none ended for a minute.",
		}),
		dagFilesParsed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kiln_dag_files_parsed_total",
			Help: "DAG files parsed, new or changed.",
		}),
		readyAt: map[tiKey]time.Time{},
	}
	// Known label values start at zero, so that rate() sees their first
	// increase.
	for _, st := range []store.TaskState{store.TaskSuccess, store.TaskFailed, store.TaskSkipped} {
		m.triesFinished.WithLabelValues(string(st))
		m.tryDuration.WithLabelValues(string(st))
	}
	for _, st := range []store.RunState{store.RunSuccess, store.RunFailed} {
		m.runsFinished.WithLabelValues(string(st))
		m.runDuration.WithLabelValues(string(st))
	}
	m.zombies.WithLabelValues("heartbeat")
	m.zombies.WithLabelValues("timeout")
	for _, k := range []string{loadFull, loadIncremental, loadUnchanged} {
		m.dagLoad.WithLabelValues(k)
	}
	return m
}

func (m *metrics) instruments() []prometheus.Collector {
	return []prometheus.Collector{
		m.turnDuration, m.commitDuration, m.dispatchLatency, m.queueWait, m.taskToTask,
		m.tryDuration, m.runDuration, m.triesFinished, m.runsFinished, m.published,
		m.publishErrors, m.retries, m.cacheHits, m.zombies, m.lost, m.dagLoad, m.dagLoadErrors, m.dagLastLoad, m.dagFilesParsed,
	}
}

// loopRunning marks the loop as running until the returned func is called.
func (m *metrics) loopRunning() func() {
	m.loopUp.Store(true)
	return func() { m.loopUp.Store(false) }
}

// taskReady notes that a task instance became ready to be dispatched.
func (m *metrics) taskReady(ti *store.TaskInstance, now time.Time) {
	m.readyAt[tiKey{ti.DAGID, ti.RunID, ti.Key()}] = now
}

// taskReadyAt is taskReady for the task instance of key k.
func (m *metrics) taskReadyAt(k tiKey, now time.Time) { m.readyAt[k] = now }

// assignmentPublished counts a published assignment and observes the
// dispatch latency of a task try.
func (m *metrics) assignmentPublished(k wire.TryKey, now time.Time) {
	m.published.Inc()
	ik := tiKey{k.DAGID, k.RunID, k.TaskID}
	if at, ok := m.readyAt[ik]; ok {
		m.dispatchLatency.Observe(seconds(now.Sub(at)))
		delete(m.readyAt, ik)
	}
}

// taskStarted observes how long a try waited for a worker and, for the
// first try of a task with upstreams, the task-to-task latency.
func (m *metrics) taskStarted(ar *activeRun, ti *store.TaskInstance, now time.Time) {
	if ti.QueuedAt != nil {
		m.queueWait.Observe(seconds(now.Sub(*ti.QueuedAt)))
	}
	if ti.TryNumber != 1 || ti.Pokes > 1 {
		return // a retry, a clear or a sensor's later poke: not a hop
	}
	t := ar.dag.Task(ti.TaskID)
	if t == nil || len(t.DependsOn) == 0 {
		return
	}
	var last time.Time
	for _, up := range t.DependsOn {
		if u := ar.tis[up]; u != nil && u.EndDate != nil && u.EndDate.After(last) {
			last = *u.EndDate
		}
	}
	if !last.IsZero() {
		m.taskToTask.Observe(seconds(now.Sub(last)))
	}
}

// tryEnded counts a try that ended (nil: none in flight).
func (m *metrics) tryEnded(tr *store.Try) {
	if tr == nil {
		return
	}
	state := string(tr.State)
	m.triesFinished.WithLabelValues(state).Inc()
	if tr.StartDate != nil && tr.EndDate != nil {
		m.tryDuration.WithLabelValues(state).Observe(seconds(tr.EndDate.Sub(*tr.StartDate)))
	}
}

// runEnded counts a run that ended, once its end is committed, and drops
// what was kept about its task instances.
func (m *metrics) runEnded(ar *activeRun) {
	r := ar.run
	m.runsFinished.WithLabelValues(string(r.State)).Inc()
	if r.StartDate != nil && r.EndDate != nil {
		m.runDuration.WithLabelValues(string(r.State)).Observe(seconds(r.EndDate.Sub(*r.StartDate)))
	}
	if len(m.readyAt) > 0 {
		for id := range ar.tis {
			delete(m.readyAt, tiKey{r.DAGID, r.RunID, id})
		}
	}
}

func seconds(d time.Duration) float64 { return max(d, 0).Seconds() }

// loadDAGs loads the DAGs folder, times the load and notes its outcome
// for Health.
func (s *Scheduler) loadDAGs(ctx context.Context, first bool) (*dag.Set, error) {
	start := time.Now()
	set, err := s.cfg.Folder.Load(ctx)
	if err != nil && ctx.Err() != nil {
		return nil, err // stopping: not a failed load
	}
	if err != nil {
		s.metrics.dagLoadErrors.Inc()
		s.folderLoaded(time.Time{}, err)
		return nil, err
	}
	now := s.clock.Now()
	if s.versions != nil {
		// Stored before the loop sees them: a run names only a stored
		// version.
		if err := s.versions.keep(ctx, set, now); err != nil {
			s.metrics.dagLoadErrors.Inc()
			s.folderLoaded(time.Time{}, err)
			return nil, err
		}
	}
	s.folderLoaded(now, nil)
	s.metrics.dagLastLoad.Set(float64(now.UnixNano()) / 1e9)
	kind := loadIncremental
	switch {
	case first:
		kind = loadFull
	case set.Parsed == 0:
		kind = loadUnchanged
	}
	s.metrics.dagLoad.WithLabelValues(kind).Observe(time.Since(start).Seconds())
	s.metrics.dagFilesParsed.Add(float64(set.Parsed))
	return set, nil
}

// registerMetrics registers the scheduler's collector with reg.
func (s *Scheduler) registerMetrics(reg prometheus.Registerer) error {
	return reg.Register(collector{s})
}

// Descriptions of the gauges a scrape reads from a snapshot.
var (
	descUp = prometheus.NewDesc("kiln_scheduler_up",
		"1 when the scheduler loop runs, the store and NATS are up and the DAGs folder reloads (as /healthz), else 0.", nil, nil)
	descDAGs = prometheus.NewDesc("kiln_dags",
		"DAGs loaded (a file with errors counts with its last good version), by paused.", []string{"paused"}, nil)
	descImportErrors = prometheus.NewDesc("kiln_dag_import_errors",
		"DAG files that do not load as they are now.", nil, nil)
	descRuns = prometheus.NewDesc("kiln_runs_active",
		"DAG runs not yet ended, by state (queued, running).", []string{"state"}, nil)
	descTIs = prometheus.NewDesc("kiln_task_instances_active",
		"Task instances of the runs not yet ended, by state.", []string{"state"}, nil)
	descQueue = prometheus.NewDesc("kiln_queue_depth",
		"Task instances queued on a worker queue: assignment published, no worker has reported starting it.", []string{"queue"}, nil)
	descQueueWait = prometheus.NewDesc("kiln_queue_oldest_wait_seconds",
		"How long the task instance queued longest on a worker queue has waited for a worker to start it; 0 when none waits.", []string{"queue"}, nil)
	descQueueWorkers = prometheus.NewDesc("kiln_queue_workers",
		"Live workers pulling a worker queue: alive and not draining. 0 while kiln_queue_depth is above 0: the queue's tasks wait for a worker that is not there.", []string{"queue"}, nil)
	descWorkers = prometheus.NewDesc("kiln_workers",
		fmt.Sprintf("Workers by state: alive (their entry in %s written in the last %v), or lost (not written since, and not deleted by a graceful stop; counted for %v).",
			wire.WorkersBucket, wire.WorkerLostAfter, wire.WorkerForgetAfter), []string{"state"}, nil)
	descPoolSlots = prometheus.NewDesc("kiln_pool_slots",
		"Slots of a pool.", []string{"pool"}, nil)
	descPoolUsed = prometheus.NewDesc("kiln_pool_slots_used",
		"Slots of a pool held by queued and running task instances.", []string{"pool"}, nil)
	descCallbacks = prometheus.NewDesc("kiln_callbacks_active",
		"Callback stages in flight, by state (queued, running).", []string{"state"}, nil)
	descBackfills = prometheus.NewDesc("kiln_backfills_active",
		"Backfills running.", nil, nil)

	snapshotDescs = []*prometheus.Desc{descUp, descDAGs, descImportErrors, descRuns, descTIs,
		descQueue, descQueueWait, descQueueWorkers, descWorkers, descPoolSlots, descPoolUsed, descCallbacks, descBackfills}
)

var (
	activeRunStates = []store.RunState{store.RunQueued, store.RunRunning}
	taskStates      = []store.TaskState{store.TaskNone, store.TaskScheduled, store.TaskQueued,
		store.TaskRunning, store.TaskUpForRetry, store.TaskUpForReschedule, store.TaskSuccess,
		store.TaskFailed, store.TaskSkipped, store.TaskUpstreamFailed}
)

// collector is the scheduler's prometheus.Collector: its instruments and
// the gauges of a snapshot of the loop's state.
type collector struct{ s *Scheduler }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, i := range c.s.metrics.instruments() {
		i.Describe(ch)
	}
	for _, d := range snapshotDescs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, i := range s.metrics.instruments() {
		i.Collect(ch)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	s.viewMu.RLock()
	paused := 0
	for _, info := range s.view.infos {
		if info.Paused {
			paused++
		}
	}
	gauge(descDAGs, len(s.view.infos)-paused, "false")
	gauge(descDAGs, paused, "true")
	gauge(descImportErrors, len(s.view.importErrors))
	s.viewMu.RUnlock()
	workers := s.Workers()
	states := map[string]int{WorkerAlive: 0, WorkerLost: 0}
	for _, w := range workers {
		states[w.State]++
	}
	for st, n := range states {
		gauge(descWorkers, n, st)
	}

	var sn *snapshot
	if s.metrics.loopUp.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), snapshotTimeout)
		v, err := s.do(ctx, func(time.Time) (any, error) { return s.snapshot(), nil })
		cancel()
		if err != nil {
			s.log.Warn("metrics: reading the scheduler's state", "err", err)
		} else {
			sn = v.(*snapshot)
		}
	}
	up := 0
	if sn != nil && s.cfg.NATS != nil && s.Health() == nil {
		up = 1
	}
	gauge(descUp, up)
	if sn == nil {
		return
	}
	for _, st := range activeRunStates {
		gauge(descRuns, sn.runs[st], string(st))
	}
	for _, st := range taskStates {
		gauge(descTIs, sn.tis[st], string(st))
	}
	for _, q := range s.queueTable(sn.waits, sn.at, workers) {
		gauge(descQueue, q.Queued, q.Name)
		ch <- prometheus.MustNewConstMetric(descQueueWait, prometheus.GaugeValue, q.OldestWait.Seconds(), q.Name)
		gauge(descQueueWorkers, len(q.Workers), q.Name)
	}
	for p, n := range sn.poolSlots {
		gauge(descPoolSlots, n, p)
		gauge(descPoolUsed, sn.poolUsed[p], p)
	}
	for _, st := range []store.TaskState{store.TaskQueued, store.TaskRunning} {
		gauge(descCallbacks, sn.callbacks[st], string(st))
	}
	gauge(descBackfills, sn.backfills)
}

// snapshot is the loop's state as the gauges show it.
type snapshot struct {
	at        time.Time // the loop's clock when it was taken
	runs      map[store.RunState]int
	tis       map[store.TaskState]int
	waits     map[string]queueWait // by queue
	poolSlots map[string]int
	poolUsed  map[string]int
	callbacks map[store.TaskState]int
	backfills int
}

// snapshot counts the loop's state; it runs on the loop.
func (s *Scheduler) snapshot() *snapshot {
	sn := &snapshot{
		at:        s.clock.Now(),
		runs:      map[store.RunState]int{},
		tis:       map[store.TaskState]int{},
		waits:     map[string]queueWait{},
		poolSlots: map[string]int{store.DefaultPool: s.poolSize(store.DefaultPool)},
		poolUsed:  map[string]int{},
		callbacks: map[store.TaskState]int{},
		backfills: len(s.backfills),
	}
	for name, slots := range s.pools {
		sn.poolSlots[name] = slots
	}
	for _, ar := range s.active {
		sn.runs[ar.run.State]++
		for _, ti := range ar.tis {
			if expanded(ti) {
				continue // its instances count, not the task as a whole
			}
			sn.tis[ti.State]++
			countWaiting(sn.waits, ti)
			switch ti.State {
			case store.TaskQueued, store.TaskRunning:
				sn.poolUsed[ti.Pool] += ti.PoolSlots
				if _, ok := sn.poolSlots[ti.Pool]; !ok {
					sn.poolSlots[ti.Pool] = s.poolSize(ti.Pool)
				}
			}
		}
	}
	for _, f := range s.flights {
		if f.callback {
			sn.callbacks[f.try.State]++
		}
	}
	return sn
}
