package ui_test

import (
	"context"
	"time"

	"github.com/kilnhq/kiln/store"
)

// Histories for read-only page tests and benchmarks, written into the
// store before the scheduler starts (kilntest.Options.Seed): the finished
// runs a scheduler would have left, which it never touches again.

// seed is an Options.Seed that commits what fill puts in a batch, in
// commits of about a thousand runs.
func seed(fill func(put func(*store.Run, ...*store.TaskInstance))) func(*store.Store) error {
	return func(st *store.Store) error {
		var b store.Batch
		runs := 0
		var err error
		fill(func(r *store.Run, tis ...*store.TaskInstance) {
			if err != nil {
				return
			}
			b.PutRun(r)
			for _, ti := range tis {
				b.PutTaskInstance(ti)
			}
			if runs++; runs%1000 == 0 {
				err = st.Commit(context.Background(), &b)
				b.Reset()
			}
		})
		if err != nil {
			return err
		}
		return st.Commit(context.Background(), &b)
	}
}

// finishedRun is a scheduled run of a DAG with a daily schedule at date,
// in state, queued when its interval ended and done in a minute.
func finishedRun(dagID string, date time.Time, state store.RunState) *store.Run {
	start, end := date.AddDate(0, 0, 1), date.AddDate(0, 0, 1).Add(time.Minute)
	return &store.Run{
		DAGID: dagID, RunID: "scheduled__" + date.Format(time.RFC3339), RunType: store.RunTypeScheduled,
		State: state, LogicalDate: date, DataIntervalStart: date, DataIntervalEnd: date.AddDate(0, 0, 1),
		QueuedAt: start, StartDate: &start, EndDate: &end, Params: map[string]any{"region": "eu", "sample_frac": 1},
	}
}

// finishedTask is the task instance of a finished run in state, tried
// once.
func finishedTask(r *store.Run, taskID string, state store.TaskState) *store.TaskInstance {
	return &store.TaskInstance{MapIndex: store.NoMapIndex,
		DAGID: r.DAGID, RunID: r.RunID, TaskID: taskID, State: state, TryNumber: 1, MaxTries: 1,
		Queue: "default", Pool: "default_pool", PoolSlots: 1, Priority: 1,
		QueuedAt: &r.QueuedAt, StartDate: r.StartDate, EndDate: r.EndDate, Worker: "worker-1",
	}
}
