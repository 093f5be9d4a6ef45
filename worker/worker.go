package worker

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/secrets"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
)

// Defaults of Config.
const (
	DefaultQueue = "default"
	DefaultSlots = 4
)

// Runner runs one try through a stage plugin, writing the task's log to log
// as it goes. *host.Host is the Runner of a real worker. Run must return
// soon after ctx ends, with Success false.
type Runner interface {
	Run(ctx context.Context, plugin string, req host.Request, log io.Writer) (host.Result, error)
}

// Config configures a Worker.
type Config struct {
	// NATSURL is the NATS server (or comma-separated servers) to connect
	// to. The worker reconnects forever, and may start before the server.
	NATSURL string
	// NATSOptions are added to the worker's own when it connects to
	// NATSURL: credentials and TLS.
	NATSOptions []nats.Option
	// Conn, when set, is used instead of connecting to NATSURL; the worker
	// does not close it. It should be set to reconnect forever, with
	// wire.WorkerInbox(Name) as its inbox prefix where NATS permissions
	// apply.
	Conn *nats.Conn
	// Name identifies the worker in events and logs, and is the token of
	// its event subjects (wire.CheckWorker); default host-pid made valid.
	Name string
	// Queues are the queues the worker pulls from; default ["default"].
	Queues []string
	// Slots is how many tries the worker runs at once, over all its
	// queues; default 4.
	Slots int
	// Runner runs the tries. Required.
	Runner Runner
	// DataDir holds the tries' $KILN_OUTPUT files and their working
	// directories, kiln-try-* (docs/artifacts.md#how-files-move); default
	// os.TempDir().
	DataDir string
	// KeepWorkdirs keeps each try's working directory once the try has
	// been reported, for a look at what it left; by default it is removed.
	KeepWorkdirs bool
	// ProjectDir is given to every task as $KILN_PROJECT_DIR, so that a
	// command reaches the team's code by a path relative to it
	// (docs/artifacts.md#how-files-move); default the worker's working
	// directory when it starts.
	ProjectDir string
	// BaseEnv is the environment every task starts from, before the
	// assignment's env and Kiln's variables (KILN_OUTPUT, KILN_WORKDIR,
	// KILN_INPUT_*) are added; nil means the worker's own environment
	// without its KILN_SECRET_* variables: a task gets a secret only
	// through its DAG's env, and masked.
	BaseEnv []string
	// Logger receives the worker's own log; nil discards it.
	Logger *slog.Logger
}

// Worker pulls assignments and runs them. Create it with New and start it
// with Run.
type Worker struct {
	cfg   Config
	log   *slog.Logger
	slots *slots
	// msgIDs starts the JetStream message ids of the worker's events: its
	// name and a random nonce of this process. Other NATS clients cannot
	// guess it, so none can publish an id first and have JetStream drop
	// this worker's event as a duplicate.
	msgIDs string
	// host is the machine's host name, for the manifests of its tries.
	host string

	nc *nats.Conn
	js jetstream.JetStream

	// The artifact store and the workers bucket, once looked up
	// (artifactStore, workersBucket).
	objMu sync.Mutex
	obs   jetstream.ObjectStore
	kvMu  sync.Mutex
	kv    jetstream.KeyValue

	// startedAt is when Run began; runningChanged wakes the announcer
	// when a try starts or ends here (info.go).
	startedAt      time.Time
	runningChanged chan struct{}

	stopping atomic.Bool
	tries    sync.WaitGroup // running tries, counted from delivery
	drains   sync.WaitGroup // pull subscriptions still draining

	mu      sync.Mutex
	running map[wire.TryKey]*tryRun
	early   map[wire.TryKey]earlyCancel // cancels of tries not (yet) running here
	started bool

	// reconnected is closed, and replaced, each time the connection comes
	// back after a loss, so that pulls that may have died with the old
	// connection are made anew.
	reconMu     sync.Mutex
	reconnected chan struct{}
}

