package ui

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// Worker is a worker as GET /api/v1/workers and `kiln workers list` show
// it (docs/operations.md#watching-workers).
type Worker struct {
	Name    string   `json:"name"`
	Host    string   `json:"host"`
	PID     int      `json:"pid"`
	Version string   `json:"version"`
	Queues  []string `json:"queues"`
	// Slots is how many tries the worker runs at once, SlotsUsed how many
	// it runs now, Running which.
	Slots     int            `json:"slots"`
	SlotsUsed int            `json:"slots_used"`
	Running   []store.TryRef `json:"running"`
	// Plugins are the builds of the stage plugins the worker runs, by
	// name.
	Plugins   map[string]PluginBuild `json:"plugins"`
	StartedAt *time.Time             `json:"started_at"`
	// LastHeartbeat is when the worker last wrote its entry, by the NATS
	// server's clock.
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// State is "alive" or "lost".
	State string `json:"state"`
	// Draining is set while the worker stops gracefully: it takes no new
	// task and lets its running ones finish.
	Draining bool `json:"draining"`
}

// PluginBuild is the build of a stage plugin a worker runs.
type PluginBuild struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
}

// Queue is a worker queue as GET /api/v1/queues lists it.
type Queue struct {
	Name string `json:"name"`
	// Queued counts the task instances waiting in the queue for a worker
	// to start them; the oldest was queued at OldestQueuedAt (null when
	// none waits), OldestWaitS seconds ago.
	Queued         int        `json:"queued"`
	OldestQueuedAt *time.Time `json:"oldest_queued_at"`
	OldestWaitS    float64    `json:"oldest_wait_s"`
	// Scheduled counts the task instances of the queue that are ready and
	// wait for pool slots or max_active_tasks before they are queued.
	Scheduled int `json:"scheduled"`
	// Workers are the live workers (alive, not draining) that pull the
	// queue.
	Workers []string `json:"workers"`
	// NoWorker is set when task instances wait on the queue and no live
	// worker pulls it: they wait until one does.
	NoWorker bool `json:"no_worker"`
}

// NewWorker is the API's view of a worker.
func NewWorker(w *scheduler.WorkerStatus) Worker {
	out := Worker{
		Name: w.Name, Host: w.Host, PID: w.PID, Version: w.KilnVersion, Queues: w.Queues,
		Slots: w.Slots, SlotsUsed: w.SlotsUsed, Running: make([]store.TryRef, len(w.Running)),
		Plugins:       make(map[string]PluginBuild, len(w.Plugins)),
		LastHeartbeat: w.LastHeartbeat.UTC(), State: w.State, Draining: w.Draining,
	}
	if out.Queues == nil {
		out.Queues = []string{}
	}
	for i, k := range w.Running {
		out.Running[i] = store.TryRef{DAGID: k.DAGID, RunID: k.RunID, TaskID: k.TaskID, Try: k.Try}
	}
	for name, b := range w.Plugins {
		out.Plugins[name] = PluginBuild{Version: b.Version, SHA256: b.SHA256}
	}
	if !w.StartedAt.IsZero() {
		t := w.StartedAt.UTC()
		out.StartedAt = &t
	}
	return out
}

// NewQueue is the API's view of a worker queue.
func NewQueue(q *scheduler.QueueStatus) Queue {
	out := Queue{
		Name: q.Name, Queued: q.Queued, OldestWaitS: q.OldestWait.Seconds(),
		Scheduled: q.Scheduled, Workers: q.Workers, NoWorker: q.NoWorker(),
	}
	if !q.OldestQueuedAt.IsZero() {
		t := q.OldestQueuedAt.UTC()
		out.OldestQueuedAt = &t
	}
	return out
}

func (s *Server) listWorkers(c echo.Context) error {
	ws := s.backend.Workers()
	out := make([]Worker, len(ws))
	for i := range ws {
		out[i] = NewWorker(&ws[i])
	}
	out, err := pageOf(c, out)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) listQueues(c echo.Context) error {
	qs, err := s.backend.Queues(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]Queue, len(qs))
	for i := range qs {
		out[i] = NewQueue(&qs[i])
	}
	if out, err = pageOf(c, out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
