package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// Marking sets task instances to success or failed by hand, as Airflow's
// "mark success" and "mark failed" do. It runs in the loop like Clear: the
// new states are committed in the turn's one transaction, and only then
// are the workers running the tries it ends told to stop (flush sends the
// turn's cancels after the commit). A try that is stopped this way is
// fenced: it is no longer the task instance's current queued or running
// try, so whatever its worker reports later is stale and ignored
// (applyEvent), exactly as for a try whose worker went silent.
//
// Marking is an operator's decision, not a task's outcome: it fires no
// on_success or on_failure callbacks of the tasks it marks.

// MarkRun sets a run's state by hand and returns the ids of the task
// instances it changed.
//
// success: every task instance that did not end in success or skipped
// (failed ones included, as in Airflow) becomes success, and so does the
// run. failed: every task instance that has not ended becomes failed, and
// so does the run; a run whose tasks all ended without a failure cannot be
// failed this way (ErrConflict): mark one of its tasks failed instead. In
// both cases queued and running tries are stopped. Marking a run with the
// state it already has changes nothing.
func (s *Scheduler) MarkRun(ctx context.Context, dagID, runID string, state store.RunState) ([]string, error) {
	if state != store.RunSuccess && state != store.RunFailed {
		return nil, fmt.Errorf("%w: state %q: want success or failed", ErrInvalid, state)
	}
	v, err := s.do(ctx, func(now time.Time) (any, error) { return s.markRun(dagID, runID, state, now) })
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

// MarkTasks sets task instances of a run to success or failed by hand and
// returns the ids of the task instances it changed: those it marked, and
// the ones downstream of them it cleared.
//
// A queued or running try of a task it marks is stopped. Then, as Airflow
// does, the failed and upstream_failed instances downstream of the marked
// ones are cleared, so that the run goes on from the new states under the
// usual trigger rules: marking a failed task success lets what waited on it
// run. A finished run whose tasks are all done again takes the state they
// give it; one with work to do again is queued, as after a clear.
func (s *Scheduler) MarkTasks(ctx context.Context, dagID, runID string, tasks []string, state store.TaskState) ([]string, error) {
	if state != store.TaskSuccess && state != store.TaskFailed {
		return nil, fmt.Errorf("%w: state %q: want success or failed", ErrInvalid, state)
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("%w: no task to mark", ErrInvalid)
	}
	v, err := s.do(ctx, func(now time.Time) (any, error) { return s.markTasks(dagID, runID, tasks, state, now) })
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

func (s *Scheduler) markRun(dagID, runID string, state store.RunState, now time.Time) ([]string, error) {
	ar, err := s.activate(dagID, runID)
	if err != nil {
		return nil, err
	}
	changed := []string{}
	failed := false
	for _, t := range ar.dag.Tasks {
		ti := ar.tis[t.ID]
		if ti == nil {
			continue
		}
		failed = failed || ti.State == store.TaskFailed || ti.State == store.TaskUpstreamFailed
		var to store.TaskState
		switch {
		case state == store.RunSuccess && ti.State != store.TaskSuccess && ti.State != store.TaskSkipped:
			to = store.TaskSuccess
		case state == store.RunFailed && !ti.State.Finished():
			to = store.TaskFailed
		default:
			continue
		}
		s.markTI(ar, ti, to, now)
		changed = append(changed, t.ID)
	}
	if state == store.RunFailed && len(changed) == 0 && !failed {
		s.settle(ar)
		return nil, fmt.Errorf("%w: every task of run %s ended without a failure, so the run cannot be failed; mark one of its tasks failed instead", ErrConflict, runID)
	}
	if ar.run.State == state && len(changed) == 0 {
		s.settle(ar)
		return changed, nil
	}
	s.endRun(ar, state, now)
	return changed, nil
}

func (s *Scheduler) markTasks(dagID, runID string, tasks []string, state store.TaskState, now time.Time) ([]string, error) {
	ar, err := s.activate(dagID, runID)
	if err != nil {
		return nil, err
	}
	for _, id := range tasks {
		if ar.tis[id] == nil {
			s.settle(ar)
			return nil, fmt.Errorf("run %s of DAG %s has no task %q: %w", runID, dagID, id, ErrNotFound)
		}
	}
	changed := []string{}
	var marked []string
	for _, id := range tasks {
		ti := ar.tis[id]
		if ti.State == state || slices.Contains(marked, id) {
			continue
		}
		s.markTI(ar, ti, state, now)
		marked = append(marked, id)
	}
	changed = append(changed, marked...)
	if len(marked) > 0 {
		// Downstream of the tasks marked: an instance key names its task.
		ids := make([]string, len(marked))
		for i, k := range marked {
			ids[i], _, _ = store.SplitInstanceKey(k)
		}
		for _, id := range s.withDownstream(ar, ids)[len(ids):] {
			ti := ar.tis[id]
			if ti == nil || slices.Contains(tasks, id) {
				continue // what was asked for stays as asked
			}
			if !failedState(ti.State) {
				continue
			}
			if !expanded(ti) {
				s.resetTI(ar, ti)
				changed = append(changed, id)
				continue
			}
			// A mapped task: its failed instances run again, and it
			// settles from them anew.
			for _, in := range ar.instances(id) {
				if failedState(in.State) {
					s.resetTI(ar, in)
					s.reopenMapped(ar, in)
					changed = append(changed, in.Key())
				}
			}
		}
	}
	runState, ended := endState(ar)
	switch {
	case !ar.run.State.Finished():
		// advance, later in this turn, takes the new states from here.
	case len(changed) == 0:
		s.settle(ar)
	case ended:
		s.endRun(ar, runState, now)
	default:
		ar.run.State = store.RunQueued
		ar.run.EndDate = nil
		s.putRun(ar.run)
	}
	return changed, nil
}

// markTI sets a task instance to state by hand, stopping its try in
// flight. Marking an expanded mapped task marks each of its instances;
// marking one instance puts the task's own back to running, to be settled
// from its instances again.
func (s *Scheduler) markTI(ar *activeRun, ti *store.TaskInstance, state store.TaskState, now time.Time) {
	if expanded(ti) {
		for _, in := range ar.instances(ti.TaskID) {
			if in.State != state {
				s.markTI(ar, in, state, now)
			}
		}
	}
	s.reopenMapped(ar, ti)
	msg := fmt.Sprintf("marked %s by hand", state)
	s.stopTry(ti, state, msg, now)
	ti.State = state
	ti.NotBefore = time.Time{}
	ti.Pokes, ti.FirstPoke = 0, nil
	ti.EndDate = timePtr(now.UTC())
	ti.Error = ""
	if state == store.TaskFailed {
		ti.Error = msg
	}
	s.putTI(ti)
}

// stopTry stops the current try of a queued, running or rescheduled task
// instance, for an operator's reason: the try ends with state, its error
// saying why, and its worker is told to stop it once the turn is
// committed. Whatever the worker reports of it later is stale. A task
// instance in another state has no try to stop.
func (s *Scheduler) stopTry(ti *store.TaskInstance, state store.TaskState, why string, now time.Time) {
	switch ti.State {
	case store.TaskQueued, store.TaskRunning, store.TaskUpForReschedule:
	default:
		return
	}
	k := tryKeyOf(ti)
	note := fmt.Sprintf("%s while %s; this try was stopped", why, ti.State)
	tr := s.tryOf(k)
	if tr == nil {
		var err error
		if tr, err = s.cfg.Store.GetTry(k.DAGID, k.RunID, k.TaskID, k.Try); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("stopping a try: it stays as recorded", "try", k.String(), "err", err)
		}
	}
	if tr != nil {
		tr.State = state
		tr.EndDate = timePtr(now.UTC())
		tr.Error = note
		s.putTry(tr)
	}
	if ti.State == store.TaskUpForReschedule {
		// A sensor between pokes holds no worker, and its next poke
		// would append to the log after the note.
		s.noteIdle(k, note)
	} else {
		// The worker logs the reason as it stops the try; a note of
		// ours could be overwritten by its chunks, written at offsets.
		s.t.cancels = append(s.t.cancels, wire.Cancel{TryKey: k, Reason: note})
	}
	s.forget(k)
}

// endRun ends a run with state. Marking by hand calls it alone: the DAG's
// callbacks report how a run ended on its own.
func (s *Scheduler) endRun(ar *activeRun, state store.RunState, now time.Time) {
	ar.run.State = state
	ar.run.EndDate = timePtr(now.UTC())
	s.putRun(ar.run)
	s.logRunEnded(ar.run)
	s.nextCron[ar.run.DAGID] = now // a slot under max_active_runs may have opened
}

// settle forgets a run that activate loaded only to find nothing to change.
func (s *Scheduler) settle(ar *activeRun) {
	if ar.run.State.Finished() {
		delete(s.active, ar.key())
	}
}
