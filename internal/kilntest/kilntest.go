// Package kilntest starts a real Kiln inside a test, as Nomad's
// agent.NewTestAgent starts a real agent: an embedded NATS server with
// JetStream, a bbolt store, the scheduler over a DAGs folder and workers
// that run the real shell plugin, all on loopback in the test's temporary
// folder and all stopped when the test ends. Tests of the HTTP API (package
// ui) and of the CLI drive it through its API, as users do, and wait for
// the effects: a run that ends, a task that fails, a log that grows.
//
// The workers run the shell plugin in a process of the test binary itself,
// so a package that starts workers calls Main from its TestMain.
//
// A task that must stay running until the test lets it go waits at a gate
// (Kiln.Gate): a named pipe the task reads, the test opens. Read-only tests
// of stored data (page rendering, listings, benchmarks) may seed a history
// into the store before the scheduler starts (Options.Seed); everything
// else reaches the store through the scheduler.
package kilntest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/shell"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/worker"
)

// runner runs the tasks of every installation of the test binary: one
// plugin process serves them all, launched once, as the workers of one
// `kiln standalone` share theirs. Main makes it; without it, a plugin
// process would run the package's tests instead of serving the plugin.
var runner *host.Host

// Main is the TestMain of a package whose tests start workers: in a plugin
// process it serves the shell plugin; otherwise it calls build (when not
// nil) as plugintest.Main does, runs the tests and stops the plugin
// process.
func Main(m *testing.M, build func(dir string) error) {
	if os.Getenv(plugintest.ServeEnv) != "" {
		plugintest.Main(m, map[string]func(){shell.Name: shell.Main}, nil)
		return
	}
	runner = host.New(host.Config{
		Command: func(name string) (*exec.Cmd, error) {
			return plugintest.SelfCommand(name), nil
		},
		List: func() []host.Executable {
			return []host.Executable{{Name: shell.Name, Version: shell.Version, Path: plugintest.SelfCommand(shell.Name).Path}}
		},
	})
	code := plugintest.Run(m, build)
	runner.Close()
	os.Exit(code)
}

// gatesRunner runs tries through runner with the installation's gates
// in reach: a symlink gates in each try's working directory leads to
// them, so a task waits at one with `read gate < gates/NAME`.
type gatesRunner struct{ gates string }

func (g gatesRunner) Run(ctx context.Context, plugin string, req host.Request, log io.Writer) (host.Result, error) {
	if err := os.Symlink(g.gates, filepath.Join(req.WorkDir, "gates")); err != nil {
		return host.Result{}, fmt.Errorf("kilntest: %w", err)
	}
	return runner.Run(ctx, plugin, req, log)
}

// Builds lists the shell plugin's build, as a real worker's Runner does.
func (gatesRunner) Builds() map[string]host.Build { return runner.Builds() }

// Options tune an installation; the zero value is one worker pulling the
// default queue and an empty DAGs folder.
type Options struct {
	// DAGs are the files of the DAGs folder, each named after the id in
	// it (ID.yaml), or after its place in the list when it has none.
	DAGs []string
	// NoWorker leaves tasks queued: no worker runs them.
	NoWorker bool
	// Queues are the queues the worker pulls; default "default".
	Queues []string
	// Seed, when set, writes to the store before the scheduler starts: a
	// history for read-only tests, which the scheduler then finds as it
	// would after a restart.
	Seed func(*store.Store) error
	// Metrics, when set, receives the scheduler's metrics.
	Metrics prometheus.Registerer
}

// reloadEvery is how often the scheduler looks at the DAGs folder, so
// that a test that changes a file does not wait.
const reloadEvery = 20 * time.Millisecond

// Kiln is a running installation. Its embedded *scheduler.Scheduler is the
// real ui.Backend. Its own methods fail the test that started it, so call
// them from that test's goroutine.
type Kiln struct {
	*scheduler.Scheduler

	t       testing.TB
	dir     string
	dagsDir string
	ns      *embednats.Server
	st      *store.Store

	mtime time.Time // of the last DAG file written

	gatesMu sync.Mutex
	gates   map[string]*Gate
}

// New starts an installation whose DAGs folder holds the given DAG files,
// with one worker pulling the default queue.
func New(t testing.TB, dags ...string) *Kiln {
	t.Helper()
	return Start(t, Options{DAGs: dags})
}

