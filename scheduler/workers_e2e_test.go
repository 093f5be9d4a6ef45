package scheduler_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/worker"
)

// TestWorkersAndQueues: the scheduler lists the workers from their
// entries, with the tries each runs; a worker that stops writing its entry
// shows as lost, then is forgotten. A queue whose task waits with no live
// worker pulling it says so, in Queues and in the metrics, until a worker
// of that queue joins and runs the task.
func TestWorkersAndQueues(t *testing.T) {
	release := filepath.Join(t.TempDir(), "release")
	reg := prometheus.NewPedanticRegistry()
	e := start(t, map[string]string{
		"held": fmt.Sprintf(`
id: held
tasks:
  - {id: wait, plugin: shell, with: {command: "while [ ! -e %s ]; do sleep 0.02; done"}}
`, release),
		"gpu": `
id: gpu
tasks:
  - {id: train, plugin: shell, queue: gpu, with: {command: "true"}}
`,
	}, options{workers: 1, slots: 3, metrics: reg})

	var w0 scheduler.WorkerStatus
	e.waitFor("worker w0 to be listed", 10*time.Second, func() bool {
		ws := e.s.Workers()
		if len(ws) == 1 {
			w0 = ws[0]
		}
		return len(ws) == 1
	})
	host, _ := os.Hostname()
	want := wire.WorkerInfo{Name: "w0", Host: host, KilnVersion: buildinfo.Get().Version, Queues: []string{"default"},
		PID: os.Getpid(), Slots: 3, Interval: wire.WorkerInfoInterval}
	if diff := cmp.Diff(want, w0.WorkerInfo, cmpopts.IgnoreFields(wire.WorkerInfo{}, "Plugins", "Time", "StartedAt")); diff != "" {
		t.Errorf("w0 (-want +got):\n%s", diff)
	}
	if w0.State != scheduler.WorkerAlive || time.Since(w0.LastHeartbeat) > wire.WorkerLostAfter {
		t.Errorf("w0 %s, last heartbeat %v ago; want alive, recent", w0.State, time.Since(w0.LastHeartbeat))
	}

	// A try that runs is listed on its worker.
	held := e.trigger("held", nil)
	e.waitFor("w0 to list the held try", 10*time.Second, func() bool {
		ws := e.s.Workers()
		return len(ws) == 1 && ws[0].SlotsUsed == 1 && len(ws[0].Running) == 1
	})
	if got, want := e.s.Workers()[0].Running[0], (wire.TryKey{DAGID: "held", RunID: held.RunID, TaskID: "wait", Try: 1}); got != want {
		t.Errorf("w0 runs %v, want %v", got, want)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := e.waitRun(held, 30*time.Second); r.State != store.RunSuccess {
		t.Fatalf("held run %s, want success", r.State)
	}

	// No worker pulls gpu: its task waits, and the queue says why.
	gpu := e.trigger("gpu", nil)
	var q scheduler.QueueStatus
	e.waitFor("the gpu task to wait on its queue", 10*time.Second, func() bool {
		q = queueNamed(t, e, "gpu")
		return q.Queued == 1 && q.OldestWait > 0
	})
	if !q.NoWorker() || len(q.Workers) != 0 || q.OldestQueuedAt.IsZero() {
		t.Errorf("gpu queue %+v: want no worker, and when its task was queued", q)
	}
	if d := queueNamed(t, e, "default"); d.NoWorker() || !cmp.Equal(d.Workers, []string{"w0"}) {
		t.Errorf("default queue %+v: want w0 pulling it", d)
	}
	m := scrape(t, reg)
	for name, v := range map[string]float64{
		`kiln_queue_depth{queue="gpu"}`:       1,
		`kiln_queue_workers{queue="gpu"}`:     0,
		`kiln_queue_workers{queue="default"}`: 1,
		`kiln_workers{state="alive"}`:         1,
		`kiln_workers{state="lost"}`:          0,
	} {
		if got, ok := m[name]; !ok || got != v {
			t.Errorf("%s = %g (present %v), want %g", name, got, ok, v)
		}
	}
	if got := m[`kiln_queue_oldest_wait_seconds{queue="gpu"}`]; got <= 0 {
		t.Errorf("kiln_queue_oldest_wait_seconds{queue=\"gpu\"} = %g, want the wait so far", got)
	}

	// A worker of gpu joins: it runs the task, and the queue is served.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	runner := pluginHost()
	defer runner.Close()
	g, err := worker.New(worker.Config{NATSURL: e.ns.ClientURL(), Name: "g", Queues: []string{"gpu"},
		Runner: runner, DataDir: filepath.Join(e.dir, "work-g"), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- g.Run(ctx) }()
	if r := e.waitRun(gpu, 30*time.Second); r.State != store.RunSuccess {
		t.Fatalf("gpu run %s, want success", r.State)
	}
	e.waitFor("g to pull gpu", 10*time.Second, func() bool {
		q = queueNamed(t, e, "gpu")
		return cmp.Equal(q.Workers, []string{"g"})
	})
	if q.NoWorker() || q.Queued != 0 || q.OldestWait != 0 {
		t.Errorf("gpu queue %+v: want g pulling it, nothing waiting", q)
	}

	// Without writes, w0 and g would be lost once wire.WorkerLostAfter
	// passed, and forgotten after wire.WorkerForgetAfter.
	later := time.Now().Add(wire.WorkerLostAfter + time.Second)
	for _, w := range e.s.WorkersAt(later) {
		if w.State != scheduler.WorkerLost {
			t.Errorf("%s %s after %v without a heartbeat, want lost", w.Name, w.State, wire.WorkerLostAfter)
		}
	}
	if ws := e.s.WorkersAt(time.Now().Add(wire.WorkerForgetAfter + time.Second)); len(ws) != 0 {
		t.Errorf("%d workers listed after %v without a heartbeat, want none", len(ws), wire.WorkerForgetAfter)
	}

	// A worker that stops deletes its entry.
	stop()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	e.waitFor("g to be gone", 10*time.Second, func() bool { return len(e.s.Workers()) == 1 })

	// A worker of an earlier version says no interval: it writes every
	// 30 s, so it is lost after 90 s, not after 15 s.
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(t.Context(), wire.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(t.Context(), "old", []byte(`{"name": "old", "host": "h", "kiln_version": "v0.9.0", "queues": ["default"], "plugins": {}, "time": "2026-03-01T00:00:00Z"}`)); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the old worker to be listed", 10*time.Second, func() bool { return len(e.s.Workers()) == 2 })
	states := func(at time.Time) map[string]string {
		out := map[string]string{}
		for _, w := range e.s.WorkersAt(at) {
			out[w.Name] = w.State
		}
		return out
	}
	if got, want := states(time.Now().Add(wire.WorkerLostAfter+time.Second)), map[string]string{"old": "alive", "w0": "lost"}; !cmp.Equal(got, want) {
		t.Errorf("states after %v: %v, want %v", wire.WorkerLostAfter, got, want)
	}
	if got, want := states(time.Now().Add(91*time.Second)), map[string]string{"old": "lost", "w0": "lost"}; !cmp.Equal(got, want) {
		t.Errorf("states after 91s: %v, want %v", got, want)
	}
}

// queueNamed is the named queue as Queues lists it.
func queueNamed(t *testing.T, e *env, name string) scheduler.QueueStatus {
	t.Helper()
	qs, err := e.s.Queues(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if q.Name == name {
			return q
		}
	}
	t.Fatalf("queue %s not listed in %+v", name, qs)
	return scheduler.QueueStatus{}
}
