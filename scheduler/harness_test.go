package scheduler_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/cluster"
	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/natstest"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/worker"
)

// kilnBin is the real kiln binary, built once: it serves the built-in
// plugins (`kiln plugin shell`) and runs as `kiln worker` in fault tests.
// crashBin is a plugin that panics on demand.
var kilnBin, crashBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kiln-e2e-")
	if err != nil {
		panic(err)
	}
	kilnBin = filepath.Join(dir, "kiln")
	crashBin = filepath.Join(dir, "crashplugin")
	for bin, pkg := range map[string]string{kilnBin: "../cmd/kiln", crashBin: "../plugins/host/testdata/crashplugin"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(2)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// options tune a test installation.
type options struct {
	workers          int
	slots            int
	heartbeatTimeout time.Duration
	logLimit         int64
	metrics          prometheus.Registerer // receives the scheduler's metrics
	dataDir          string                // the scheduler's data folder (logs); default the test's folder
	runErr           chan<- error          // receives Run's error; nil fails the test on one
	logger           *slog.Logger          // the scheduler's; default none
	// projectDir is the workers' $KILN_PROJECT_DIR; default the test's
	// working directory.
	projectDir string
	// wrap, when set, wraps the workers' runner (the real plugin host),
	// for measurements that time each try's run.
	wrap func(worker.Runner) worker.Runner
	// cluster runs cluster mode (docs/operations.md#cluster-mode) on a
	// 3-node NATS cluster instead of the embedded server: the store leads
	// a replicated log; with standby, a standby's store follows it, in
	// this process.
	cluster, standby bool
}

// env is a running Kiln made of real parts: embedded NATS with JetStream,
// a bbolt store, the scheduler, and workers that run the real shell plugin
// process, all talking over NATS on loopback.
type env struct {
	t       testing.TB
	dir     string
	dagsDir string
	ns      *embednats.Server
	st      *store.Store
	// In cluster mode, the leader's log and a standby's store.
	clusterLog *cluster.Log
	standby    *store.Store
	s          *scheduler.Scheduler
	cancel     context.CancelFunc
	wg         sync.WaitGroup
}

// catalog knows the built-in plugins and `crashy`, the panicking test
// plugin, which a `kiln worker` finds in a plugins folder by the name it
// gives itself, `crash`.
func catalog() dag.Catalog {
	c := plugins.Builtin()
	c["crashy"] = &dag.PluginSpec{Name: "crashy"}
	c["crash"] = &dag.PluginSpec{Name: "crash"}
	return c
}

func pluginHost() *host.Host {
	return host.New(host.Config{
		Command: func(name string) (*exec.Cmd, error) {
			if name == "crashy" {
				return exec.Command(crashBin), nil
			}
			return exec.Command(kilnBin, "plugin", name), nil
		},
		List: func() []host.Executable {
			list := []host.Executable{{Name: "crashy", Version: "test", Path: crashBin}}
			for name := range plugins.Builtin() {
				list = append(list, host.Executable{Name: name, Version: plugins.BuiltinVersion(name), Path: kilnBin})
			}
			return list
		},
		StopGraces: plugins.StopGraces(),
	})
}

func start(t testing.TB, dags map[string]string, o options) *env {
	t.Helper()
	if o.slots == 0 {
		o.slots = 8
	}
	if o.heartbeatTimeout == 0 {
		o.heartbeatTimeout = 3 * time.Second
	}
	dir := t.TempDir()
	e := &env{t: t, dir: dir, dagsDir: filepath.Join(dir, "dags")}
	for name, src := range dags {
		e.writeDAG(name, src)
	}
	if len(dags) == 0 {
		if err := os.MkdirAll(e.dagsDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	var natsURL string
	if o.cluster {
		natsURL = natstest.StartCluster(t, 3).URL()
	} else {
		e.ns, err = embednats.Start(embednats.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
		if err != nil {
			t.Fatal(err)
		}
		natsURL = e.ns.ClientURL()
	}
	e.st, err = store.Open(filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if o.cluster {
		e.replicate(ctx, nc, o.standby)
	}
	e.s, err = scheduler.New(scheduler.Config{
		Store: e.st, NATS: nc, DataDir: cmp.Or(o.dataDir, dir),
		Folder:           dag.NewFolder(dag.Options{Plugins: catalog()}, e.dagsDir),
		HeartbeatTimeout: o.heartbeatTimeout,
		LogLimit:         o.logLimit,
		ReloadEvery:      100 * time.Millisecond,
		Metrics:          o.metrics,
		Logger:           o.logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.cancel = cancel
	e.wg.Go(func() {
		err := e.s.Run(ctx)
		switch {
		case o.runErr != nil:
			o.runErr <- err
		case err != nil && !(ctx.Err() != nil && errors.Is(err, context.Canceled)):
			// Stopped by the test in the middle of a commit, the
			// scheduler says so (as kilntest expects); anything else fails.
			t.Errorf("scheduler: %v", err)
		}
	})
	runner := pluginHost()
	var wr worker.Runner = runner
	if o.wrap != nil {
		wr = o.wrap(runner)
	}
	for i := range o.workers {
		w, err := worker.New(worker.Config{NATSURL: natsURL, Name: fmt.Sprintf("w%d", i), Slots: o.slots,
			Runner: wr, DataDir: filepath.Join(dir, "work"), ProjectDir: o.projectDir, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		e.wg.Go(func() { _ = w.Run(ctx) })
	}
	t.Cleanup(func() {
		cancel()
		e.wg.Wait()
		runner.Close()
		nc.Close()
		e.st.Close()
		if e.standby != nil {
			e.standby.Close()
		}
		if e.ns != nil {
			e.ns.Shutdown()
		}
	})
	e.waitFor("the scheduler to load DAGs", 10*time.Second, func() bool { return len(dags) == 0 || len(e.s.DAGs())+len(e.s.ImportErrors()) > 0 })
	return e
}

// replicate makes e.st the store of a cluster's leader, its log on the
// NATS cluster of nc, and with standby opens a standby's store that
// follows the log until ctx ends.
func (e *env) replicate(ctx context.Context, nc *nats.Conn, standby bool) {
	t := e.t
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := cluster.Ensure(ctx, js, 3, cluster.DefaultLeaseTTL); err != nil {
		t.Fatal(err)
	}
	lease, err := cluster.TryLease(ctx, js, cluster.LeaderInfo{Name: "test"}, cluster.DefaultLeaseTTL)
	if err != nil || lease == nil {
		t.Fatalf("taking the lease: %v", err)
	}
	e.wg.Go(func() { _ = lease.Keep(ctx) })
	e.clusterLog = cluster.NewLog(js, "test", lease.Term, 0, lease.ValidUntil)
	if _, err := e.clusterLog.AppendTerm(ctx); err != nil {
		t.Fatal(err)
	}
	e.st.SkipSync() // as a cluster's server does (cmd/kiln/ha.go)
	e.st.Lead(e.clusterLog)
	if !standby {
		return
	}
	if e.standby, err = store.Open(filepath.Join(e.dir, "standby.db")); err != nil {
		t.Fatal(err)
	}
	e.standby.SkipSync()
	e.standby.Follow()
	tail := cluster.NewTail(js, 0, func(seq uint64, rec []byte) error { return e.standby.ApplyRecord(ctx, seq, rec) })
	e.wg.Go(func() {
		if err := tail.Run(ctx); err != nil {
			t.Errorf("the standby's tail: %v", err)
		}
	})
}

// growth returns the bytes the log holds (0 outside cluster mode) and
// the size of the store's file.
func (e *env) growth() (logBytes, storeBytes int64) {
	if e.clusterLog != nil {
		logBytes = int64(e.clusterLog.Bytes())
	}
	st, err := os.Stat(e.st.Path())
	if err != nil {
		e.t.Fatal(err)
	}
	return logBytes, st.Size()
}

func (e *env) writeDAG(name, src string) {
	e.t.Helper()
	path := filepath.Join(e.dagsDir, name+".yaml")
	if err := os.MkdirAll(e.dagsDir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
	later := time.Now().Add(time.Duration(len(src)) * time.Millisecond)
	_ = os.Chtimes(path, later, later)
}

// waitFor polls cond until it holds or the deadline passes.
func (e *env) waitFor(what string, timeout time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sync waits for a turn of the scheduler's loop that began after the
// call: a barrier before asserting that something did not happen.
func (e *env) sync() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.s.Sync(ctx); err != nil {
		e.t.Fatalf("waiting for a turn of the scheduler's loop: %v", err)
	}
}

func (e *env) trigger(dagID string, params map[string]any) *store.Run {
	e.t.Helper()
	r, err := e.s.Trigger(context.Background(), dagID, scheduler.TriggerRequest{Params: params})
	if err != nil {
		e.t.Fatalf("trigger %s: %v", dagID, err)
	}
	return r
}

// waitRun waits for a run to end and returns it.
func (e *env) waitRun(r *store.Run, timeout time.Duration) *store.Run {
	e.t.Helper()
	var got *store.Run
	e.waitFor("run "+r.RunID+" to end", timeout, func() bool {
		var err error
		got, err = e.st.GetRun(r.DAGID, r.RunID)
		return err == nil && got.State.Finished()
	})
	return got
}

func (e *env) taskStates(r *store.Run) map[string]store.TaskState {
	e.t.Helper()
	tis, err := e.st.TaskInstances(r.DAGID, r.RunID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]store.TaskState{}
	for _, ti := range tis {
		out[ti.Key()] = ti.State
	}
	return out
}

func (e *env) log(r *store.Run, task string, try int) string {
	e.t.Helper()
	b, _ := os.ReadFile(e.s.LogPath(tryKey(r, task, try)))
	return string(b)
}

// heapInUse reads the process's live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func lines(s string) []string { return strings.Split(strings.TrimSpace(s), "\n") }
