package scheduler

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/dag/timetable"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

type runKey struct{ dagID, runID string }

type tiKey struct{ dagID, runID, taskID string }

// activeRun is a queued or running run with its task instances.
type activeRun struct {
	run *store.Run
	dag *dag.DAG                       // the version the run was created with (or recovered by)
	tis map[string]*store.TaskInstance // by instance key (store.InstanceKey)
	// mapped holds the instances of each expanded mapped task by map
	// index (mapping.go); outputLists, the .outputs list of each such
	// task that has settled, made once for all its downstream tries.
	mapped      map[string][]*store.TaskInstance
	outputLists map[string][]any
}

func (ar *activeRun) key() runKey { return runKey{ar.run.DAGID, ar.run.RunID} }

func tryKeyOf(ti *store.TaskInstance) wire.TryKey {
	return wire.TryKey{DAGID: ti.DAGID, RunID: ti.RunID, TaskID: ti.Key(), Try: ti.TryNumber}
}

// Write-marking helpers: the turn writes the final value at flush.
func (s *Scheduler) putRun(r *store.Run) {
	s.t.runs[runKey{r.DAGID, r.RunID}] = r
}

func (s *Scheduler) putTI(ti *store.TaskInstance) {
	s.putTIAt(tiKey{ti.DAGID, ti.RunID, ti.Key()}, ti)
}

// putTIAt is putTI for ti's key k.
func (s *Scheduler) putTIAt(k tiKey, ti *store.TaskInstance) {
	s.t.tis[k] = ti
	delete(s.t.lazyTIs, k)
}

func (s *Scheduler) putTry(tr *store.Try) {
	k := wire.TryKey{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.Key(), Try: tr.Number}
	s.t.tries[k] = tr
	delete(s.t.lazyTries, k)
}

// putStarted writes a task instance and its try marked started; unless the
// turn wrote them otherwise too, the commit may wait (turn.deferrable).
func (s *Scheduler) putStarted(ti *store.TaskInstance, tr *store.Try) {
	k := tiKey{ti.DAGID, ti.RunID, ti.Key()}
	if _, ok := s.t.tis[k]; !ok || s.t.lazyTIs[k] {
		s.t.tis[k] = ti
		s.t.lazyTIs[k] = true
	}
	if tr == nil {
		return
	}
	tk := wire.TryKey{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.Key(), Try: tr.Number}
	if _, ok := s.t.tries[tk]; !ok || s.t.lazyTries[tk] {
		s.t.tries[tk] = tr
		s.t.lazyTries[tk] = true
	}
}

func timePtr(t time.Time) *time.Time { return &t }

// runID builds a run id as docs/dag-format.md#run-ids names them.
func runID(runType string, logicalDate time.Time) string {
	return runType + "__" + logicalDate.UTC().Format(time.RFC3339Nano)
}

// createRun adds a queued run with a task instance per task. The caller
// has checked that no run exists for the logical date.
func (s *Scheduler) createRun(d *dag.DAG, runType string, ld time.Time, iv timetable.Interval, params map[string]any, now time.Time) *activeRun {
	r := &store.Run{
		DAGID:             d.ID,
		RunID:             runID(runType, ld),
		RunType:           runType,
		State:             store.RunQueued,
		LogicalDate:       ld.UTC(),
		DataIntervalStart: iv.Start.UTC(),
		DataIntervalEnd:   iv.End.UTC(),
		QueuedAt:          now.UTC(),
		Params:            params,
		DAGHash:           d.Hash,
	}
	ar := &activeRun{run: r, dag: d, tis: make(map[string]*store.TaskInstance, len(d.Tasks))}
	for _, t := range d.Tasks {
		ti := &store.TaskInstance{MapIndex: store.NoMapIndex,
			DAGID: d.ID, RunID: r.RunID, TaskID: t.ID,
			State:     store.TaskNone,
			MaxTries:  t.Retries + 1,
			Queue:     t.Queue,
			Pool:      t.Pool,
			PoolSlots: t.PoolSlots,
			Priority:  t.Priority,
		}
		ar.addTI(ti)
		s.putTI(ti)
	}
	s.active[ar.key()] = ar
	s.putRun(r)
	s.logRunCreated(r)
	return ar
}

// hasRunAt reports whether the DAG has a run for the logical date.
func (s *Scheduler) hasRunAt(dagID string, logicalDate time.Time) (bool, error) {
	for _, ar := range s.active {
		if ar.run.DAGID == dagID && ar.run.LogicalDate.Equal(logicalDate) {
			return true, nil
		}
	}
	_, err := s.cfg.Store.RunAt(dagID, logicalDate)
	switch {
	case err == nil:
		return true, nil
	case isNotFound(err):
		return false, nil
	}
	return false, err
}