// New checks cfg, fills in its defaults and returns a Worker. It does not
// connect yet.
func New(cfg Config) (*Worker, error) {
	if cfg.Runner == nil {
		return nil, errors.New("worker: no Runner configured")
	}
	if cfg.Conn == nil && cfg.NATSURL == "" {
		return nil, errors.New("worker: no NATS URL configured")
	}
	if cfg.Name == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "kiln-worker"
		}
		cfg.Name = wire.WorkerNameFrom(fmt.Sprintf("%s-%d", h, os.Getpid()))
	}
	if err := wire.CheckWorker(cfg.Name); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	if len(cfg.Queues) == 0 {
		cfg.Queues = []string{DefaultQueue}
	}
	cfg.Queues = slices.Clone(cfg.Queues)
	slices.Sort(cfg.Queues)
	cfg.Queues = slices.Compact(cfg.Queues)
	for _, q := range cfg.Queues {
		if err := wire.CheckQueue(q); err != nil {
			return nil, fmt.Errorf("worker: %w", err)
		}
	}
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.Slots < 1 {
		return nil, fmt.Errorf("worker: %d slots: need at least 1", cfg.Slots)
	}
	if cfg.DataDir == "" {
		cfg.DataDir = os.TempDir()
	}
	// $KILN_OUTPUT must name the file from any working directory.
	if abs, err := filepath.Abs(cfg.DataDir); err == nil {
		cfg.DataDir = abs
	}
	if cfg.ProjectDir == "" {
		cfg.ProjectDir, _ = os.Getwd()
	}
	if cfg.BaseEnv == nil {
		cfg.BaseEnv = slices.DeleteFunc(os.Environ(), func(kv string) bool {
			return strings.HasPrefix(kv, secrets.EnvPrefix)
		})
	}
	l := cfg.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	host, _ := os.Hostname()
	return &Worker{
		cfg:         cfg,
		host:        host,
		log:         l.With("worker", cfg.Name),
		slots:       newSlots(cfg.Slots),
		msgIDs:      cfg.Name + "-" + rand.Text(),
		running:     map[wire.TryKey]*tryRun{},
		early:       map[wire.TryKey]earlyCancel{},
		reconnected: make(chan struct{}),

		runningChanged: make(chan struct{}, 1),
	}, nil
}

// Name is the worker's name as it appears in events.
func (w *Worker) Name() string { return w.cfg.Name }

// Run pulls and runs assignments until ctx ends, then stops pulling at once,
// lets the running tries finish and report, and returns nil. It returns an
// error only when the worker cannot work at all. Run may be called once.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("worker: Run called twice")
	}
	w.started = true
	w.startedAt = time.Now().UTC()
	w.mu.Unlock()

	if err := os.MkdirAll(w.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("worker: data folder: %w", err)
	}
	if err := w.connect(); err != nil {
		return err
	}
	if w.cfg.Conn == nil {
		defer w.nc.Close()
	}
	status := w.nc.StatusChanged(nats.CONNECTED)
	defer w.nc.RemoveStatusListener(status)
	go w.watchReconnects(status)

	// Cancels may arrive for tries being set up, so listen first.
	cancelSub, err := w.nc.Subscribe(wire.CancelSubject, w.onCancel)
	if err != nil {
		return fmt.Errorf("worker: subscribing to cancels: %w", err)
	}
	defer func() { _ = cancelSub.Unsubscribe() }()

	if !w.setup(ctx) {
		return nil // stopped before NATS was ever ready
	}
	w.log.Info("worker ready", "queues", w.cfg.Queues, "slots", w.cfg.Slots)

	// The entry outlives ctx: it says the worker drains until the running
	// tries have finished, and is deleted then.
	announceCtx, stopAnnouncing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAnnouncing()
	draining := make(chan struct{})
	var pullers, announcer sync.WaitGroup
	announcer.Go(func() { w.announce(announceCtx, draining) })
	for _, q := range w.cfg.Queues {
		p := newPuller(w, q)
		pullers.Go(func() { p.run(ctx) })
	}
	<-ctx.Done()
	w.stopping.Store(true)
	close(draining)
	pullers.Wait()
	w.drains.Wait()
	w.mu.Lock()
	n := len(w.running)
	w.mu.Unlock()
	if n > 0 {
		w.log.Info("stopping: waiting for running tries", "tries", n)
	}
	w.tries.Wait()
	stopAnnouncing()
	announcer.Wait()
	w.withdraw()
	// What was published asynchronously has been confirmed try by try;
	// make sure the naks of late deliveries have left too.
	if w.nc.IsConnected() {
		_ = w.nc.FlushTimeout(time.Second)
	}
	w.log.Info("worker stopped")
	return nil
}

