package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// Config wires a scheduler to its parts.
type Config struct {
	Store   *store.Store
	NATS    *nats.Conn
	Folder  *dag.Folder // the DAGs folder, re-loaded every ReloadEvery
	DataDir string      // logs live under DataDir/logs
	Clock   Clock       // default: the real clock
	Logger  *slog.Logger

	// HeartbeatTimeout fails a running try whose worker went silent
	// (docs/dag-format.md#retries-timeouts-and-heartbeats); default 30s. Workers beat every HeartbeatTimeout/6.
	HeartbeatTimeout time.Duration
	// LogLimit caps the stored log of one try; default 16 MiB.
	LogLimit int64
	// ReloadEvery is how often the DAGs folder is checked; default 2s.
	ReloadEvery time.Duration
	// Secrets looks up the secrets DAG files refer to (.secrets.NAME in
	// env); default: KILN_SECRET_NAME in the environment only.
	Secrets SecretSource
	// Metrics, when set, gets the scheduler's Prometheus collector
	// (metrics.go; docs/operations.md lists the metrics).
	Metrics prometheus.Registerer
	// ArtifactsMaxBytes bounds the artifact store (docs/artifacts.md);
	// 0 or less: no bound but the NATS server's.
	ArtifactsMaxBytes int64
	// Replicas is how many NATS servers keep each message of Kiln's
	// streams and buckets; 0: wire.Replicas of NATS, one on a single
	// server, three on a cluster.
	Replicas int
	// ArtifactRetention, when above zero, collects the artifact store
	// shortly after the start and hourly: objects no run younger than it
	// and no live cache entry refers to go (docs/artifacts.md#retention).
	ArtifactRetention time.Duration
	// MirrorLogs, in cluster mode, copies each write to a try's log to
	// the standbys (mirror.go).
	MirrorLogs bool
}

// SecretSource finds a secret's value; see package internal/secrets.
type SecretSource interface {
	Lookup(name string) (string, error)
}

// Scheduler drives DAG runs; see the package comment.
type Scheduler struct {
	cfg     Config
	started atomic.Bool
	clock   Clock
	log     *slog.Logger
	js      jetstream.JetStream
	logs    *logStore

	cmds     chan command
	events   chan eventMsg
	sets     chan *dag.Set
	feedback chan feedback
	// sender does each committed turn's I/O off the loop (outbox.go);
	// natsSender is the same one when it runs over NATS.
	sender     sender
	natsSender *natsSender

	// view is what other goroutines read: the DAGs and their state.
	viewMu sync.RWMutex
	view   dagView

	healthMu  sync.Mutex
	healthErr error
	folder    folderHealth

	metrics *metrics

	// Everything below is owned by the loop goroutine.
	dags       map[string]*dag.DAG
	importErrs []dag.ImportError
	states     map[string]*store.DAGState
	pools      map[string]int
	active     map[runKey]*activeRun
	flights    map[wire.TryKey]*flight    // tries in flight, tasks' and callbacks' (flight.go)
	nextCron   map[string]time.Time       // when each DAG's next interval ends
	backfills  map[string]*store.Backfill // active backfills by id
	// nextBackfill is the number of the last backfill id handed out.
	nextBackfill uint64
	// datasetQueues are the dataset events each DAG scheduled on datasets
	// has not consumed, by DAG and URI; lastDatasetEvent is the id of the
	// last event recorded (datasets.go).
	datasetQueues    map[string]map[string][]store.DatasetEvent
	lastDatasetEvent uint64
	// workers are the workers heard from since the start and not lost
	// since; loaded is set once the first folder load was logged
	// (serverlog.go).
	workers map[string]bool
	loaded  bool
	// upBuf is reused for the upstream states of the instance being
	// decided (upstreamStates).
	upBuf []store.TaskState
	t     *turn
	// lazy is a turn whose commit waits for the next turn's, since
	// lazySince (turn.deferrable).
	lazy      *turn
	lazySince time.Time
	// versions stores new DAG versions; used by the goroutine loading
	// the folder (versions.go).
	versions *versionKeeper

	// objects holds the artifact store (a jetstream.ObjectStore) once
	// Run opened it; stored and registry are what the loop knows of it
	// and of the workers (artifacts.go, workers.go).
	objects  atomic.Value
	stored   *storedArtifacts
	registry *workerRegistry
}