// admit starts queued runs while their DAG is under max_active_runs,
// oldest logical date first.
func (s *Scheduler) admit(now time.Time) {
	running := map[string]int{}
	var queued []*activeRun
	for _, ar := range s.active {
		switch ar.run.State {
		case store.RunRunning:
			running[ar.run.DAGID]++
		case store.RunQueued:
			queued = append(queued, ar)
		}
	}
	sort.Slice(queued, func(i, j int) bool {
		a, b := queued[i].run, queued[j].run
		if ab, bb := isBackfill(a), isBackfill(b); ab != bb {
			return bb // scheduled and manual runs first: a backfill never starves them
		}
		return a.LogicalDate.Before(b.LogicalDate)
	})
	for _, ar := range queued {
		if running[ar.run.DAGID] >= ar.dag.MaxActiveRuns {
			continue
		}
		running[ar.run.DAGID]++
		ar.run.State = store.RunRunning
		ar.run.StartDate = timePtr(now.UTC())
		s.putRun(ar.run)
	}
}

// advance decides what every waiting task instance of a running run can
// do now, until nothing changes (skips and failures cascade), and ends the
// run when every instance has ended.
func (s *Scheduler) advance(ar *activeRun, now time.Time) {
	if ar.run.State != store.RunRunning {
		return
	}
	for changed := true; changed; {
		changed = false
		for _, t := range ar.dag.Tasks {
			ti := ar.tis[t.ID]
			if ti == nil {
				continue
			}
			if expanded(ti) {
				// A settled mapped task's instances have all ended: a
				// long run does not go over them again each turn.
				if !ti.State.Finished() && s.advanceMapped(ar, t, ti, now) {
					changed = true
				}
				continue
			}
			switch ti.State {
			case store.TaskUpForRetry, store.TaskUpForReschedule:
				if !now.Before(ti.NotBefore) {
					ti.State = store.TaskScheduled
					ti.NotBefore = time.Time{}
					s.putTI(ti)
					s.metrics.taskReady(ti, now)
				}
				continue
			case store.TaskNone:
			default:
				continue
			}
			s.upBuf = upstreamStates(ar, t, store.NoMapIndex, s.upBuf)
			switch evalTrigger(t.TriggerRule, s.upBuf) {
			case wait:
				continue
			case skip:
				s.endTI(ti, store.TaskSkipped, "", now)
			case upstreamFailed:
				s.endTI(ti, store.TaskUpstreamFailed, "", now)
			case ready:
				// A mapped group's tasks evaluate `when` per branch.
				if t.MapGroup == "" && !s.checkWhen(ar, t, ti, now) {
					break
				}
				if t.Map != nil {
					if !s.expandMapped(ar, t, ti, now) {
						continue
					}
					break
				}
				ti.State = store.TaskScheduled
				s.putTI(ti)
				s.metrics.taskReady(ti, now)
			}
			changed = true
		}
	}
	s.maybeFinishRun(ar, now)
}

// checkWhen evaluates the task's `when`: false skips it, an error fails it.
// It reports whether the task may go on.
func (s *Scheduler) checkWhen(ar *activeRun, t *dag.Task, ti *store.TaskInstance, now time.Time) bool {
	if t.When == nil {
		return true
	}
	ok, err := t.When.Eval(s.values(ar, t, ti, ti.TryNumber+1), ar.dag.Location)
	switch {
	case err != nil:
		s.endTI(ti, store.TaskFailed, err.Error(), now)
		return false
	case !ok:
		s.endTI(ti, store.TaskSkipped, "", now)
		return false
	}
	return true
}

func (s *Scheduler) endTI(ti *store.TaskInstance, state store.TaskState, errMsg string, now time.Time) {
	s.t.endedInDispatch = true
	ti.State = state
	ti.Error = errMsg
	ti.EndDate = timePtr(now.UTC())
	s.putTI(ti)
	switch state {
	case store.TaskFailed:
		s.taskCallbacks(ti, onFailure, now)
	case store.TaskSuccess:
		s.taskCallbacks(ti, onSuccess, now)
		if ti.MapIndex < 0 {
			s.taskOutlets(ti, now) // a mapped task's, once all its instances ended (settleMapped)
		}
	}
}

// maybeFinishRun ends a run whose task instances have all ended and runs
// its DAG's callbacks.
func (s *Scheduler) maybeFinishRun(ar *activeRun, now time.Time) {
	state, ended := endState(ar)
	if !ended {
		return
	}
	s.endRun(ar, state, now)
	s.runCallbacks(ar, now)
}

// endState reports whether every task instance of a run has ended and, if
// so, the run's state: success when each is success or skipped, failed
// otherwise (docs/dag-format.md#run-and-task-states).
//
// A mapped task counts by the instance standing for it, which is settled
// from its instances (mapping.go).
func endState(ar *activeRun) (state store.RunState, ended bool) {
	state = store.RunSuccess
	for _, t := range ar.dag.Tasks {
		ti := ar.tis[t.ID]
		switch ti.State {
		case store.TaskSuccess, store.TaskSkipped:
		case store.TaskFailed, store.TaskUpstreamFailed:
			state = store.RunFailed
		default:
			return "", false
		}
	}
	return state, true
}

