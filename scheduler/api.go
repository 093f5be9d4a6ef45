package scheduler

import (
	"errors"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/dag/timetable"
)

// Errors the API maps to HTTP statuses; returned errors wrap them.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid request")
	ErrConflict = errors.New("conflict")
)

// TriggerRequest asks for a manual run.
type TriggerRequest struct {
	// LogicalDate defaults to the trigger time.
	LogicalDate *time.Time
	// Params are the run's params, checked against the DAG's schema;
	// defaults fill the ones not given.
	Params map[string]any
	// LatestInterval makes the run cover the latest interval of the
	// schedule that had ended at the logical date, as Airflow 2 inferred
	// a manual run's interval; without it a logical date that starts an
	// interval of the schedule covers that interval, any other an empty
	// one (docs/dag-format.md#manual-runs).
	LatestInterval bool
	// Tasks, when not empty, restricts the run to these tasks and every
	// task they depend on, directly or not; the DAG's other tasks are
	// skipped from the start. `kiln dags test --task` asks for this
	// (docs/cli.md#kiln-dags-test).
	Tasks []string
	// NoCache runs every task whatever the task cache holds
	// (docs/artifacts.md#the-task-cache).
	NoCache bool
}

// ClearRequest says which task instances of a run to clear so they run again.
type ClearRequest struct {
	Tasks []string // empty: every task
	// MapIndexes, with exactly one mapped task in Tasks, clears only
	// those of its instances (and, with Downstream, the same branches of
	// its mapped group) instead of expanding it again
	// (docs/dag-format.md#mapping).
	MapIndexes []int
	Downstream bool // also clear everything downstream of them
	OnlyFailed bool // only failed and upstream_failed instances
	// Latest moves the run to the DAG's current version first; by default
	// it runs again on the version it was created with.
	Latest bool
}

// DAGInfo is a loaded DAG with its scheduling state.
type DAGInfo struct {
	DAG    *dag.DAG
	Paused bool
	// NextDataInterval is the next interval a scheduled run will be
	// created for (when it ends); nil for manual-only or paused DAGs.
	NextDataInterval *timetable.Interval
	// Stale is true when the file now has errors and this is its last
	// good version.
	Stale bool
	// File is the DAG's file relative to the DAGs folder.
	File string
}

// Clock tells the time and wakes the scheduler's loop; tests inject a fake
// one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed. A fake
	// clock may return a channel that never does, when its test drives
	// every turn itself.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
