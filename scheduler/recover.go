package scheduler

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// lostGrace is how long a queued try whose assignment is no longer in the
// stream may wait for its started event after a restart: the worker that
// took it may have reported it in an event not consumed yet.
const lostGrace = 5 * time.Second

// recover rebuilds the loop's state from the store alone: DAG states,
// pools, every queued or running run with its task instances, and the
// callbacks that had not finished.
func (s *Scheduler) recover(ctx context.Context, set *dag.Set) error {
	s.t = newTurn()
	states, err := s.cfg.Store.DAGStates()
	if err != nil {
		return err
	}
	s.states = states
	if s.datasetQueues, err = s.cfg.Store.DatasetQueues(); err != nil {
		return err
	}
	if s.lastDatasetEvent, err = s.cfg.Store.LastDatasetEventID(); err != nil {
		return err
	}
	pools, err := s.cfg.Store.Pools()
	if err != nil {
		return err
	}
	for _, p := range pools {
		s.pools[p.Name] = p.Slots
	}
	s.applySet(set)
	bfs, err := s.cfg.Store.Backfills("")
	if err != nil {
		return err
	}
	for _, bf := range bfs {
		if n, err := strconv.ParseUint(strings.TrimPrefix(bf.ID, "bf-"), 10, 64); err == nil {
			s.nextBackfill = max(s.nextBackfill, n)
		}
		if bf.State == store.BackfillRunning {
			s.backfills[bf.ID] = bf
		}
	}
	runs, err := s.cfg.Store.ActiveRuns()
	if err != nil {
		return err
	}
	now := s.clock.Now()
	for _, r := range runs {
		ar, err := s.load(r)
		if err != nil {
			s.log.Warn("cannot resume a run until its DAG loads again", "dag", r.DAGID, "run", r.RunID, "err", err)
			continue
		}
		s.active[ar.key()] = ar
		for _, ti := range ar.tis {
			if ti.State != store.TaskQueued && ti.State != store.TaskRunning {
				continue
			}
			k := tryKeyOf(ti)
			tr, err := s.cfg.Store.GetTry(k.DAGID, k.RunID, k.TaskID, k.Try)
			if err != nil {
				tr = &store.Try{DAGID: k.DAGID, RunID: k.RunID, TaskID: ti.TaskID, MapIndex: ti.MapIndex, Number: k.Try, State: ti.State}
			}
			tr.State = ti.State
			s.recoverFlight(tr, false, now)
		}
	}
	if err := s.recoverCallbacks(now); err != nil {
		return err
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.log.Info("scheduler recovered", "dags", len(s.dags), "active_runs", len(s.active), "tries_in_flight", len(s.flights))
	return nil
}

// recoverFlight takes up a try that was in flight when the scheduler
// stopped. A running one's worker gets a full heartbeat timeout to report.
// A queued one's assignment is looked for in the tasks stream after
// lostGrace, off the loop: the worker that took it may have reported it in
// an event not consumed yet.
func (s *Scheduler) recoverFlight(tr *store.Try, callback bool, now time.Time) {
	f := s.track(tr, callback)
	if tr.State == store.TaskRunning {
		f.beat = now
		return
	}
	f.checkAt = now.Add(lostGrace)
}
