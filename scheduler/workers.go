package scheduler

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// Each worker keeps an entry in wire.WorkersBucket: what it serves, what
// it runs, whether it drains. A watcher goroutine (openBuckets) copies the
// entries into the registry, which the loop reads for the plugin builds of
// cache keys and the API lists with each worker's state. The queues the API
// and the metrics show join the registry with what the loop counts of the
// task instances waiting on each queue
// (docs/operations.md#watching-workers).

// Worker states.
const (
	// WorkerAlive is a worker whose entry was written within
	// wire.WorkerLostAfter (wire.WorkerInfo.LostAfter for workers of
	// other versions).
	WorkerAlive = "alive"
	// WorkerLost is a worker that stopped writing its entry without
	// deleting it: it died, hangs or lost NATS. It is listed until
	// wire.WorkerForgetAfter.
	WorkerLost = "lost"
)

// WorkerStatus is a worker as its entry in wire.WorkersBucket last
// described it.
type WorkerStatus struct {
	wire.WorkerInfo
	// LastHeartbeat is when the entry was last written, by the NATS
	// server's clock.
	LastHeartbeat time.Time
	// State is WorkerAlive or WorkerLost.
	State string
}

// Pulls reports whether the worker takes new tasks of queue: it is alive,
// not draining, and pulls that queue.
func (w *WorkerStatus) Pulls(queue string) bool {
	return w.State == WorkerAlive && !w.Draining && slices.Contains(w.Queues, queue)
}

// workerRegistry holds the workers' entries, written by the watcher of
// wire.WorkersBucket and read by the loop and the API.
type workerRegistry struct {
	mu      sync.RWMutex
	workers map[string]WorkerStatus // State not set
}

func newWorkerRegistry() *workerRegistry {
	return &workerRegistry{workers: map[string]WorkerStatus{}}
}

// apply notes a change of an entry. The entry is decoded before the lock
// is taken: the loop waits for no JSON.
func (r *workerRegistry) apply(e jetstream.KeyValueEntry) {
	var w wire.WorkerInfo
	ok := e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &w) == nil && w.Name == e.Key()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		delete(r.workers, e.Key())
		return
	}
	// The server's clock, not the worker's.
	r.workers[e.Key()] = WorkerStatus{WorkerInfo: w, LastHeartbeat: e.Created()}
}

// build returns the build of plugin that every live worker of queue
// serving it runs, at now; ok is false when no live worker serves it or
// they run different builds. A draining worker runs no new task, so its
// build does not count.
func (r *workerRegistry) build(queue, plugin string, now time.Time) (wire.PluginBuild, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var got wire.PluginBuild
	n := 0
	for _, w := range r.workers {
		if now.Sub(w.LastHeartbeat) > w.LostAfter() || w.Draining || !slices.Contains(w.Queues, queue) {
			continue
		}
		pb, ok := w.Plugins[plugin]
		if !ok {
			continue
		}
		if n > 0 && pb != got {
			return wire.PluginBuild{}, false
		}
		got = pb
		n++
	}
	return got, n > 0 && got.SHA256 != ""
}

// list returns the workers by name with their state at now, leaving out
// those past wire.WorkerForgetAfter: the bucket has dropped their entries
// without a word to the watcher.
func (r *workerRegistry) list(now time.Time) []WorkerStatus {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]WorkerStatus, 0, len(r.workers))
	for _, w := range r.workers {
		age := now.Sub(w.LastHeartbeat)
		if age > wire.WorkerForgetAfter {
			continue
		}
		w.State = WorkerAlive
		if age > w.LostAfter() {
			w.State = WorkerLost
		}
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b WorkerStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Workers lists the workers by name: those alive, and those lost within
// wire.WorkerForgetAfter. It does not wait for the loop or for NATS.
func (s *Scheduler) Workers() []WorkerStatus {
	return s.registry.list(time.Now())
}

// QueueStatus is a worker queue: what waits on it, and who pulls it.
type QueueStatus struct {
	Name string
	// Queued counts the task instances whose assignment waits in the
	// queue for a worker to start it; the oldest of them was queued at
	// OldestQueuedAt, OldestWait ago (zero when none waits).
	Queued         int
	OldestQueuedAt time.Time
	OldestWait     time.Duration
	// Scheduled counts the task instances of the queue that are ready and
	// wait for pool slots or max_active_tasks before they are queued.
	Scheduled int
	// Workers are the live workers that pull the queue (WorkerStatus.Pulls),
	// by name.
	Workers []string
}

// NoWorker reports whether task instances wait on the queue and no live
// worker pulls it: they wait until one does.
func (q *QueueStatus) NoWorker() bool {
	return q.Queued+q.Scheduled > 0 && len(q.Workers) == 0
}

// queueWait is what the loop counts of a queue's waiting task instances.
type queueWait struct {
	queued, scheduled int
	oldest            time.Time // QueuedAt of the oldest queued; zero when none
}

// countWaiting adds ti to what waits on its queue. It runs on the loop.
func countWaiting(waits map[string]queueWait, ti *store.TaskInstance) {
	var w queueWait
	switch ti.State {
	case store.TaskQueued:
		w = waits[ti.Queue]
		w.queued++
		if ti.QueuedAt != nil && (w.oldest.IsZero() || ti.QueuedAt.Before(w.oldest)) {
			w.oldest = *ti.QueuedAt
		}
	case store.TaskScheduled:
		w = waits[ti.Queue]
		w.scheduled++
	default:
		return
	}
	waits[ti.Queue] = w
}

// Queues lists the worker queues by name: the default queue, those the
// loaded DAGs' tasks name, those task instances wait on and those workers
// pull, each with what waits on it and the live workers that pull it.
func (s *Scheduler) Queues(ctx context.Context) ([]QueueStatus, error) {
	type waiting struct {
		waits map[string]queueWait
		at    time.Time
	}
	v, err := s.do(ctx, func(now time.Time) (any, error) {
		w := waiting{waits: map[string]queueWait{}, at: now}
		for _, ar := range s.active {
			for _, ti := range ar.tis {
				countWaiting(w.waits, ti)
			}
		}
		return w, nil
	})
	if err != nil {
		return nil, err
	}
	w := v.(waiting)
	return s.queueTable(w.waits, w.at, s.Workers()), nil
}

// queueTable joins what waits on each queue, as the loop counted it at
// at, with the workers and the queues the loaded DAGs name.
func (s *Scheduler) queueTable(waits map[string]queueWait, at time.Time, workers []WorkerStatus) []QueueStatus {
	names := map[string]bool{dag.DefaultQueue: true}
	for q := range waits {
		names[q] = true
	}
	for _, w := range workers {
		for _, q := range w.Queues {
			names[q] = true
		}
	}
	s.viewMu.RLock()
	for _, info := range s.view.infos {
		for _, t := range info.DAG.Tasks {
			names[t.Queue] = true
		}
	}
	s.viewMu.RUnlock()

	out := make([]QueueStatus, 0, len(names))
	for _, name := range slices.Sorted(maps.Keys(names)) {
		w := waits[name]
		q := QueueStatus{Name: name, Queued: w.queued, Scheduled: w.scheduled, OldestQueuedAt: w.oldest, Workers: []string{}}
		if !w.oldest.IsZero() {
			q.OldestWait = max(at.Sub(w.oldest), 0)
		}
		for i := range workers {
			if workers[i].Pulls(name) {
				q.Workers = append(q.Workers, workers[i].Name)
			}
		}
		out = append(out, q)
	}
	return out
}