var idLine = regexp.MustCompile(`(?m)^id:\s*([A-Za-z0-9_.-]+)\s*$`)

// fileName names a DAG file after the id in it, or after its position.
func fileName(src string, i int) string {
	if m := idLine.FindStringSubmatch(src); m != nil {
		return m[1] + ".yaml"
	}
	return fmt.Sprintf("dag%d.yaml", i)
}

// Start starts an installation as o says, and returns once the scheduler
// has loaded the DAGs and finished its first turn.
func Start(t testing.TB, o Options) *Kiln {
	t.Helper()
	if !o.NoWorker && runner == nil {
		t.Fatal("kilntest: a worker needs kilntest.Main as the package's TestMain")
	}
	dir := t.TempDir()
	k := &Kiln{t: t, dir: dir, dagsDir: filepath.Join(dir, "dags"), gates: map[string]*Gate{}}
	for _, sub := range []string{k.dagsDir, filepath.Join(dir, "gates")} {
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i, src := range o.DAGs {
		k.writeFile(fileName(src, i), src)
	}
	// Each part is stopped by a cleanup of its own, the last started
	// first, so that a failure half-way stops what started.
	t.Cleanup(k.closeGates)
	var nc *nats.Conn
	k.ns, k.st, nc = Parts(t, dir)
	if o.Seed != nil {
		if err := o.Seed(k.st); err != nil {
			t.Fatalf("kilntest: seeding the store: %v", err)
		}
	}
	var err error
	k.Scheduler, err = scheduler.New(scheduler.Config{
		Store:       k.st,
		NATS:        nc,
		DataDir:     dir,
		Folder:      dag.NewFolder(dag.Options{Plugins: plugins.Builtin()}, k.dagsDir),
		ReloadEvery: reloadEvery,
		Metrics:     o.Metrics,
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stopped := make(chan error, 1)
	t.Cleanup(func() {
		k.openGates() // a task waiting at a gate would hold its worker's stop up
		cancel()
		wg.Wait()
		// Stopped in the middle of a commit, the scheduler says so, as
		// `kiln standalone` expects.
		select {
		case err := <-stopped:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("kilntest: the scheduler stopped with %v", err)
			}
		default: // it did not start
		}
	})
	wg.Go(func() { stopped <- k.Run(ctx) })
	if !o.NoWorker {
		w, err := worker.New(worker.Config{
			NATSURL: k.ns.ClientURL(), Name: "w1", Queues: o.Queues, Slots: 8,
			Runner: gatesRunner{filepath.Join(dir, "gates")}, DataDir: filepath.Join(dir, "work"),
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = w.Run(ctx) })
	}
	k.waitFor("the scheduler to start", func() bool {
		select {
		case err := <-stopped:
			stopped <- err
			t.Fatalf("kilntest: the scheduler did not start: %v", err)
		default:
		}
		return k.Health() == nil
	})
	k.barrier()
	return k
}

// Parts starts what an installation runs on, under dir: an embedded NATS
// server with JetStream on loopback, a store, and a client of the server.
// The test's end stops them. Start runs a scheduler on them; a test that
// runs its own calls Parts.
func Parts(t testing.TB, dir string) (*embednats.Server, *store.Store, *nats.Conn) {
	t.Helper()
	ns, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	st, err := store.Open(filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return ns, st, nc
}

// DAGsDir is the folder the scheduler loads DAGs from.
func (k *Kiln) DAGsDir() string { return k.dagsDir }

// StopNATS shuts the embedded NATS server down, as a crash of it would;
// the scheduler's Health then reports NATS down.
func (k *Kiln) StopNATS() { k.ns.Shutdown() }

// barrier returns once a whole turn of the scheduler's loop is committed:
// what was due when it was called, such as the runs of a schedule, is in
// the store. It asks the loop to cancel a backfill that does not exist,
// which changes nothing.
func (k *Kiln) barrier() {
	k.t.Helper()
	_, err := k.CancelBackfill(context.Background(), "kilntest-barrier")
	if !errors.Is(err, scheduler.ErrNotFound) {
		k.t.Fatalf("kilntest: barrier: %v, want a not-found error", err)
	}
}
