package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/shell"
)

// The kiln binary, whose `kiln plugin shell` is the real shell plugin; it
// is built once, by the first test that needs it.
var (
	binDir    string
	buildOnce sync.Once
	kilnExe   string
	buildErr  error
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kiln-worker-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	return m.Run()
}

func kilnBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		exe := filepath.Join(binDir, "kiln")
		out, err := exec.Command("go", "build", "-o", exe, "github.com/kilnhq/kiln/cmd/kiln").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("building kiln: %v\n%s", err, out)
			return
		}
		kilnExe = exe
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return kilnExe
}

// shellHost is the real plugin host running the real shell plugin, which
// it lists with its build, as `kiln worker` does.
func shellHost(t testing.TB) *host.Host {
	exe := kilnBinary(t)
	h := host.New(host.Config{
		Command: func(name string) (*exec.Cmd, error) {
			if name != shell.Name {
				return nil, fmt.Errorf("%w %q", host.ErrUnknownPlugin, name)
			}
			return exec.Command(exe, "plugin", name), nil
		},
		List: func() []host.Executable {
			return []host.Executable{{Name: shell.Name, Version: shell.Version, Path: exe}}
		},
	})
	t.Cleanup(func() { h.Close() })
	return h
}

// received is an event as the test, acting as the scheduler, got it.
type received struct {
	wire.Event
	worker string // from the subject, as the scheduler learns it
	at     time.Time
}

// harness is one test's NATS server with Kiln's streams, and the
// scheduler's side of the protocol: it publishes assignments and cancels
// and collects events.
type harness struct {
	t     testing.TB
	dir   string
	srv   *embednats.Server
	url   string
	nc    *nats.Conn
	js    jetstream.JetStream
	ctx   context.Context
	cons  jetstream.ConsumeContext
	mu    sync.Mutex
	evs   []received
	wake  chan struct{} // closed and replaced on every event
	count atomic.Int64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	h := newBareHarness(t)
	h.createStreams()
	return h
}

// newBareHarness is a harness whose server has no streams yet.
func newBareHarness(t testing.TB) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), wake: make(chan struct{})}
	h.startServer("127.0.0.1:0")
	h.url = h.srv.ClientURL()
	nc, err := nats.Connect(h.url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	h.nc = nc
	h.js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	h.ctx = ctx
	return h
}

// ensureBuckets makes the artifact store, bounded to maxBytes (-1: no
// bound), and the workers bucket, as the scheduler does; it returns the
// artifact store.
func (h *harness) ensureBuckets(maxBytes int64) jetstream.ObjectStore {
	h.t.Helper()
	if err := wire.EnsureBuckets(h.ctx, h.js, maxBytes, 1); err != nil {
		h.t.Fatal(err)
	}
	obs, err := h.js.ObjectStore(h.ctx, wire.ArtifactsBucket)
	if err != nil {
		h.t.Fatal(err)
	}
	return obs
}

// createStreams creates Kiln's streams and consumes events, as the
// scheduler does.
func (h *harness) createStreams() {
	h.t.Helper()
	if err := wire.EnsureStreams(h.ctx, h.js, 1); err != nil {
		h.t.Fatal(err)
	}
	cons, err := wire.EnsureEventConsumer(h.ctx, h.js)
	if err != nil {
		h.t.Fatal(err)
	}
	h.cons, err = cons.Consume(h.onEvent)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(h.cons.Stop)
}

func (h *harness) startServer(listen string) {
	h.t.Helper()
	s, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(h.dir, "nats"), Listen: listen})
	if err != nil {
		h.t.Fatal(err)
	}
	h.srv = s
	h.t.Cleanup(s.Shutdown)
}

func (h *harness) onEvent(m jetstream.Msg) {
	at := time.Now()
	var ev wire.Event
	if err := json.Unmarshal(m.Data(), &ev); err != nil {
		h.t.Errorf("malformed event on %s: %v", m.Subject(), err)
	}
	worker, _, _ := wire.ParseEventSubject(m.Subject())
	if want := wire.EventSubject(worker, ev.Kind, ev.DAGID); m.Subject() != want {
		h.t.Errorf("event %s %s on subject %s, want %s", ev.Kind, ev.TryKey, m.Subject(), want)
	}
	_ = m.Ack()
	h.mu.Lock()
	h.evs = append(h.evs, received{ev, worker, at})
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
	h.count.Add(1)
}

