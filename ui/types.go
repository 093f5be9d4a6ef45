package ui

import (
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// The bodies of the API, shared by the server and the CLI. Times are UTC;
// a time that is not known yet is null. Lists are never null.

// DAG is a DAG as GET /api/v1/dags lists it.
type DAG struct {
	DAGID       string `json:"dag_id"`
	Description string `json:"description"`
	// Schedule is the schedule as dag.DAG.ScheduleText gives it: the cron
	// spec as written, the datasets, or both; null for a manual-only DAG.
	Schedule *string  `json:"schedule"`
	Timezone string   `json:"timezone"`
	Tags     []string `json:"tags"`
	Paused   bool     `json:"paused"`
	// NextDataInterval is the data interval of the next scheduled run;
	// null when none is due (manual-only, past end_date).
	NextDataInterval *Interval `json:"next_data_interval"`
	File             string    `json:"file"`
	TaskCount        int       `json:"task_count"`
	Params           []Param   `json:"params"`
	// Stale is true when a newer version of the DAG's file has errors and
	// this, the last good version, is the one that runs.
	Stale bool `json:"stale"`
}

// DAGDetail is one DAG as GET /api/v1/dags/{dag} shows it.
type DAGDetail struct {
	DAG
	StartDate      *time.Time `json:"start_date"`
	EndDate        *time.Time `json:"end_date"`
	Catchup        bool       `json:"catchup"`
	MaxActiveRuns  int        `json:"max_active_runs"`
	MaxActiveTasks int        `json:"max_active_tasks"`
	Tasks          []Task     `json:"tasks"` // in file order
	// Groups are the DAG's task groups (docs/dag-format.md#task-groups),
	// left out when it has none.
	Groups []Group `json:"groups,omitempty"`
}

// Group is a task group of a DAG.
type Group struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Tasks       []string `json:"tasks"`
}

// Interval is a data interval [start, end).
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Param is a DAG's run parameter, a JSON-Schema subset (docs/dag-format.md#params).
type Param struct {
	Name string `json:"name"`
	// Type is a JSON-Schema type; empty for a param of any type.
	Type string `json:"type"`
	// Required is true when the param has no default, and a run must
	// give it.
	Required    bool     `json:"required"`
	Default     any      `json:"default"`
	Enum        []any    `json:"enum"`
	Minimum     *float64 `json:"minimum"`
	Maximum     *float64 `json:"maximum"`
	Description string   `json:"description"`
}

// Task is one task of a DAG.
type Task struct {
	TaskID      string   `json:"task_id"`
	Plugin      string   `json:"plugin"`
	DependsOn   []string `json:"depends_on"`
	TriggerRule string   `json:"trigger_rule"`
	Retries     int      `json:"retries"`
	Queue       string   `json:"queue"`
	Pool        string   `json:"pool"`
	// Group is the task's group, left out when it is in none.
	Group string `json:"group,omitempty"`
}

// ImportError is a DAG file that does not load as it is now.
type ImportError struct {
	File   string       `json:"file"`
	Errors []*dag.Error `json:"errors"`
	// Stale is true when the last good version of the file still runs.
	Stale bool `json:"stale"`
}

// Run is a DAG run with its task instances: the run object of docs/api.md#runs.
type Run struct {
	DAGID             string         `json:"dag_id"`
	RunID             string         `json:"run_id"`
	State             store.RunState `json:"state"`
	RunType           string         `json:"run_type"`
	LogicalDate       time.Time      `json:"logical_date"`
	DataIntervalStart time.Time      `json:"data_interval_start"`
	DataIntervalEnd   time.Time      `json:"data_interval_end"`
	StartDate         *time.Time     `json:"start_date"`
	EndDate           *time.Time     `json:"end_date"`
	Params            map[string]any `json:"params"`
	Tasks             []RunTask      `json:"tasks"` // in the DAG's task order
	// BackfillID is the backfill that created or re-ran the run. It is
	// left out for runs of no backfill, so that their JSON has exactly the
	// keys docs/api.md#runs lists.
	BackfillID string `json:"backfill_id,omitempty"`
	// DAGVersion is the hash of the DAG version the run runs on
	// (docs/reproducibility.md#dag-versions); VersionChanges lists the
	// moves of the run to a later version, if any.
	DAGVersion     string                `json:"dag_version"`
	VersionChanges []store.VersionChange `json:"version_changes,omitempty"`
	// TriggeringEvents are the dataset events a dataset-triggered run was
	// created for (docs/dag-format.md#datasets); left out for other runs.
	TriggeringEvents []store.DatasetEvent `json:"triggering_events,omitempty"`
}

