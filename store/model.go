package store

import "time"

// RunState is the state of a DAG run (docs/dag-format.md#run-and-task-states).
type RunState string

// Run states.
const (
	RunQueued  RunState = "queued"
	RunRunning RunState = "running"
	RunSuccess RunState = "success"
	RunFailed  RunState = "failed"
)

// Finished reports whether the run has ended.
func (s RunState) Finished() bool { return s == RunSuccess || s == RunFailed }

// TaskState is the state of a task instance (docs/dag-format.md#run-and-task-states).
type TaskState string

// Task instance states.
const (
	TaskNone            TaskState = "none"
	TaskScheduled       TaskState = "scheduled"
	TaskQueued          TaskState = "queued"
	TaskRunning         TaskState = "running"
	TaskSuccess         TaskState = "success"
	TaskFailed          TaskState = "failed"
	TaskUpForRetry      TaskState = "up_for_retry"
	TaskUpForReschedule TaskState = "up_for_reschedule"
	TaskSkipped         TaskState = "skipped"
	TaskUpstreamFailed  TaskState = "upstream_failed"
)

// Finished reports whether the task instance has ended for this run.
func (s TaskState) Finished() bool {
	switch s {
	case TaskSuccess, TaskFailed, TaskSkipped, TaskUpstreamFailed:
		return true
	}
	return false
}

// Run types, the prefix of run ids (docs/dag-format.md#run-ids).
const (
	RunTypeScheduled = "scheduled"
	RunTypeManual    = "manual"
	RunTypeBackfill  = "backfill"
	RunTypeDataset   = "dataset"
)

// Run is one run of a DAG for one logical date.
type Run struct {
	DAGID             string         `json:"dag_id"`
	RunID             string         `json:"run_id"`
	RunType           string         `json:"run_type"`
	State             RunState       `json:"state"`
	LogicalDate       time.Time      `json:"logical_date"`
	DataIntervalStart time.Time      `json:"data_interval_start"`
	DataIntervalEnd   time.Time      `json:"data_interval_end"`
	QueuedAt          time.Time      `json:"queued_at"`
	StartDate         *time.Time     `json:"start_date"`
	EndDate           *time.Time     `json:"end_date"`
	Params            map[string]any `json:"params"`
	// DAGHash is the DAG version the run runs on: the one it was created
	// with, unless a clear moved it to a later one (VersionChanges).
	DAGHash        string          `json:"dag_hash"`
	VersionChanges []VersionChange `json:"version_changes,omitempty"`
	BackfillID     string          `json:"backfill_id,omitempty"`
	// IgnoreDependsOnPast lets the run's tasks start whatever the previous
	// run did: the first run of a backfill.
	IgnoreDependsOnPast bool `json:"ignore_depends_on_past,omitempty"`
	// NoCache runs every task of the run whatever the task cache holds
	// (`kiln trigger --no-cache`, docs/artifacts.md#the-task-cache).
	NoCache bool `json:"no_cache,omitempty"`
	// TriggeringEvents are the dataset events a run of a DAG scheduled on
	// datasets was created for, oldest first (docs/dag-format.md#datasets).
	TriggeringEvents []DatasetEvent `json:"triggering_events,omitempty"`
}

// VersionChange records a run moved to another DAG version.
type VersionChange struct {
	At   time.Time `json:"at"`
	From string    `json:"from"`
	To   string    `json:"to"`
}

