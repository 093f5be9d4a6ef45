package scheduler

import (
	"cmp"
	"fmt"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// Task mapping (docs/dag-format.md#mapping). A mapped task has, besides
// the instance standing for it (map index -1, under its task id), one
// instance per element of its list, TASK[0], TASK[1]…, created when the
// task became ready: the turn that evaluates the `map` writes the
// instances and the expanded one together, so a restart sees all of them
// or none. The instance standing for the task is running while its
// instances are, then takes their state together (aggregate). A downstream
// task's trigger rule sees the state of every instance; in a mapped group
// each branch's tasks see the same branch's, so a branch runs as soon as
// its own upstream ends, depth-first.

// addTI puts a task instance in the run's maps.
func (ar *activeRun) addTI(ti *store.TaskInstance) { ar.addTIAt(ti.Key(), ti) }

// addTIAt is addTI for ti's instance key k.
func (ar *activeRun) addTIAt(k string, ti *store.TaskInstance) {
	ar.tis[k] = ti
	if ti.MapIndex < 0 {
		return
	}
	if ar.mapped == nil {
		ar.mapped = map[string][]*store.TaskInstance{}
	}
	list := ar.mapped[ti.TaskID]
	if n := ti.MapIndex + 1; n > len(list) {
		list = append(list, make([]*store.TaskInstance, n-len(list))...)
	}
	list[ti.MapIndex] = ti
	ar.mapped[ti.TaskID] = list
}

// instances returns the instances of an expanded mapped task, in index
// order: those of its current list, when instances beyond it remain
// from an earlier, longer one.
func (ar *activeRun) instances(taskID string) []*store.TaskInstance {
	parent := ar.tis[taskID]
	if parent == nil || parent.MapLength == 0 {
		return nil
	}
	list := ar.mapped[taskID]
	return list[:min(parent.MapLength, len(list))]
}

// expanded reports whether ti stands for a mapped task that expanded.
func expanded(ti *store.TaskInstance) bool { return ti.MapIndex < 0 && ti.MapLength > 0 }

// upstreamStates appends to buf the states a task's trigger rule sees for
// its instance with map index idx (-1 for an unmapped task): an upstream
// of the same mapped group by its instance of the same branch, another
// expanded mapped task by every instance, any other by its one instance.
func upstreamStates(ar *activeRun, t *dag.Task, idx int, buf []store.TaskState) []store.TaskState {
	buf = buf[:0]
	for _, id := range t.DependsOn {
		up := ar.tis[id]
		switch {
		case idx >= 0 && t.MapGroup != "" && ar.dag.Task(id).MapGroup == t.MapGroup:
			if in := ar.tis[store.InstanceKey(id, idx)]; in != nil {
				up = in
			}
		case expanded(up):
			for _, in := range ar.instances(id) {
				buf = append(buf, in.State)
			}
			continue
		}
		buf = append(buf, up.State)
	}
	return buf
}

// expandMapped expands a mapped task, or every task of its mapped group,
// whose instance ti just became ready. It reports whether it did: a task
// of a mapped group waits until every upstream of the group has ended.
func (s *Scheduler) expandMapped(ar *activeRun, t *dag.Task, ti *store.TaskInstance, now time.Time) bool {
	unit := []*dag.Task{t}
	if t.MapGroup != "" {
		unit = unit[:0]
		for _, id := range ar.dag.Group(t.MapGroup).Tasks {
			unit = append(unit, ar.dag.Task(id))
		}
		for _, gt := range unit {
			for _, up := range gt.DependsOn {
				if ar.dag.Task(up).MapGroup != t.MapGroup && !ar.tis[up].State.Finished() {
					return false
				}
			}
		}
	}
	items, err := t.Map.Eval(s.values(ar, t, ti, ti.TryNumber+1), ar.dag.Location)
	switch {
	case err != nil:
		s.endTI(ti, store.TaskFailed, err.Error(), now)
		return true
	case len(items) == 0:
		for _, gt := range unit {
			if p := ar.tis[gt.ID]; !p.State.Finished() {
				s.endTI(p, store.TaskSkipped, "", now)
			}
		}
		return true
	}
	for _, gt := range unit {
		s.expand(ar, gt, items, now)
	}
	s.logExpanded(ar, t, len(items))
	return true
}

// expand gives a task one instance per item, reusing those an earlier
// expansion left (a cleared task keeps its tries' numbers), and marks
// the task's own instance running. The instances of a task mapped on its
// own are ready at once: its upstream were met when it expanded.
func (s *Scheduler) expand(ar *activeRun, t *dag.Task, items []any, now time.Time) {
	parent := ar.tis[t.ID]
	old := ar.mapped[t.ID]
	state := store.TaskNone
	if t.MapGroup == "" {
		state = store.TaskScheduled
	}
	for i, item := range items {
		var in *store.TaskInstance
		if i < len(old) && old[i] != nil {
			in = old[i]
			s.resetTI(ar, in)
		} else {
			in = &store.TaskInstance{DAGID: parent.DAGID, RunID: parent.RunID, TaskID: t.ID, MapIndex: i,
				State: store.TaskNone, MaxTries: t.Retries + 1,
				Queue: t.Queue, Pool: t.Pool, PoolSlots: t.PoolSlots, Priority: t.Priority}
		}
		in.Item, in.State = item, state
		k := tiKey{in.DAGID, in.RunID, store.InstanceKey(t.ID, i)}
		ar.addTIAt(k.taskID, in)
		s.putTIAt(k, in)
		if state == store.TaskScheduled {
			s.metrics.taskReadyAt(k, now)
		}
	}
	for _, in := range old[min(len(items), len(old)):] {
		if in != nil && in.State != store.TaskSkipped {
			in.State, in.Error, in.EndDate = store.TaskSkipped, fmt.Sprintf("removed: the task was expanded again, over %d items", len(items)), timePtr(now.UTC())
			s.putTI(in)
		}
	}
	parent.MapLength = len(items)
	delete(ar.outputLists, t.ID)
	parent.State = store.TaskRunning
	parent.StartDate, parent.EndDate, parent.Error = timePtr(now.UTC()), nil, ""
	s.putTI(parent)
}

// advanceMapped decides what each waiting instance of an expanded mapped
// task can do, then settles the task's own instance once they have all
// ended. It reports whether anything changed.
func (s *Scheduler) advanceMapped(ar *activeRun, t *dag.Task, parent *store.TaskInstance, now time.Time) bool {
	changed := false
	buf := s.upBuf
	ended := 0
	for _, in := range ar.instances(t.ID) {
		switch in.State {
		case store.TaskUpForRetry, store.TaskUpForReschedule:
			if !now.Before(in.NotBefore) {
				in.State = store.TaskScheduled
				in.NotBefore = time.Time{}
				s.putTI(in)
				s.metrics.taskReady(in, now)
				changed = true
			}
			continue
		case store.TaskNone:
		default:
			if in.State.Finished() {
				ended++
			}
			continue
		}
		buf = upstreamStates(ar, t, in.MapIndex, buf)
		if t.MapGroup == "" {
			buf = buf[:0] // a cleared instance: its upstream were met when it expanded
		}
		switch evalTrigger(t.TriggerRule, buf) {
		case wait:
			continue
		case skip:
			s.endTI(in, store.TaskSkipped, "", now)
			ended++
		case upstreamFailed:
			s.endTI(in, store.TaskUpstreamFailed, "", now)
			ended++
		case ready:
			if t.MapGroup != "" && !s.checkWhen(ar, t, in, now) {
				if in.State.Finished() {
					ended++
				}
				break
			}
			in.State = store.TaskScheduled
			s.putTI(in)
			s.metrics.taskReady(in, now)
		}
		changed = true
	}
	s.upBuf = buf
	if ended == parent.MapLength && !parent.State.Finished() {
		s.settleMapped(ar, parent, now)
		changed = true
	}
	return changed
}

// settleMapped ends a mapped task's own instance once its instances have
// all ended: failed when one failed, else upstream_failed when one was,
// else success when one succeeded, else skipped. Callbacks fired for each
// instance; its outlets are updated once, for the task.
func (s *Scheduler) settleMapped(ar *activeRun, parent *store.TaskInstance, now time.Time) {
	var failed, upFailed, succeeded bool
	for _, in := range ar.instances(parent.TaskID) {
		switch in.State {
		case store.TaskFailed:
			failed = true
		case store.TaskUpstreamFailed:
			upFailed = true
		case store.TaskSuccess:
			succeeded = true
		}
	}
	state := store.TaskSkipped
	switch {
	case failed:
		state = store.TaskFailed
	case upFailed:
		state = store.TaskUpstreamFailed
	case succeeded:
		state = store.TaskSuccess
	}
	s.t.endedInDispatch = true
	parent.State = state
	parent.EndDate = timePtr(now.UTC())
	s.putTI(parent)
	if state == store.TaskSuccess {
		s.taskOutlets(parent, now)
	}
}

// reopenMapped puts a settled mapped task back to running when one of its
// instances is to run again (a clear or mark of that instance).
func (s *Scheduler) reopenMapped(ar *activeRun, in *store.TaskInstance) {
	if in.MapIndex < 0 {
		return
	}
	parent := ar.tis[in.TaskID]
	if parent == nil || parent.State == store.TaskRunning {
		return
	}
	parent.State, parent.EndDate, parent.Error = store.TaskRunning, nil, ""
	s.putTI(parent)
	delete(ar.outputLists, parent.TaskID)
}

// outputList is .outputs.TASK of the expanded mapped task taskID. Once the
// task has settled its instances change no more (until reopenMapped or a
// new expansion), so the list is made once: a task mapped over another's
// 10,000 instances does not make it again for each of its own.
func (ar *activeRun) outputList(taskID string) []any {
	if list, ok := ar.outputLists[taskID]; ok {
		return list
	}
	list := mappedOutputs(ar.instances(taskID))
	if ar.tis[taskID].State.Finished() {
		if ar.outputLists == nil {
			ar.outputLists = map[string][]any{}
		}
		ar.outputLists[taskID] = list
	}
	return list
}

// mappedOutputs is what .outputs.TASK holds for an expanded mapped task:
// each instance's outputs in index order, an empty map for one without.
func mappedOutputs(ins []*store.TaskInstance) []any {
	out := make([]any, len(ins))
	for i, in := range ins {
		if in.Outputs != nil {
			out[i] = in.Outputs
		} else {
			out[i] = map[string]any{}
		}
	}
	return out
}

// compareInstances orders two candidates of the same run and priority:
// within a mapped group by branch, then task (depth-first, so a branch
// goes on before the next one starts); otherwise by task, then index.
func compareInstances(d *dag.DAG, a, b candidate) int {
	if a.t.MapGroup != "" && a.t.MapGroup == b.t.MapGroup {
		return cmp.Or(cmp.Compare(a.ti.MapIndex, b.ti.MapIndex), cmp.Compare(d.TaskIndex(a.t.ID), d.TaskIndex(b.t.ID)))
	}
	return cmp.Or(cmp.Compare(d.TaskIndex(a.t.ID), d.TaskIndex(b.t.ID)), cmp.Compare(a.ti.MapIndex, b.ti.MapIndex))
}
