package uitest

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// Mark is a call to MarkRun (Tasks is nil) or MarkTasks.
type Mark struct {
	DAGID, RunID string
	Tasks        []string
	State        string
}

// MarkRun implements ui.Backend as the scheduler does: success makes every
// task instance that did not succeed or skip succeed, failed fails every
// one that has not ended, and the run takes the state. A try in flight ends
// with its instance (TryFinished turns true for it). Failing a run whose
// tasks all ended without a failure is a conflict.
func (b *Backend) MarkRun(ctx context.Context, dagID, runID string, state store.RunState) ([]string, error) {
	b.mu.Lock()
	b.Marks = append(b.Marks, Mark{DAGID: dagID, RunID: runID, State: string(state)})
	now := b.now().UTC()
	b.mu.Unlock()
	if state != store.RunSuccess && state != store.RunFailed {
		return nil, fmt.Errorf("%w: state %q: want success or failed", scheduler.ErrInvalid, state)
	}
	run, tis, err := b.markTarget(dagID, runID)
	if err != nil {
		return nil, err
	}
	var batch store.Batch
	changed := []string{}
	failed := false
	for _, ti := range tis {
		failed = failed || ti.State == store.TaskFailed || ti.State == store.TaskUpstreamFailed
		switch {
		case state == store.RunSuccess && ti.State != store.TaskSuccess && ti.State != store.TaskSkipped:
			b.markTI(&batch, ti, store.TaskSuccess, now)
		case state == store.RunFailed && !ti.State.Finished():
			b.markTI(&batch, ti, store.TaskFailed, now)
		default:
			continue
		}
		changed = append(changed, ti.TaskID)
	}
	if state == store.RunFailed && len(changed) == 0 && !failed {
		return nil, fmt.Errorf("%w: every task of run %s ended without a failure, so the run cannot be failed; mark one of its tasks failed instead", scheduler.ErrConflict, runID)
	}
	if run.State != state || len(changed) > 0 {
		run.State, run.EndDate = state, ptr(now)
		batch.PutRun(run)
	}
	return changed, b.st.Commit(ctx, &batch)
}

// MarkTasks implements ui.Backend as the scheduler does: the tasks take the
// state, their tries in flight end, the failed and upstream_failed
// instances downstream of them go back to none, and a finished run either
// takes the state its tasks give it or, with work to do again, is queued.
func (b *Backend) MarkTasks(ctx context.Context, dagID, runID string, tasks []string, state store.TaskState) ([]string, error) {
	b.mu.Lock()
	b.Marks = append(b.Marks, Mark{DAGID: dagID, RunID: runID, Tasks: slices.Clone(tasks), State: string(state)})
	now := b.now().UTC()
	info := b.dags[dagID]
	b.mu.Unlock()
	if state != store.TaskSuccess && state != store.TaskFailed {
		return nil, fmt.Errorf("%w: state %q: want success or failed", scheduler.ErrInvalid, state)
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("%w: no task to mark", scheduler.ErrInvalid)
	}
	run, tis, err := b.markTarget(dagID, runID)
	if err != nil {
		return nil, err
	}
	byID := map[string]*store.TaskInstance{}
	for _, ti := range tis {
		byID[ti.TaskID] = ti
	}
	for _, id := range tasks {
		if byID[id] == nil {
			return nil, fmt.Errorf("run %s of DAG %s has no task %q: %w", runID, dagID, id, scheduler.ErrNotFound)
		}
	}
	var batch store.Batch
	changed := []string{}
	for _, id := range tasks {
		if ti := byID[id]; ti.State != state && !slices.Contains(changed, id) {
			b.markTI(&batch, ti, state, now)
			changed = append(changed, id)
		}
	}
	if info != nil && len(changed) > 0 {
		seen := map[string]bool{}
		queue := slices.Clone(changed)
		for len(queue) > 0 {
			t := info.DAG.Task(queue[0])
			queue = queue[1:]
			if t == nil {
				continue
			}
			for _, down := range t.Downstream {
				if seen[down] || slices.Contains(tasks, down) {
					continue
				}
				seen[down] = true
				queue = append(queue, down)
				if ti := byID[down]; ti != nil && (ti.State == store.TaskFailed || ti.State == store.TaskUpstreamFailed) {
					ti.State, ti.StartDate, ti.EndDate, ti.Error, ti.Outputs = store.TaskNone, nil, nil, "", nil
					batch.PutTaskInstance(ti)
					changed = append(changed, down)
				}
			}
		}
	}
	if run.State.Finished() && len(changed) > 0 {
		run.State, run.EndDate = store.RunSuccess, ptr(now)
		for _, ti := range tis {
			switch {
			case !ti.State.Finished():
				run.State, run.EndDate = store.RunQueued, nil
			case run.State != store.RunQueued && (ti.State == store.TaskFailed || ti.State == store.TaskUpstreamFailed):
				run.State = store.RunFailed
			}
		}
		batch.PutRun(run)
	}
	return changed, b.st.Commit(ctx, &batch)
}

func (b *Backend) markTarget(dagID, runID string) (*store.Run, []*store.TaskInstance, error) {
	run, err := b.st.GetRun(dagID, runID)
	if err != nil {
		return nil, nil, fmt.Errorf("run %s of %s: %w", runID, dagID, scheduler.ErrNotFound)
	}
	tis, err := b.st.TaskInstances(dagID, runID)
	return run, tis, err
}

// markTI adds the marking of ti to batch, ending its try in flight.
func (b *Backend) markTI(batch *store.Batch, ti *store.TaskInstance, state store.TaskState, now time.Time) {
	if ti.State == store.TaskQueued || ti.State == store.TaskRunning || ti.State == store.TaskUpForReschedule {
		k := wire.TryKey{DAGID: ti.DAGID, RunID: ti.RunID, TaskID: ti.TaskID, Try: ti.TryNumber}
		if tr, err := b.st.GetTry(k.DAGID, k.RunID, k.TaskID, k.Try); err == nil {
			tr.State, tr.EndDate = state, ptr(now)
			tr.Error = fmt.Sprintf("marked %s by hand while %s; this try was stopped", state, ti.State)
			batch.PutTry(tr)
		}
		b.FinishTry(k)
	}
	ti.State, ti.EndDate, ti.NotBefore, ti.Error = state, ptr(now), time.Time{}, ""
	if state == store.TaskFailed {
		ti.Error = fmt.Sprintf("marked %s by hand", state)
	}
	batch.PutTaskInstance(ti)
}