type dagView struct {
	infos        []DAGInfo
	byID         map[string]int
	importErrors []dag.ImportError
}

// New returns a scheduler; Run starts it.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Store == nil || cfg.NATS == nil || cfg.Folder == nil || cfg.DataDir == "" {
		return nil, fmt.Errorf("scheduler: Store, NATS, Folder and DataDir are required")
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 30 * time.Second
	}
	if cfg.LogLimit <= 0 {
		cfg.LogLimit = 16 << 20
	}
	if cfg.ReloadEvery <= 0 {
		cfg.ReloadEvery = 2 * time.Second
	}
	js, err := jetstream.New(cfg.NATS)
	if err != nil {
		return nil, fmt.Errorf("scheduler: jetstream: %w", err)
	}
	s := newScheduler(cfg)
	if cfg.Metrics != nil {
		if err := s.registerMetrics(cfg.Metrics); err != nil {
			return nil, fmt.Errorf("scheduler: registering metrics: %w", err)
		}
	}
	s.js = js
	if cfg.MirrorLogs {
		s.logs.mirror = s.publishLogWrite
	}
	ns := newNATSSender(js, cfg.NATS, cfg.Clock, cfg.Logger, s.feedback, s.noteIdle)
	s.sender, s.natsSender = ns, ns
	s.healthErr = errStarting
	return s, nil
}

// newScheduler builds the loop's state; New adds the NATS side.
func newScheduler(cfg Config) *Scheduler {
	return &Scheduler{
		cfg:       cfg,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		logs:      &logStore{dir: filepath.Join(cfg.DataDir, "logs"), limit: cfg.LogLimit},
		cmds:      make(chan command),
		events:    make(chan eventMsg, 4096),
		sets:      make(chan *dag.Set, 1),
		feedback:  make(chan feedback, 64),
		dags:      map[string]*dag.DAG{},
		states:    map[string]*store.DAGState{},
		pools:     map[string]int{},
		active:    map[runKey]*activeRun{},
		flights:   map[wire.TryKey]*flight{},
		nextCron:  map[string]time.Time{},
		backfills: map[string]*store.Backfill{},
		workers:   map[string]bool{},

		datasetQueues: map[string]map[string][]store.DatasetEvent{},
		t:             newTurn(),
		metrics:       newMetrics(),
		stored:        &storedArtifacts{size: map[string]int64{}},
		registry:      newWorkerRegistry(),
	}
}

// replicas is Config.Replicas, or what the NATS deployment calls for.
func (s *Scheduler) replicas() int {
	if s.cfg.Replicas > 0 {
		return s.cfg.Replicas
	}
	return wire.Replicas(s.cfg.NATS)
}

// Run loads the DAGs, recovers the runs in flight from the store and drives
// them until ctx ends. It returns early with an error when it cannot go
// on: a commit failed, or the disk of its data folder is full
// (docs/operations.md#damaged-or-full-data-folder); a restart then
// rebuilds its state from what was committed.
func (s *Scheduler) Run(ctx context.Context) error {
	if err := wire.EnsureStreams(ctx, s.js, s.replicas()); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	versions, err := newVersionKeeper(s.cfg.Store, s.cfg.Folder)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	s.versions = versions
	set, err := s.loadDAGs(ctx, true)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	if err := s.recover(ctx, set); err != nil {
		return fmt.Errorf("scheduler: recovering: %w", err)
	}
	cons, err := wire.RenewEventConsumer(ctx, s.js)
	if err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	runCtx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	if err := s.openBuckets(runCtx, &wg); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	s.setHealth(nil)
	s.started.Store(true)
	wg.Go(func() { s.collectArtifactsEvery(runCtx) })
	wg.Go(func() { s.natsSender.run(runCtx) })
	wg.Go(func() { s.intake(runCtx, cons, stop) })
	wg.Go(func() { s.watchFolder(runCtx, set) })
	if err := s.loop(runCtx); err != nil || ctx.Err() != nil {
		return err
	}
	return context.Cause(runCtx) // intake stopped the scheduler
}

var errStarting = errors.New("scheduler starting: loading DAGs and recovering runs")