// RunTask is a task instance as a run lists it.
type RunTask struct {
	TaskID string          `json:"task_id"`
	State  store.TaskState `json:"state"`
	// MapLength is how many instances a mapped task expanded into; its
	// state is theirs taken together. Left out for other tasks
	// (docs/api.md#mapped-tasks).
	MapLength int        `json:"map_length,omitempty"`
	TryNumber int        `json:"try_number"`
	StartDate *time.Time `json:"start_date"`
	EndDate   *time.Time `json:"end_date"`
	// DurationS is end_date - start_date in seconds; null until both are
	// known.
	DurationS *float64 `json:"duration_s"`
	CacheResult
	// Artifacts are what the task's successful try stored
	// (docs/artifacts.md); left out when none.
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// CacheResult says that a task instance or try succeeded from the task
// cache without running (docs/artifacts.md#the-task-cache): Cached is
// true and CachedFrom names the try whose result it took. Both are left
// out of the JSON otherwise.
type CacheResult struct {
	Cached     bool          `json:"cached,omitempty"`
	CachedFrom *store.TryRef `json:"cached_from,omitempty"`
}

// NewCacheResult is the CacheResult of a task instance or try whose
// CachedFrom is from.
func NewCacheResult(from *store.TryRef) CacheResult {
	return CacheResult{Cached: from != nil, CachedFrom: from}
}

// Artifact is a file or folder a try stored in the artifact store, named
// there by its SHA-256 (docs/artifacts.md).
type Artifact struct {
	Name string `json:"name"`
	// Path is the declared path, relative to the try's working directory.
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// MediaType is the file's media type; a folder is stored as a tar,
	// application/x-tar, and Dir is true.
	MediaType string `json:"media_type"`
	Dir       bool   `json:"dir"`
}

// ArtifactViews are a try's artifacts as the API shows them; nil for
// none.
func ArtifactViews(arts []store.Artifact) []Artifact {
	if len(arts) == 0 {
		return nil
	}
	out := make([]Artifact, len(arts))
	for i, a := range arts {
		out[i] = Artifact{Name: a.Name, Path: a.Path, SHA256: a.SHA256, Size: a.Size, MediaType: a.MediaType, Dir: a.Dir}
	}
	return out
}

// RunArtifact is an artifact of a run's task instance, as
// GET /api/v1/dags/{dag}/runs/{run}/artifacts lists it.
type RunArtifact struct {
	TaskID string `json:"task_id"`
	// MapIndex is the map index of the task instance, -1 for an unmapped
	// task (docs/api.md#mapped-tasks).
	MapIndex  int `json:"map_index"`
	TryNumber int `json:"try_number"`
	Artifact
	// CachedFrom is set when the task instance took the artifact from the
	// task cache: the try that stored it.
	CachedFrom *store.TryRef `json:"cached_from,omitempty"`
}

// CacheEntry is a task cache entry, as GET /api/v1/cache lists it
// (docs/artifacts.md#the-task-cache).
type CacheEntry struct {
	Key string `json:"key"`
	// From is the try whose result the entry holds.
	From    store.TryRef `json:"from"`
	Created time.Time    `json:"created"`
	// Expires is when the entry stops serving; null for never. Live is
	// false once it has.
	Expires   *time.Time     `json:"expires"`
	Live      bool           `json:"live"`
	Outputs   map[string]any `json:"outputs"`
	Artifacts []Artifact     `json:"artifacts"`
}

// ClearCacheResult answers DELETE /api/v1/cache with how many entries
// went.
type ClearCacheResult struct {
	Cleared int `json:"cleared"`
}

// ArtifactGCRequest is the body of POST /api/v1/artifacts/gc.
type ArtifactGCRequest struct {
	// OlderThan is required: a duration that may start with whole days,
	// such as 30d or 12h.
	OlderThan string `json:"older_than"`
	// DryRun reports what would go and deletes nothing.
	DryRun bool `json:"dry_run,omitempty"`
}

// ArtifactGCReport answers POST /api/v1/artifacts/gc
// (docs/artifacts.md#retention).
type ArtifactGCReport struct {
	OlderThan string `json:"older_than"`
	DryRun    bool   `json:"dry_run"`
	// Kept and Deleted count the stored objects (with DryRun: would
	// delete); KeptBytes and FreedBytes add up their sizes.
	Kept       int   `json:"kept"`
	Deleted    int   `json:"deleted"`
	KeptBytes  int64 `json:"kept_bytes"`
	FreedBytes int64 `json:"freed_bytes"`
	// CacheEntriesDropped counts the expired cache entries that held a
	// deleted artifact; OrphanChunks the chunk sets of uploads that never
	// finished, purged.
	CacheEntriesDropped int `json:"cache_entries_dropped"`
	OrphanChunks        int `json:"orphan_chunks"`
}

// TaskInstance is a task instance with its tries, as
// GET /api/v1/dags/{dag}/runs/{run}/tasks lists it.
type TaskInstance struct {
	DAGID  string `json:"dag_id"`
	RunID  string `json:"run_id"`
	TaskID string `json:"task_id"`
	// MapIndex is the index of a mapped task's instance in its list; -1
	// for an unmapped task, and for the instance that stands for a mapped
	// task as a whole (docs/api.md#mapped-tasks).
	MapIndex int `json:"map_index"`
	// MapLength is how many instances a mapped task expanded into, on the
	// instance that stands for it; left out otherwise.
	MapLength int `json:"map_length,omitempty"`
	// Item is a mapped instance's element of the list; left out for other
	// instances.
	Item      any             `json:"item,omitempty"`
	State     store.TaskState `json:"state"`
	TryNumber int             `json:"try_number"`
	MaxTries  int             `json:"max_tries"`
	Queue     string          `json:"queue"`
	Pool      string          `json:"pool"`
	PoolSlots int             `json:"pool_slots"`
	Priority  int             `json:"priority"`
	// NotBefore is when a task waiting for a retry or a sensor's next
	// poke may run again; null when it need not wait.
	NotBefore *time.Time     `json:"not_before"`
	QueuedAt  *time.Time     `json:"queued_at"`
	StartDate *time.Time     `json:"start_date"`
	EndDate   *time.Time     `json:"end_date"`
	DurationS *float64       `json:"duration_s"`
	Worker    string         `json:"worker"`
	Error     string         `json:"error"`
	Outputs   map[string]any `json:"outputs"`
	CacheResult
	// Artifacts are what the successful try stored (docs/artifacts.md);
	// left out when none.
	Artifacts []Artifact `json:"artifacts,omitempty"`
	Tries     []Try      `json:"tries"` // by try number
}

// Try is one try of a task instance.
type Try struct {
	TryNumber int             `json:"try_number"`
	State     store.TaskState `json:"state"`
	Worker    string          `json:"worker"`
	QueuedAt  *time.Time      `json:"queued_at"`
	StartDate *time.Time      `json:"start_date"`
	EndDate   *time.Time      `json:"end_date"`
	DurationS *float64        `json:"duration_s"`
	ExitCode  *int            `json:"exit_code"`
	Error     string          `json:"error"`
	CacheResult
	// Artifacts are what the try stored; left out when none.
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// Pool is a named number of slots.
type Pool struct {
	Name  string `json:"name"`
	Slots int    `json:"slots"`
}

// PatchDAGRequest is the body of PATCH /api/v1/dags/{dag}.
type PatchDAGRequest struct {
	Paused *bool `json:"paused"` // required
}

// TriggerRunRequest is the body of POST /api/v1/dags/{dag}/runs; every
// field is optional. The logical date defaults to now; params missing
// take their defaults. The run's data interval is the scheduled interval
// that starts at the logical date when there is one, else
// [logical date, logical date]; with LatestInterval it is the latest
// interval of the schedule that had ended at the logical date
// (docs/dag-format.md#manual-runs).
type TriggerRunRequest struct {
	LogicalDate    *time.Time     `json:"logical_date,omitempty"`
	Params         map[string]any `json:"params,omitempty"`
	LatestInterval bool           `json:"latest_interval,omitempty"`
	// NoCache runs every task whatever the task cache holds
	// (docs/artifacts.md#the-task-cache).
	NoCache bool `json:"no_cache,omitempty"`
}

// ClearTasksRequest is the body of POST /api/v1/dags/{dag}/runs/{run}/clear.
// Without tasks, every task instance of the run is cleared.
type ClearTasksRequest struct {
	Tasks []string `json:"tasks,omitempty"`
	// MapIndexes, with exactly one mapped task in Tasks, clears only those
	// of its instances (docs/api.md#mapped-tasks).
	MapIndexes []int `json:"map_indexes,omitempty"`
	Downstream bool  `json:"downstream,omitempty"`
	OnlyFailed bool  `json:"only_failed,omitempty"`
	// Latest moves the run to the DAG's current version first.
	Latest bool `json:"latest,omitempty"`
}

// ClearResult answers a clear with the instance keys of the task
// instances cleared: a task's id, or TASK[i] for an instance of a mapped
// task.
type ClearResult struct {
	Cleared []string `json:"cleared"`
}

// CreateBackfillRequest is the body of POST /api/v1/dags/{dag}/backfills.
// From and To are required: a date (YYYY-MM-DD, read in the DAG's
// timezone; From is the start of that day and To its end, so that the whole
// day is included) or an RFC 3339 time. The rest is optional.
type CreateBackfillRequest struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Reprocess string `json:"reprocess,omitempty"` // none (default), failed or completed
	Reverse   bool   `json:"reverse,omitempty"`
	// MaxActiveRuns defaults to 10; when given it is at least 1.
	MaxActiveRuns *int           `json:"max_active_runs,omitempty"`
	Params        map[string]any `json:"params,omitempty"`
	// DryRun asks for the plan only: nothing is created.
	DryRun bool `json:"dry_run,omitempty"`
	// NoCache runs every task of the backfill's runs whatever the task
	// cache holds (docs/artifacts.md#the-task-cache).
	NoCache bool `json:"no_cache,omitempty"`
}

// BackfillSummary is a backfill as GET /api/v1/backfills lists it: without
// its dates, which can be many.
type BackfillSummary struct {
	// ID is "" in the answer to a dry run, which creates nothing.
	ID    string    `json:"id"`
	DAGID string    `json:"dag_id"`
	From  time.Time `json:"from"`
	// To is the end of the range, included.
	To time.Time `json:"to"`
	// FirstDate and LastDate are the earliest and latest logical dates in
	// the range, as the plan lists them; nil for an empty plan.
	FirstDate     *time.Time          `json:"first_date"`
	LastDate      *time.Time          `json:"last_date"`
	Reprocess     string              `json:"reprocess"`
	Reverse       bool                `json:"reverse"`
	MaxActiveRuns int                 `json:"max_active_runs"`
	Params        map[string]any      `json:"params"`
	RequestedBy   string              `json:"requested_by"`
	State         store.BackfillState `json:"state"` // running, success, failed or cancelled
	CreatedAt     time.Time           `json:"created_at"`
	EndDate       *time.Time          `json:"end_date"`
	Counts        BackfillCounts      `json:"counts"`
}

// Backfill is one backfill with what became of each of its dates, as
// POST /api/v1/dags/{dag}/backfills and GET /api/v1/backfills/{id} show it.
type Backfill struct {
	BackfillSummary
	Dates []BackfillDate `json:"dates"` // in the order they are run
}

// BackfillCounts tallies a backfill's dates. Pending dates have no run
// yet; skipped ones keep the run they had.
type BackfillCounts struct {
	Total   int `json:"total"`
	Pending int `json:"pending"`
	Queued  int `json:"queued"`
	Running int `json:"running"`
	Success int `json:"success"`
	Failed  int `json:"failed"`
	Skipped int `json:"skipped"`
}

// BackfillDate is one logical date of a backfill.
type BackfillDate struct {
	LogicalDate time.Time `json:"logical_date"`
	// Action is new (a run is created), rerun (the date's run is cleared
	// and runs again) or skip (the date keeps its run).
	Action string `json:"action"`
	Reason string `json:"reason"` // why a date is skipped or re-run; "" for new
	// RunID is the date's run: the one created or re-run, or the one a
	// skipped date keeps; null while there is none.
	RunID *string `json:"run_id"`
	// State is the state of the run the backfill started for the date;
	// null until it is started, and for skipped dates.
	State *store.RunState `json:"state"`
}

// SetPoolRequest is the body of PUT /api/v1/pools/{name}.
type SetPoolRequest struct {
	Slots *int `json:"slots"` // required, at least 0
}

// Health is the body of GET /healthz.
type Health struct {
	Status string `json:"status"` // "ok" or "unavailable"
	Error  string `json:"error,omitempty"`
	// Version is the server's version (docs/operations.md#version).
	Version string `json:"version"`
	// Scheduler is the state of this server's scheduler.
	Scheduler SchedulerHealth `json:"scheduler"`
}

// SchedulerHealth is the scheduler's part of GET /healthz.
type SchedulerHealth struct {
	// Role is "leader", the scheduler that schedules, or in cluster mode
	// "standby" (docs/operations.md#cluster-mode).
	Role string `json:"role"`
	// In cluster mode: this server's name, the leader's (empty while
	// none holds the lease), the log sequence this server's store holds,
	// and how many log messages it has yet to apply.
	Name   string `json:"name,omitempty"`
	Leader string `json:"leader,omitempty"`
	LogSeq uint64 `json:"log_seq,omitempty"`
	Lag    uint64 `json:"lag,omitempty"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

// LogEnd is the data of the `end` event that closes a followed log.
type LogEnd struct {
	TryNumber int `json:"try_number"`
	// State is the try's state as the store has it when the log ends;
	// empty if the store does not know it.
	State store.TaskState `json:"state"`
}

// Event is the data of an event of GET /api/v1/events: a change of a run,
// a task instance, a try or a backfill, or the news that the reader lost
// changes (Kind EventLost) and should re-read what it follows.
type Event struct {
	// Seq numbers the change; it is the event's id.
	Seq uint64 `json:"seq"`
	// Kind is run, task, try, backfill or lost; the event is named so.
	Kind  string `json:"kind"`
	DAGID string `json:"dag_id,omitempty"`
	// RunID is set for run, task and try events.
	RunID string `json:"run_id,omitempty"`
	// TaskID is set for task and try events.
	TaskID string `json:"task_id,omitempty"`
	// TryNumber is a task instance's current try, or a try's number.
	TryNumber int `json:"try_number,omitempty"`
	// BackfillID is set for backfill events.
	BackfillID string `json:"backfill_id,omitempty"`
	// State is the state written; empty for a deleted run and for lost.
	State string `json:"state,omitempty"`
}