// tryFailed ends the current try of ti as failed and retries the task when
// it has tries left (docs/dag-format.md#retries-timeouts-and-heartbeats).
func (s *Scheduler) tryFailed(ar *activeRun, ti *store.TaskInstance, errMsg string, exitCode *int, now time.Time) {
	k := tryKeyOf(ti)
	if tr := s.tryOf(k); tr != nil {
		tr.State = store.TaskFailed
		tr.EndDate = timePtr(now.UTC())
		tr.Error = errMsg
		tr.ExitCode = exitCode
		s.putTry(tr)
	}
	s.forget(k)
	ti.Error = errMsg
	ti.Pokes, ti.FirstPoke = 0, nil
	if ti.TryNumber < ti.MaxTries {
		t := ar.dag.Task(ti.TaskID)
		ti.State = store.TaskUpForRetry
		ti.NotBefore = now.Add(retryDelay(t, ti.TryNumber)).UTC()
		s.putTI(ti)
		s.metrics.retries.Inc()
		s.taskCallbacks(ti, onRetry, now)
		return
	}
	s.endTI(ti, store.TaskFailed, errMsg, now)
}

// trigger creates a manual run (docs/dag-format.md#manual-runs).
func (s *Scheduler) trigger(dagID string, req TriggerRequest, now time.Time) (*store.Run, error) {
	d := s.dags[dagID]
	if d == nil {
		return nil, fmt.Errorf("DAG %q: %w", dagID, ErrNotFound)
	}
	keep, err := UpstreamClosure(d, req.Tasks)
	if err != nil {
		return nil, err
	}
	ld, iv, params, err := manualRun(d, req, now)
	if err != nil {
		return nil, err
	}
	exists, err := s.hasRunAt(d.ID, ld)
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, fmt.Errorf("%w: DAG %s already has a run for logical date %s", ErrConflict, d.ID, ld.Format(time.RFC3339Nano))
	}
	ar := s.createRun(d, "manual", ld, iv, params, now)
	ar.run.NoCache = req.NoCache
	if keep != nil {
		for id, ti := range ar.tis {
			if !keep[id] {
				s.endTI(ti, store.TaskSkipped, "", now)
			}
		}
	}
	return ar.run, nil
}

// manualRun works out what a manual run carries: its logical date, data
// interval and params, each checked.
func manualRun(d *dag.DAG, req TriggerRequest, now time.Time) (time.Time, timetable.Interval, map[string]any, error) {
	params, err := d.ResolveParams(req.Params)
	if err != nil {
		return time.Time{}, timetable.Interval{}, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	ld := now.UTC().Truncate(time.Microsecond)
	if req.LogicalDate != nil {
		ld = req.LogicalDate.UTC()
	}
	iv, err := manualInterval(d, ld, req.LatestInterval)
	if err != nil {
		return time.Time{}, timetable.Interval{}, nil, err
	}
	return ld, iv, params, nil
}

// manualInterval is the data interval of a manual run with logical date
// ld (docs/dag-format.md#manual-runs): with latest, the latest interval of
// the schedule that had ended at ld; else the scheduled interval that
// starts at ld, or [ld, ld] when none does.
func manualInterval(d *dag.DAG, ld time.Time, latest bool) (timetable.Interval, error) {
	tt := d.Timetable
	if latest {
		if tt == nil {
			what := "no schedule"
			if d.Datasets != nil {
				what = "no cron schedule (it runs on datasets)"
			}
			return timetable.Interval{}, fmt.Errorf("%w: DAG %s has %s, so it has no latest interval", ErrInvalid, d.ID, what)
		}
		iv, ok := tt.LatestEnded(ld)
		if !ok {
			return timetable.Interval{}, fmt.Errorf("%w: no interval of DAG %s's schedule had ended at %s", ErrInvalid, d.ID, ld.Format(time.RFC3339Nano))
		}
		return timetable.Interval{Start: iv.Start.UTC(), End: iv.End.UTC()}, nil
	}
	if tt != nil {
		if iv, ok := tt.AtOrAfter(ld); ok && iv.Start.Equal(ld) {
			return timetable.Interval{Start: iv.Start.UTC(), End: iv.End.UTC()}, nil
		}
	}
	return timetable.Interval{Start: ld, End: ld}, nil
}

// Trigger creates a manual run and returns it once it is stored.
func (s *Scheduler) Trigger(ctx context.Context, dagID string, req TriggerRequest) (*store.Run, error) {
	v, err := s.do(ctx, func(now time.Time) (any, error) {
		r, err := s.trigger(dagID, req, now)
		if err != nil {
			return nil, err
		}
		cp := *r
		return &cp, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*store.Run), nil
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
