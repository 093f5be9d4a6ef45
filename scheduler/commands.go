package scheduler

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// SetPaused pauses or unpauses a DAG; a paused DAG gets no scheduled runs.
func (s *Scheduler) SetPaused(ctx context.Context, dagID string, paused bool) error {
	_, err := s.do(ctx, func(now time.Time) (any, error) {
		if s.dags[dagID] == nil {
			return nil, fmt.Errorf("DAG %q: %w", dagID, ErrNotFound)
		}
		st := s.states[dagID]
		st.Paused = paused
		s.t.states[dagID] = st
		s.nextCron[dagID] = now
		if !paused {
			// The events that came while it was paused (datasets.go).
			s.triggerOnDatasets(s.dags[dagID], now)
		}
		return nil, nil
	})
	return err
}

// SetPool creates or resizes a pool.
func (s *Scheduler) SetPool(ctx context.Context, name string, slots int) error {
	if slots < 0 || !dag.ValidPoolName(name) {
		return fmt.Errorf("%w: pool %q with %d slots: want a name of %s and slots >= 0", ErrInvalid, name, slots, dag.PoolNameRule)
	}
	_, err := s.do(ctx, func(time.Time) (any, error) {
		s.pools[name] = slots
		s.t.pools[name] = slots
		return nil, nil
	})
	return err
}

// DeletePool removes a pool; default_pool cannot be removed.
func (s *Scheduler) DeletePool(ctx context.Context, name string) error {
	if name == store.DefaultPool {
		return fmt.Errorf("%w: %s always exists; set its size instead", ErrInvalid, name)
	}
	_, err := s.do(ctx, func(time.Time) (any, error) {
		if _, ok := s.pools[name]; !ok {
			return nil, fmt.Errorf("pool %q: %w", name, ErrNotFound)
		}
		delete(s.pools, name)
		s.t.pools[name] = -1
		return nil, nil
	})
	return err
}