func (w *Worker) connect() error {
	if w.cfg.Conn != nil {
		w.nc = w.cfg.Conn
	} else {
		opts := append([]nats.Option{
			nats.Name("kiln-worker " + w.cfg.Name),
			nats.CustomInboxPrefix(wire.WorkerInbox(w.cfg.Name)),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(250 * time.Millisecond),
			nats.RetryOnFailedConnect(true),
			nats.ReconnectBufSize(32 << 20),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					w.log.Warn("disconnected from NATS", "error", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) {
				w.log.Info("reconnected to NATS", "url", nc.ConnectedUrlRedacted())
			}),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				if errors.Is(err, nats.ErrPermissionViolation) {
					w.log.Error("NATS refused this worker's user a permission; it needs a worker's, with its events under "+
						wire.WorkerEventSubjects(w.cfg.Name), "error", err)
					return
				}
				w.log.Warn("NATS", "error", err)
			}),
		}, w.cfg.NATSOptions...)
		nc, err := nats.Connect(w.cfg.NATSURL, opts...)
		if err != nil {
			return fmt.Errorf("worker: connecting to NATS at %s: %w", w.cfg.NATSURL, err)
		}
		w.nc = nc
	}
	js, err := jetstream.New(w.nc,
		jetstream.WithPublishAsyncMaxPending(1024),
		jetstream.WithPublishAsyncTimeout(asyncTimeout),
	)
	if err != nil {
		if w.cfg.Conn == nil {
			w.nc.Close()
		}
		return fmt.Errorf("worker: %w", err)
	}
	w.js = js
	return nil
}

// setup makes sure the queues' consumers exist, retrying until it works: a
// worker may start before NATS, or before the scheduler has created the
// streams. It returns false if ctx ended first.
func (w *Worker) setup(ctx context.Context) bool {
	delay := 100 * time.Millisecond
	for {
		err := w.ensure(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			w.log.Info("waiting for the scheduler to create stream "+wire.TasksStream, "in", delay)
		} else {
			w.log.Warn("NATS not ready; retrying", "error", err, "in", delay)
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
}

// ensure creates or updates the queues' consumers. The streams are the
// scheduler's to create (docs/operations.md#nats-clusters): a worker needs
// no permission on them.
func (w *Worker) ensure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, q := range w.cfg.Queues {
		if _, err := wire.EnsureTaskConsumer(ctx, w.js, q); err != nil {
			return err
		}
	}
	return nil
}

// watchReconnects wakes the pullers each time the connection is
// (re)established: pull requests may have died with the old connection.
func (w *Worker) watchReconnects(status chan nats.Status) {
	for range status {
		w.reconMu.Lock()
		close(w.reconnected)
		w.reconnected = make(chan struct{})
		w.reconMu.Unlock()
	}
}

// reconnectSignal returns a channel closed at the next reconnect.
func (w *Worker) reconnectSignal() <-chan struct{} {
	w.reconMu.Lock()
	defer w.reconMu.Unlock()
	return w.reconnected
}

// How long, and for how many tries, a worker remembers a cancel of a try
// it does not run: the try's assignment may be on its way to it.
const (
	earlyCancelTTL = time.Minute
	earlyCancelMax = 10_000
)

type earlyCancel struct {
	reason string
	at     time.Time
}

// onCancel stops a try this worker runs, when asked to.
func (w *Worker) onCancel(m *nats.Msg) {
	var c wire.Cancel
	if err := json.Unmarshal(m.Data, &c); err != nil {
		w.log.Warn("ignoring a malformed cancel", "error", err)
		return
	}
	reason := c.Reason
	if reason == "" {
		reason = "no reason given"
	}
	w.mu.Lock()
	t := w.running[c.TryKey]
	if t == nil {
		// Most likely another worker's try, or one that has ended; but
		// its assignment may still reach this worker.
		w.rememberCancelLocked(c.TryKey, reason)
	}
	w.mu.Unlock()
	if t == nil {
		return
	}
	w.log.Info("cancelling try", tryAttrs(c.TryKey, "reason", reason)...)
	t.cancel(&cancelledError{reason: reason})
}

func (w *Worker) rememberCancelLocked(k wire.TryKey, reason string) {
	now := time.Now()
	if len(w.early) >= earlyCancelMax {
		for k, e := range w.early {
			if now.Sub(e.at) > earlyCancelTTL || len(w.early) >= earlyCancelMax {
				delete(w.early, k)
			}
		}
	}
	w.early[k] = earlyCancel{reason: reason, at: now}
}

// takeEarlyCancelLocked returns the reason of a cancel that came before the try,
// if one did.
func (w *Worker) takeEarlyCancelLocked(k wire.TryKey) (string, bool) {
	e, ok := w.early[k]
	if !ok {
		return "", false
	}
	delete(w.early, k)
	return e.reason, time.Since(e.at) <= earlyCancelTTL
}

func tryAttrs(k wire.TryKey, more ...any) []any {
	return append([]any{"dag", k.DAGID, "run", k.RunID, "task", k.TaskID, "try", k.Try}, more...)
}