// events returns the events received so far, in arrival order, of the
// given try (all tries when k is zero).
func (h *harness) events(k wire.TryKey) []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []received
	for _, e := range h.evs {
		if k == (wire.TryKey{}) || e.TryKey == k {
			out = append(out, e)
		}
	}
	return out
}

// wait waits until an event of try k of the given kind has arrived, and
// returns it.
func (h *harness) wait(k wire.TryKey, kind wire.EventKind, timeout time.Duration) received {
	h.t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		wake := h.wake
		for _, e := range h.evs {
			if e.TryKey == k && e.Kind == kind {
				h.mu.Unlock()
				return e
			}
		}
		h.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			h.t.Fatalf("no %s event for %s within %s (got %s)", kind, k, timeout, h.summary(k))
		}
	}
}

func (h *harness) summary(k wire.TryKey) string {
	var kinds []string
	for _, e := range h.events(k) {
		kinds = append(kinds, string(e.Kind))
	}
	return "[" + strings.Join(kinds, " ") + "]"
}

// assign publishes an assignment to a queue, as the scheduler does, and
// returns when JetStream has stored it.
func (h *harness) assign(queue string, a wire.Assignment) time.Time {
	h.t.Helper()
	if a.LogLimit == 0 {
		a.LogLimit = 16 << 20
	}
	if a.Heartbeat == 0 {
		a.Heartbeat = 5 * time.Second
	}
	if a.Env == nil {
		a.Env = map[string]string{"KILN_DAG_ID": a.DAGID, "KILN_TASK_ID": a.TaskID}
	}
	a.QueuedAt = time.Now().UTC()
	data, err := json.Marshal(a)
	if err != nil {
		h.t.Fatal(err)
	}
	start := time.Now()
	if _, err := h.js.Publish(h.ctx, wire.TaskSubject(queue), data, jetstream.WithMsgID(a.MsgID())); err != nil {
		h.t.Fatalf("publishing assignment %s: %v", a.TryKey, err)
	}
	return start
}

func (h *harness) cancel(k wire.TryKey, reason string) {
	h.t.Helper()
	data, _ := json.Marshal(wire.Cancel{TryKey: k, Reason: reason})
	if err := h.nc.Publish(wire.CancelSubject, data); err != nil {
		h.t.Fatal(err)
	}
	if err := h.nc.Flush(); err != nil {
		h.t.Fatal(err)
	}
}

