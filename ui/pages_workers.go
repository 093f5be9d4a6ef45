package ui

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
)

// The workers page lists the workers as their entries in NATS describe
// them, with their state and the tries they run, and the worker queues
// with what waits on each; a queue whose tasks wait with no live worker
// pulling it is called out at the top (docs/operations.md#watching-workers).
// The page polls: a worker's heartbeat is no event of the event stream.

// workerPageRoutes registers the workers page.
func (s *Server) workerPageRoutes() {
	s.page(http.MethodGet, "/workers", s.workersPage, RoleViewer)
}

// workerRow is one worker on the workers page.
type workerRow struct {
	Worker
	// Badge is the state the page shows: alive, draining or lost.
	Badge string
	// Percent is SlotsUsed of Slots, for the bar.
	Percent   int
	Full      bool
	Tries     []runningTry
	Heartbeat timeView
	Started   *timeView
}

// runningTry is a try a worker runs, linking to its log.
type runningTry struct {
	Label, Href string
}

// queueRow is one worker queue on the workers page.
type queueRow struct {
	Queue
	// Wait is how long the task queued longest has waited, "" when none.
	Wait string
}

// workersView is the workers page.
type workersView struct {
	Workers []workerRow
	Queues  []queueRow
	// NoWorker are the queues whose tasks wait with no live worker.
	NoWorker []queueRow
	// LostAfter and ForgetAfter say when a worker is lost and forgotten.
	LostAfter, ForgetAfter string
}

func (s *Server) workersPage(c echo.Context) error {
	v, err := s.workersView(c)
	if err != nil {
		return err
	}
	return s.render(c, http.StatusOK, "workers", pageData{Title: "Workers", Nav: "workers", Data: v})
}

func (s *Server) workersView(c echo.Context) (workersView, error) {
	qs, err := s.backend.Queues(c.Request().Context())
	if err != nil {
		return workersView{}, err
	}
	now := time.Now()
	v := workersView{LostAfter: shortDuration(wire.WorkerLostAfter), ForgetAfter: shortDuration(wire.WorkerForgetAfter)}
	for _, w := range s.backend.Workers() {
		v.Workers = append(v.Workers, newWorkerRow(&w, now))
	}
	for i := range qs {
		r := queueRow{Queue: NewQueue(&qs[i])}
		if qs[i].OldestWait > 0 {
			r.Wait = durationText(qs[i].OldestWait)
		}
		v.Queues = append(v.Queues, r)
		if r.NoWorker {
			v.NoWorker = append(v.NoWorker, r)
		}
	}
	return v, nil
}

func newWorkerRow(w *scheduler.WorkerStatus, now time.Time) workerRow {
	r := workerRow{Worker: NewWorker(w), Badge: w.State, Heartbeat: newTimeView(w.LastHeartbeat, nil, now)}
	if w.Draining && w.State == scheduler.WorkerAlive {
		r.Badge = "draining"
	}
	// A heartbeat is seconds old: say how many.
	switch age := now.Sub(w.LastHeartbeat); {
	case age < time.Second:
		r.Heartbeat.Rel = "just now"
	case age < time.Minute:
		r.Heartbeat.Rel = shortDuration(age) + " ago"
	}
	r.Started = timeViewPtr(r.Worker.StartedAt, nil, now)
	if w.Slots > 0 {
		r.Percent = min(100, w.SlotsUsed*100/w.Slots)
		r.Full = w.SlotsUsed >= w.Slots
	}
	for _, k := range w.Running {
		r.Tries = append(r.Tries, runningTry{Label: k.String(), Href: logHref(k.DAGID, k.RunID, k.TaskID, k.Try)})
	}
	return r
}
