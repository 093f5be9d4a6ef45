package ui_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/plugins/shell"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// gatedDAG's task holds at the gate "held" until the test opens it.
const gatedDAG = `
id: held
tasks:
  - {id: wait, plugin: shell, with: {command: "read gate < gates/held"}}
`

// The worker object of docs/api.md#workers, keys sorted.
var workerKeys = []string{"draining", "host", "last_heartbeat", "name", "pid", "plugins", "queues", "running", "slots", "slots_used", "started_at", "state", "version"}

// TestWorkersAndQueuesAPI: GET /api/v1/workers lists the worker with the
// try it runs; GET /api/v1/queues shows a task waiting on a queue that no
// worker pulls, and the default queue served.
func TestWorkersAndQueuesAPI(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, gatedDAG)
	workers := func() []ui.Worker {
		t.Helper()
		r := call(t, "GET", srv.URL+"/api/v1/workers", "")
		if r.status != 200 {
			t.Fatalf("workers: %d %s", r.status, r.body)
		}
		var raw []json.RawMessage
		r.decode(t, &raw)
		for _, w := range raw {
			if diff := cmp.Diff(workerKeys, keys(t, w)); diff != "" {
				t.Errorf("worker keys (-want +got):\n%s", diff)
			}
		}
		var ws []ui.Worker
		r.decode(t, &ws)
		return ws
	}
	k.WaitFor("the worker to be listed", func() bool { return len(workers()) == 1 })
	w := workers()[0]
	host, _ := os.Hostname()
	if w.Name != "w1" || w.Host != host || w.PID != os.Getpid() || w.Version != buildinfo.Get().Version ||
		w.State != scheduler.WorkerAlive || w.Draining || w.Slots != 8 || w.SlotsUsed != 0 || len(w.Running) != 0 ||
		!cmp.Equal(w.Queues, []string{"default"}) || w.StartedAt == nil || w.LastHeartbeat.IsZero() {
		t.Errorf("worker %+v: want w1 on this host and process, alive, 8 slots free, on default", w)
	}
	if b := w.Plugins[shell.Name]; b.Version != shell.Version || b.SHA256 == "" {
		t.Errorf("worker's shell plugin %+v, want version %s with its hash", b, shell.Version)
	}

	gate := k.Gate("held")
	run := trigger(t, k, "held", "", nil).RunID
	want := []store.TryRef{{DAGID: "held", RunID: run, TaskID: "wait", Try: 1}}
	k.WaitFor("the worker to list the held try", func() bool {
		w = workers()[0]
		return w.SlotsUsed == 1 && cmp.Equal(w.Running, want)
	})

	// Train runs on queue gpu, which no worker pulls.
	if err := k.SetPool(t.Context(), "gpu", 1); err != nil {
		t.Fatal(err)
	}
	churn := trigger(t, k, "churn", "", nil).RunID
	k.WaitTask("churn", churn, "train", store.TaskQueued)
	r := call(t, "GET", srv.URL+"/api/v1/queues", "")
	if r.status != 200 {
		t.Fatalf("queues: %d %s", r.status, r.body)
	}
	var qs []ui.Queue
	r.decode(t, &qs)
	byName := map[string]ui.Queue{}
	for _, q := range qs {
		byName[q.Name] = q
	}
	if gpu := byName["gpu"]; !gpu.NoWorker || gpu.Queued != 1 || len(gpu.Workers) != 0 || gpu.OldestQueuedAt == nil || gpu.OldestWaitS < 0 {
		t.Errorf("queue gpu %+v: want its task waiting with no worker", gpu)
	}
	if d := byName["default"]; d.NoWorker || !cmp.Equal(d.Workers, []string{"w1"}) {
		t.Errorf("queue default %+v: want w1 pulling it", d)
	}
	if len(qs) != 2 {
		t.Errorf("queues %+v: want default and gpu", qs)
	}

	gate.Open()
	k.WaitRun("held", run, store.RunSuccess)
	k.WaitFor("the worker to run nothing", func() bool { w = workers()[0]; return w.SlotsUsed == 0 && len(w.Running) == 0 })
}
