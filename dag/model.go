package dag

import (
	"time"

	"github.com/kilnhq/kiln/dag/timetable"
)

// DAG is one loaded and validated DAG file. It is immutable once loaded and
// safe to share between goroutines.
type DAG struct {
	ID          string
	Description string
	File        string // path the DAG was loaded from
	Hash        string // hex SHA-256 of the file's bytes
	Source      []byte // the file's bytes; not to be modified
	// Schedule is the cron spec of the `schedule` as written; empty when
	// there is none, and then Timetable is nil.
	Schedule  string
	Timetable *timetable.Timetable
	// Datasets is set when the DAG runs on updates of datasets, besides
	// its cron schedule if it has one; nil when it does not.
	Datasets       *DatasetSchedule
	Location       *time.Location
	StartDate      time.Time // zero when not set
	EndDate        time.Time // zero when not set
	Catchup        bool
	MaxActiveRuns  int
	MaxActiveTasks int
	// MaxMapLength is the longest list a `map` of the DAG may yield
	// unless its task or group sets its own (docs/dag-format.md#mapping).
	MaxMapLength int
	Paused       bool // the state when the DAG is first seen
	Tags         []string
	Params       []*Param // in file order
	Env          []EnvVar
	Tasks        []*Task // in file order
	// Groups are the task groups, in file order of the groups mapping;
	// nil when there are none.
	Groups    []*Group
	Callbacks Callbacks
	// Secrets are the names of the secrets the env of the DAG and of its
	// tasks refer to (.secrets.NAME), sorted.
	Secrets []string
	// Warnings are problems that do not stop the DAG from loading, such
	// as a free-text param inserted unquoted into a shell command.
	Warnings ErrorList

	byID          map[string]*Task
	order         map[string]int
	idLine, idCol int // where the id is set, for duplicate-id errors
}

// Task returns the task with the given id, or nil.
func (d *DAG) Task(id string) *Task { return d.byID[id] }

// TaskIndex returns the position of a task in the file, or -1.
func (d *DAG) TaskIndex(id string) int {
	if i, ok := d.order[id]; ok {
		return i
	}
	return -1
}

// Group returns the task group with the given name, or nil.
func (d *DAG) Group(name string) *Group {
	for _, gr := range d.Groups {
		if gr.Name == name {
			return gr
		}
	}
	return nil
}

// Group is a task group of a DAG (docs/dag-format.md#task-groups).
type Group struct {
	Name        string
	Description string
	Tasks       []string // task ids, in the DAG's task order
	// Map is set when the group is mapped: its tasks run once per element
	// of the list, each element's tasks a branch of their own
	// (docs/dag-format.md#mapping-a-group).
	Map *Mapping
}

// Param returns the parameter with the given name, or nil.
func (d *DAG) Param(name string) *Param {
	for _, p := range d.Params {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Task is one node of a DAG, with every default already applied.
type Task struct {
	ID          string
	Description string
	Group       string // the group's name, "" when in none
	Plugin      string
	// With holds the plugin's parameters: maps, lists and scalars as in the
	// file, with every string replaced by its compiled *Template.
	With                    map[string]any
	DependsOn               []string // upstream task ids, groups expanded
	Downstream              []string // task ids that depend on this one
	Retries                 int
	RetryDelay              time.Duration
	RetryExponentialBackoff bool
	MaxRetryDelay           time.Duration // zero: no cap beyond the default
	Timeout                 time.Duration // zero: none
	Queue                   string
	Pool                    string
	PoolSlots               int
	Priority                int
	TriggerRule             TriggerRule
	DependsOnPast           bool
	When                    *Condition // nil: always runs
	// Map is set when the task is mapped (docs/dag-format.md#mapping):
	// by its own `map`, or by its group's, and then MapGroup names the
	// group.
	Map      *Mapping
	MapGroup string
	Env      []EnvVar
	// Secrets are the names of the secrets the task's environment
	// refers to, its own env's and the DAG's, sorted.
	Secrets []string
	// Reads are the upstream outputs the task's `with`, `env`, `when` and
	// cache key refer to, sorted (docs/reproducibility.md#what-each-try-records).
	Reads []OutputRef
	// ParamsRead are the params the task's `with`, `env` and cache key
	// refer to (all of them where one refers to .params as a whole), and
	// those its `when` names as params.NAME, sorted. A cached task's process sees only these as $KILN_PARAM_NAME
	// (docs/artifacts.md#what-the-key-covers).
	ParamsRead []string
	// Artifacts are the files and folders the task leaves, name → path
	// relative to the try's working directory, cleaned
	// (docs/dag-format.md#artifacts-and-inputs); nil when it declares none.
	Artifacts map[string]string
	// Inputs are the upstream artifacts the task reads, sorted by Name.
	Inputs []InputRef
	// Cache is set when a try's result may be reused by a later instance
	// of the task (docs/dag-format.md#task-cache); nil: never cached.
	Cache     *CacheConfig
	Sensor    *SensorConfig // set when the plugin is a sensor
	Callbacks Callbacks
	// Outlets are the URIs of the datasets a successful try of the task
	// updates, as written, in file order (docs/dag-format.md#datasets).
	Outlets []string
}

// InputRef is one of a task's inputs: the artifact Artifact of the
// upstream task Task, which the task's templates see as .inputs.Name and
// its process as $KILN_INPUT_NAME (docs/dag-format.md#artifacts-and-inputs).
type InputRef struct {
	Name     string
	Task     string
	Artifact string
}

// CacheConfig is a task's `cache` (docs/dag-format.md#task-cache).
type CacheConfig struct {
	// TTL is how long a try's result may be reused; zero: with no limit.
	TTL time.Duration
	// Key is a template whose rendered value is part of the cache key;
	// nil when the task gives none.
	Key *Template
}

// OutputRef names upstream outputs a task reads: the output Key of Task;
// every output of Task when Key is ""; every upstream output when Task is
// "" too (a template that indexes .outputs as a whole).
type OutputRef struct {
	Task string
	Key  string
}

// SensorConfig holds the keys of a task whose plugin is a sensor (docs/dag-format.md#sensors).
type SensorConfig struct {
	Mode         SensorMode
	PokeInterval time.Duration
	Timeout      time.Duration // total time from the first poke
	SoftFail     bool          // on timeout: skipped instead of failed
}

// SensorMode says whether a sensor holds its worker slot between pokes.
type SensorMode string

// Sensor modes.
const (
	ModePoke       SensorMode = "poke"
	ModeReschedule SensorMode = "reschedule"
)

// EnvVar is one environment variable whose value is a template.
type EnvVar struct {
	Name  string
	Value *Template
}

// Callbacks are the stages run when a task or run fails, succeeds or retries.
type Callbacks struct {
	OnFailure []*Callback
	OnSuccess []*Callback
	OnRetry   []*Callback
}

// Callback is one stage run on an event; its templates also see .state,
// .error and .log_url.
type Callback struct {
	Plugin string
	With   map[string]any
}

// Defaults applied to tasks that do not set the key, and to DAGs.
const (
	DefaultQueue          = "default"
	DefaultPool           = "default_pool"
	DefaultPriority       = 1
	DefaultMaxActiveRuns  = 16
	DefaultMaxActiveTasks = 16
	DefaultRetryDelay     = 5 * time.Minute
	DefaultPokeInterval   = 30 * time.Second
	DefaultSensorTimeout  = 24 * time.Hour
)