// consumerInfo is the state of a queue's consumer.
// waitSettled waits until every assignment of queue has been taken and
// settled: none pending, none waiting for an ack.
func (h *harness) waitSettled(queue string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for info := h.consumerInfo(queue); info.NumPending != 0 || info.NumAckPending != 0; info = h.consumerInfo(queue) {
		if time.Now().After(deadline) {
			h.t.Fatalf("assignments of %s not settled: %d pending, %d unacked", queue, info.NumPending, info.NumAckPending)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) consumerInfo(queue string) *jetstream.ConsumerInfo {
	h.t.Helper()
	c, err := h.js.Consumer(h.ctx, wire.TasksStream, wire.TaskConsumerName(queue))
	if err != nil {
		h.t.Fatal(err)
	}
	info, err := c.Info(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	return info
}

// dataDir is the data folder of the workers the harness starts.
func (h *harness) dataDir() string { return filepath.Join(h.dir, "work") }

// runningWorker is a worker started by a test.
type runningWorker struct {
	w      *Worker
	cancel context.CancelFunc
	done   chan error
}

// start runs a worker on the harness's server until the test ends.
func (h *harness) start(cfg Config) *runningWorker {
	h.t.Helper()
	if cfg.NATSURL == "" && cfg.Conn == nil {
		cfg.NATSURL = h.url
	}
	if cfg.DataDir == "" {
		cfg.DataDir = h.dataDir()
	}
	w, err := New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{w: w, cancel: cancel, done: make(chan error, 1)}
	go func() { rw.done <- w.Run(ctx) }()
	h.t.Cleanup(func() { rw.stop(h.t, 30*time.Second) })
	return rw
}

// stop cancels the worker and waits for Run to return; once it has, stop
// returns at once.
func (rw *runningWorker) stop(t testing.TB, timeout time.Duration) {
	t.Helper()
	rw.cancel()
	select {
	case err, ok := <-rw.done:
		if !ok {
			return
		}
		if err != nil {
			t.Errorf("worker Run: %v", err)
		}
		close(rw.done)
	case <-time.After(timeout):
		t.Fatalf("worker did not stop within %s", timeout)
	}
}

var tryCounter atomic.Int64

// newTry returns a fresh try key.
func newTry(task string) wire.TryKey {
	return wire.TryKey{DAGID: "dag", RunID: "manual__1", TaskID: fmt.Sprintf("%s_%d", task, tryCounter.Add(1)), Try: 1}
}

// fakeRunner runs "plugins" in-process, counting how many run at once.
//
//	true     succeeds at once
//	fail     fails with exit code 3
//	sleep    sleeps With["ms"] milliseconds, or until cancelled
//	block    waits until cancelled
//	print    writes With["bytes"] bytes of a known pattern in writes of
//	         With["chunk"] bytes
//	outputs  writes With["content"] to $KILN_OUTPUT
//	panic    panics
type fakeRunner struct {
	running, maxRunning atomic.Int32
	// hook, when set, runs at the start of every try.
	hook func(plugin string, req host.Request, log io.Writer)
}

func (f *fakeRunner) Run(ctx context.Context, plugin string, req host.Request, log io.Writer) (host.Result, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.maxRunning.Load()
		if n <= m || f.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	if f.hook != nil {
		f.hook(plugin, req, log)
	}
	zero := 0
	ok := host.Result{Success: true, ExitCode: &zero}
	cancelled := func() (host.Result, error) {
		return host.Result{Error: "task cancelled: " + context.Cause(ctx).Error()}, nil
	}
	num := func(k string) int {
		v, _ := req.With[k].(float64)
		return int(v)
	}
	switch plugin {
	case "true":
		return ok, nil
	case "fail":
		code := 3
		return host.Result{ExitCode: &code, Error: "exit status 3"}, nil
	case "sleep":
		select {
		case <-time.After(time.Duration(num("ms")) * time.Millisecond):
			return ok, nil
		case <-ctx.Done():
			return cancelled()
		}
	case "block":
		<-ctx.Done()
		return cancelled()
	case "print":
		total, chunk := num("bytes"), num("chunk")
		if chunk <= 0 {
			chunk = 64 << 10
		}
		buf := make([]byte, chunk)
		for off := 0; off < total; off += chunk {
			n := min(chunk, total-off)
			fillPattern(buf[:n], off)
			if _, err := log.Write(buf[:n]); err != nil {
				return host.Result{}, err
			}
		}
		return ok, nil
	case "outputs":
		content, _ := req.With["content"].(string)
		if err := os.WriteFile(envValue(req.Env, "KILN_OUTPUT"), []byte(content), 0o644); err != nil {
			return host.Result{}, err
		}
		return ok, nil
	case "panic":
		panic("boom")
	}
	return host.Result{}, fmt.Errorf("%w %q", host.ErrUnknownPlugin, plugin)
}

// fillPattern fills p with the log pattern at offset off: lines of
// printable text that differ from line to line.
func fillPattern(p []byte, off int) {
	for i := range p {
		o := off + i
		if o%100 == 99 {
			p[i] = '\n'
		} else {
			p[i] = byte('a' + (o/100+o)%26)
		}
	}
}

func envValue(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// logOf reassembles a try's log from its log events, checking that the
// chunks are contiguous and within the chunk size.
func logOf(t testing.TB, evs []received) []byte {
	t.Helper()
	var out []byte
	for _, e := range evs {
		if e.Kind != wire.EventLog {
			continue
		}
		if e.Offset != int64(len(out)) {
			t.Fatalf("log chunk at offset %d, want %d", e.Offset, len(out))
		}
		if len(e.Data) == 0 || len(e.Data) > logChunk {
			t.Fatalf("log chunk of %d bytes", len(e.Data))
		}
		out = append(out, e.Data...)
	}
	return out
}