// TaskInstance is one task of one run; it goes through one or more tries.
type TaskInstance struct {
	DAGID  string `json:"dag_id"`
	RunID  string `json:"run_id"`
	TaskID string `json:"task_id"`
	// MapIndex is the index of a mapped task's instance in its list, or
	// NoMapIndex (docs/dag-format.md#mapping).
	MapIndex int `json:"map_index"`
	// MapLength is set on the instance that stands for a mapped task once
	// it expanded: how many instances it has. Its state is theirs taken
	// together.
	MapLength int `json:"map_length,omitempty"`
	// Item is a mapped instance's element of the list, as .item sees it.
	Item      any       `json:"item,omitzero"`
	State     TaskState `json:"state"`
	TryNumber int       `json:"try_number"` // the current or last try; 0 before the first
	MaxTries  int       `json:"max_tries"`  // 1 + retries
	Queue     string    `json:"queue"`
	Pool      string    `json:"pool"`
	PoolSlots int       `json:"pool_slots"`
	Priority  int       `json:"priority"`
	// NotBefore holds a task waiting for a retry delay or a sensor's next
	// poke; zero when it may run at once.
	NotBefore time.Time      `json:"not_before,omitzero"`
	QueuedAt  *time.Time     `json:"queued_at"`
	StartDate *time.Time     `json:"start_date"`
	EndDate   *time.Time     `json:"end_date"`
	Worker    string         `json:"worker,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	// Artifacts are the artifacts of the successful try
	// (docs/artifacts.md), which downstream inputs read.
	Artifacts []Artifact `json:"artifacts,omitempty"`
	// CachedFrom is set when the task instance succeeded from the task
	// cache without running (docs/artifacts.md#the-task-cache): the try
	// whose result it took.
	CachedFrom *TryRef `json:"cached_from,omitempty"`
	// NoCache makes the next try run whatever the cache holds; `kiln
	// tasks clear` sets it.
	NoCache bool   `json:"no_cache,omitempty"`
	Error   string `json:"error,omitempty"`
	// Pokes counts a sensor's pokes in the current try; FirstPoke is when
	// the try's first poke was queued (its sensor_timeout runs from there).
	Pokes     int        `json:"pokes,omitempty"`
	FirstPoke *time.Time `json:"first_poke,omitempty"`
}

// Try is one attempt at running a task instance.
type Try struct {
	DAGID     string         `json:"dag_id"`
	RunID     string         `json:"run_id"`
	TaskID    string         `json:"task_id"`
	MapIndex  int            `json:"map_index"` // as TaskInstance.MapIndex
	Number    int            `json:"try_number"`
	State     TaskState      `json:"state"`
	Worker    string         `json:"worker,omitempty"`
	QueuedAt  time.Time      `json:"queued_at"`
	StartDate *time.Time     `json:"start_date"`
	EndDate   *time.Time     `json:"end_date"`
	ExitCode  *int           `json:"exit_code"`
	Error     string         `json:"error,omitempty"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	// Artifacts are what the try stored (docs/artifacts.md).
	Artifacts []Artifact `json:"artifacts,omitempty"`
	// CachedFrom is set on a try that did not run: its result is that of
	// the named try, found in the task cache (docs/artifacts.md#the-task-cache).
	CachedFrom *TryRef `json:"cached_from,omitempty"`
	// Callback is set on the tries of callback stages (docs/dag-format.md#callbacks), which
	// belong to no task instance.
	Callback bool `json:"callback,omitempty"`
	// Manifest is what the try ran (docs/reproducibility.md#what-each-try-records); nil for
	// the tries of callback stages and for tries stored before manifests.
	Manifest *Manifest `json:"manifest,omitempty"`
}

// DAGState is what the scheduler keeps about a DAG between restarts.
type DAGState struct {
	DAGID  string `json:"dag_id"`
	Paused bool   `json:"paused"`
	// LastScheduled is the logical date of the newest scheduled run created.
	LastScheduled time.Time `json:"last_scheduled,omitzero"`
	// Seen is set once the DAG was first loaded, so `paused` in the file
	// only applies the first time.
	Seen bool `json:"seen"`
}

// Pool is a named number of slots shared by the tasks that name it.
type Pool struct {
	Name  string `json:"name"`
	Slots int    `json:"slots"`
}

// DefaultPool is the pool of tasks that name none; it always exists.
const DefaultPool = "default_pool"

// DefaultPoolSlots is default_pool's size until it is set.
const DefaultPoolSlots = 128