// Clear resets task instances of a run so they run again, with a fresh
// set of retries, and puts the run back to running. The queued or running
// try of a task it clears is stopped first. It returns the ids
// of the cleared tasks. A cleared task runs whatever the task cache holds
// (docs/artifacts.md#the-task-cache).
func (s *Scheduler) Clear(ctx context.Context, dagID, runID string, req ClearRequest) ([]string, error) {
	v, err := s.do(ctx, func(now time.Time) (any, error) {
		cleared, err := s.clear(dagID, runID, req, now)
		if ar := s.active[runKey{dagID, runID}]; ar != nil {
			for _, id := range cleared {
				ar.tis[id].NoCache = true
			}
		}
		return cleared, err
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

func (s *Scheduler) clear(dagID, runID string, req ClearRequest, now time.Time) ([]string, error) {
	if s.dags[dagID] == nil {
		if _, err := s.cfg.Store.GetRun(dagID, runID); err != nil {
			return nil, fmt.Errorf("DAG %q: %w", dagID, ErrNotFound)
		}
	}
	ar, err := s.activate(dagID, runID)
	if err != nil {
		return nil, err
	}
	if err := s.checkClear(ar, req, now); err != nil {
		if ar.run.State.Finished() {
			delete(s.active, ar.key())
		}
		return nil, err
	}
	ar = s.active[ar.key()] // moved to the latest version, perhaps
	selected := req.Tasks
	if len(selected) == 0 {
		for _, t := range ar.dag.Tasks {
			selected = append(selected, t.ID)
		}
	}
	if req.Downstream {
		selected = s.withDownstream(ar, selected)
	}
	var cleared []string
	clearTI := func(ti *store.TaskInstance) {
		if req.OnlyFailed && !failedState(ti.State) {
			return
		}
		// As in Airflow, a queued or running try is stopped, and the task
		// runs again.
		s.stopTry(ti, store.TaskFailed, "cleared by hand", now)
		s.resetTI(ar, ti)
		s.reopenMapped(ar, ti)
		cleared = append(cleared, ti.Key())
	}
	for _, id := range selected {
		ti := ar.tis[id]
		if ti == nil {
			continue
		}
		switch {
		case !expanded(ti):
			clearTI(ti)
		case len(req.MapIndexes) > 0 && sameBranches(ar.dag, req.Tasks[0], id):
			for _, i := range req.MapIndexes {
				clearTI(ar.tis[store.InstanceKey(id, i)])
			}
		case req.OnlyFailed:
			for _, in := range ar.instances(id) {
				clearTI(in)
			}
		default:
			// The whole task: its tries in flight are stopped, and it
			// expands again when it is ready, reusing its instances.
			for _, in := range ar.instances(id) {
				if !in.State.Finished() {
					s.stopTry(in, store.TaskFailed, "cleared by hand", now)
					in.State, in.Error, in.EndDate = store.TaskFailed, "cleared by hand with its task", timePtr(now.UTC())
					s.putTI(in)
				}
			}
			ti.MapLength = 0
			clearTI(ti)
		}
	}
	switch {
	case len(cleared) > 0 && ar.run.State.Finished():
		ar.run.State = store.RunQueued
		ar.run.EndDate = nil
		s.putRun(ar.run)
	case ar.run.State.Finished():
		delete(s.active, ar.key()) // nothing to do: it stays finished
	}
	if cleared == nil {
		cleared = []string{}
	}
	return cleared, nil
}

// checkClear checks the tasks a clear names, against the run's own
// version, or first moves the run to the DAG's current version when
// req.Latest asks for it.
func (s *Scheduler) checkClear(ar *activeRun, req ClearRequest, now time.Time) error {
	if req.Latest {
		if err := s.moveToLatest(ar, now); err != nil {
			return err
		}
		ar = s.active[ar.key()]
	}
	for _, id := range req.Tasks {
		if ar.dag.Task(id) == nil {
			return fmt.Errorf("%w: DAG %s has no task %q in the version %s the run runs on", ErrInvalid, ar.run.DAGID, id, short(ar.dag.Hash))
		}
	}
	if len(req.MapIndexes) == 0 {
		return nil
	}
	if len(req.Tasks) != 1 {
		return fmt.Errorf("%w: map indexes name instances of one mapped task: name exactly one task", ErrInvalid)
	}
	id := req.Tasks[0]
	ti := ar.tis[id]
	if ti == nil || !expanded(ti) {
		what := "is not mapped"
		if ar.dag.Task(id).Map != nil {
			what = "has not expanded in this run"
		}
		return fmt.Errorf("%w: task %s %s, so it has no instance by map index", ErrInvalid, id, what)
	}
	for _, i := range req.MapIndexes {
		if i < 0 || i >= ti.MapLength {
			return fmt.Errorf("%w: task %s has map indexes 0 to %d in this run, not %d", ErrInvalid, id, ti.MapLength-1, i)
		}
	}
	return nil
}

// failedState reports whether a clear with only_failed takes an instance
// in state st.
func failedState(st store.TaskState) bool {
	return st == store.TaskFailed || st == store.TaskUpstreamFailed
}

// sameBranches reports whether a clear of some instances of task named
// clears the same instances of task id: the task itself, or another of
// its mapped group.
func sameBranches(d *dag.DAG, named, id string) bool {
	if id == named {
		return true
	}
	g := d.Task(named).MapGroup
	return g != "" && d.Task(id).MapGroup == g
}

// moveToLatest moves a run that has nothing queued or running to the
// DAG's current version, and records the move in the run.
func (s *Scheduler) moveToLatest(ar *activeRun, now time.Time) error {
	cur := s.dags[ar.run.DAGID]
	if cur == nil {
		return fmt.Errorf("%w: DAG %s is not loaded: there is no current version to move the run to", ErrInvalid, ar.run.DAGID)
	}
	if cur.Hash == ar.dag.Hash {
		return nil
	}
	for _, ti := range ar.tis {
		if ti.State == store.TaskQueued || ti.State == store.TaskRunning {
			return fmt.Errorf("%w: task %s of the run is %s: a run moves to the current version once nothing of it is queued or running", ErrConflict, ti.TaskID, ti.State)
		}
	}
	r := ar.run
	r.VersionChanges = append(r.VersionChanges, store.VersionChange{At: now.UTC(), From: ar.dag.Hash, To: cur.Hash})
	r.DAGHash = cur.Hash
	s.putRun(r)
	stored, err := s.cfg.Store.TaskInstances(r.DAGID, r.RunID)
	if err != nil {
		return err
	}
	// The loop's instances are ahead of the store until the turn commits:
	// they win over what is stored.
	for i, ti := range stored {
		if mine := ar.tis[ti.Key()]; mine != nil {
			stored[i] = mine
		}
	}
	moved := s.assemble(r, cur, stored)
	s.active[moved.key()] = moved
	return nil
}

// short is a version hash shortened for messages.
func short(hash string) string { return hash[:min(len(hash), 12)] }

// resetTI puts a task instance back to none, with a fresh set of retries,
// so that the run schedules it again.
func (s *Scheduler) resetTI(ar *activeRun, ti *store.TaskInstance) {
	t := ar.dag.Task(ti.TaskID)
	ti.State = store.TaskNone
	ti.MaxTries = ti.TryNumber + t.Retries + 1
	ti.NotBefore = time.Time{}
	ti.StartDate, ti.EndDate, ti.Error, ti.Outputs = nil, nil, "", nil
	ti.Artifacts, ti.CachedFrom = nil, nil
	s.putTI(ti)
}

// withDownstream adds every task downstream of the given ones, which may
// be instance keys of mapped instances (store.InstanceKey).
func (s *Scheduler) withDownstream(ar *activeRun, ids []string) []string {
	out := slices.Clone(ids)
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	for i := 0; i < len(out); i++ {
		id, _, _ := store.SplitInstanceKey(out[i])
		for _, down := range ar.dag.Task(id).Downstream {
			if !seen[down] {
				seen[down] = true
				out = append(out, down)
			}
		}
	}
	return out
}

// activate returns the active run, loading a finished one from the store
// into the loop's state.
func (s *Scheduler) activate(dagID, runID string) (*activeRun, error) {
	if ar := s.active[runKey{dagID, runID}]; ar != nil {
		return ar, nil
	}
	r, err := s.cfg.Store.GetRun(dagID, runID)
	if isNotFound(err) {
		return nil, fmt.Errorf("run %s of DAG %s: %w", runID, dagID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	ar, err := s.load(r)
	if err != nil {
		return nil, err
	}
	s.active[ar.key()] = ar
	return ar, nil
}

// load builds an active run from the store, with the DAG version it
// runs on and an instance for every task of that version (those of a
// version the run moved to are created).
func (s *Scheduler) load(r *store.Run) (*activeRun, error) {
	d, err := s.version(r)
	if err != nil {
		return nil, err
	}
	tis, err := s.cfg.Store.TaskInstances(r.DAGID, r.RunID)
	if err != nil {
		return nil, err
	}
	return s.assemble(r, d, tis), nil
}

// assemble builds an active run on version d from its task instances,
// keeping those of d's tasks and creating the missing ones.
func (s *Scheduler) assemble(r *store.Run, d *dag.DAG, tis []*store.TaskInstance) *activeRun {
	ar := &activeRun{run: r, dag: d, tis: make(map[string]*store.TaskInstance, len(d.Tasks))}
	for _, ti := range tis {
		t := d.Task(ti.TaskID)
		switch {
		case t == nil:
		case t.Map == nil && ti.MapIndex >= 0:
			// An instance of a task this version does not map.
		case t.Map == nil:
			ti.MapLength = 0
			ar.addTI(ti)
		default:
			ar.addTI(ti)
		}
	}
	for _, t := range d.Tasks {
		if ar.tis[t.ID] == nil {
			ti := &store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: r.DAGID, RunID: r.RunID, TaskID: t.ID, State: store.TaskNone,
				MaxTries: t.Retries + 1, Queue: t.Queue, Pool: t.Pool, PoolSlots: t.PoolSlots, Priority: t.Priority}
			ar.addTI(ti)
			s.putTI(ti)
		}
	}
	return ar
}
