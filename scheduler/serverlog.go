package scheduler

import (
	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// The server log (docs/operations.md#server-log) records the life of runs,
// DAGs, backfills and workers at info level: a line when something starts,
// ends, appears or goes, never one per task, so that a busy scheduler
// writes a few lines a run.

// logDAGChanges logs what a freshly loaded folder changed: DAGs added,
// changed and removed, and files that broke. The first load, at start,
// logs a summary instead of a line per DAG.
func (s *Scheduler) logDAGChanges(old map[string]*dag.DAG, set *dag.Set) {
	broken := make(map[string]string, len(s.importErrs))
	for _, ie := range s.importErrs {
		broken[ie.File] = ie.Errors.Error()
	}
	for i, ie := range set.ImportErrors {
		if msg := ie.Errors.Error(); len(ie.Errors) > 0 && broken[ie.File] != msg {
			first := s.relativeErrors(set.ImportErrors[i : i+1])[0].Errors[0]
			s.log.Warn("DAG file broken", "file", s.relPath(ie.File), "errors", len(ie.Errors), "first", first.Error(), "last_good_kept", ie.Stale)
		}
	}
	if !s.loaded {
		s.loaded = true
		s.log.Info("DAGs loaded", "dags", len(set.DAGs), "broken_files", len(set.ImportErrors))
		return
	}
	for _, d := range set.DAGs {
		switch was := old[d.ID]; {
		case was == nil:
			s.log.Info("DAG added", "dag", d.ID, "file", s.relPath(d.File))
		case was.Hash != d.Hash:
			s.log.Info("DAG changed", "dag", d.ID, "file", s.relPath(d.File))
		}
	}
	for id, d := range old {
		if set.Get(id) == nil {
			s.log.Info("DAG removed", "dag", id, "file", s.relPath(d.File))
		}
	}
}

func (s *Scheduler) logRunCreated(r *store.Run) {
	s.log.Info("run created", "dag", r.DAGID, "run", r.RunID, "type", r.RunType)
}

func (s *Scheduler) logExpanded(ar *activeRun, t *dag.Task, n int) {
	what, name := "task", t.ID
	if t.MapGroup != "" {
		what, name = "group", t.MapGroup
	}
	s.log.Info("mapped "+what+" expanded", "dag", ar.run.DAGID, "run", ar.run.RunID, what, name, "instances", n)
}

func (s *Scheduler) logRunEnded(r *store.Run) {
	attrs := []any{"dag", r.DAGID, "run", r.RunID, "state", r.State}
	if r.StartDate != nil && r.EndDate != nil {
		attrs = append(attrs, "duration", r.EndDate.Sub(*r.StartDate))
	}
	s.log.Info("run ended", attrs...)
}

func (s *Scheduler) logBackfillEnded(bf *store.Backfill) {
	c := bf.Counts()
	s.log.Info("backfill ended", "backfill", bf.ID, "dag", bf.DAGID, "state", bf.State,
		"success", c.Success, "failed", c.Failed, "skipped", c.Skipped)
}

// workerSeen notes an event from a worker: the first one since the start,
// or since the worker was lost, is logged. It runs for every event, so it
// is a map lookup and nothing more once the worker is known.
func (s *Scheduler) workerSeen(name string) {
	if s.workers[name] {
		return
	}
	s.workers[name] = true
	s.log.Info("worker seen", "worker", name)
}

// workerLost logs a worker that stopped sending heartbeats for a try it
// ran, once until it is seen again.
func (s *Scheduler) workerLost(name string, k wire.TryKey) {
	if !s.workers[name] {
		return
	}
	delete(s.workers, name)
	s.log.Warn("worker lost", "worker", name, "try", k.String(), "heartbeat_timeout", s.cfg.HeartbeatTimeout)
}