// Health reports whether the scheduler loop, the store and NATS are up,
// and the reloads of the DAGs folder neither fail nor are stuck.
func (s *Scheduler) Health() error {
	if !s.cfg.NATS.IsConnected() {
		return fmt.Errorf("NATS: not connected (%s)", s.cfg.NATS.Status())
	}
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if s.healthErr != nil {
		return s.healthErr
	}
	return s.folder.check(s.clock.Now(), s.cfg.ReloadEvery)
}

// Started reports whether the scheduler has loaded its DAGs and recovered
// its runs, since when the API can answer about them.
func (s *Scheduler) Started() bool { return s.started.Load() }

// Role is what a scheduler does in its installation.
type Role string

// RoleLeader is the scheduler that schedules: it owns the store and runs
// the loop.
const RoleLeader Role = "leader"

// Role returns the scheduler's role: this build runs one scheduler per
// installation, always the leader.
func (s *Scheduler) Role() Role { return RoleLeader }

func (s *Scheduler) setHealth(err error) {
	s.healthMu.Lock()
	s.healthErr = err
	s.healthMu.Unlock()
}

// Store returns the store the scheduler writes to, for readers.
func (s *Scheduler) Store() *store.Store { return s.cfg.Store }

// LogPath is the file holding the log of a try.
func (s *Scheduler) LogPath(k wire.TryKey) string { return s.logs.path(k) }

// TryFinished reports whether a try has ended (its log is complete).
func (s *Scheduler) TryFinished(k wire.TryKey) bool {
	tr, err := s.cfg.Store.GetTry(k.DAGID, k.RunID, k.TaskID, k.Try)
	if err != nil {
		return true
	}
	return tr.State != store.TaskQueued && tr.State != store.TaskRunning
}

// DAGs returns the loaded DAGs, sorted by id.
func (s *Scheduler) DAGs() []DAGInfo {
	s.viewMu.RLock()
	defer s.viewMu.RUnlock()
	return s.view.infos
}

// DAG returns one loaded DAG.
func (s *Scheduler) DAG(id string) (DAGInfo, bool) {
	s.viewMu.RLock()
	defer s.viewMu.RUnlock()
	i, ok := s.view.byID[id]
	if !ok {
		return DAGInfo{}, false
	}
	return s.view.infos[i], true
}

// ImportErrors returns the DAG files that failed to load.
func (s *Scheduler) ImportErrors() []dag.ImportError {
	s.viewMu.RLock()
	defer s.viewMu.RUnlock()
	return s.view.importErrors
}

// publishView refreshes what DAGs, DAG and ImportErrors return.
func (s *Scheduler) publishView() {
	v := dagView{byID: make(map[string]int, len(s.dags)), importErrors: s.relativeErrors(s.importErrs)}
	stale := map[string]bool{}
	for _, ie := range s.importErrs {
		if ie.Stale {
			stale[ie.File] = true
		}
	}
	now := s.clock.Now()
	for _, d := range sortedDAGs(s.dags) {
		info := DAGInfo{DAG: d, Stale: stale[d.File], File: s.relPath(d.File)}
		st := s.states[d.ID]
		if st != nil {
			info.Paused = st.Paused
		}
		if d.Timetable != nil && !info.Paused {
			if iv, ok := nextRun(d, st, now); ok {
				info.NextDataInterval = &iv
			}
		}
		v.byID[d.ID] = len(v.infos)
		v.infos = append(v.infos, info)
	}
	s.viewMu.Lock()
	s.view = v
	s.viewMu.Unlock()
}

// relPath is a DAG file's path relative to the DAGs folder.
func (s *Scheduler) relPath(path string) string {
	if s.cfg.Folder == nil {
		return path
	}
	return s.cfg.Folder.Rel(path)
}

// relativeErrors copies import errors with their files relative to the
// DAGs folder: what the API and the UI show.
func (s *Scheduler) relativeErrors(ies []dag.ImportError) []dag.ImportError {
	out := make([]dag.ImportError, len(ies))
	for i, ie := range ies {
		out[i] = dag.ImportError{File: s.relPath(ie.File), Stale: ie.Stale, Errors: make(dag.ErrorList, len(ie.Errors))}
		for j, e := range ie.Errors {
			cp := *e
			cp.File = s.relPath(e.File)
			out[i].Errors[j] = &cp
		}
	}
	return out
}

func sortedDAGs(m map[string]*dag.DAG) []*dag.DAG {
	out := make([]*dag.DAG, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *dag.DAG) int { return strings.Compare(a.ID, b.ID) })
	return out
}
