package store

// Manifest is what one try ran: its inputs as rendered, and the code that
// ran them (docs/reproducibility.md#what-each-try-records). Its JSON is part of the API
// (a try's "manifest"), and `kiln runs diff` compares two of them field by
// field, so every field is spelled out here and documented there.
//
// The scheduler fills the fields it knows when it dispatches the try; the
// worker that runs it reports Plugin's version, hash and facts and Worker
// when the try finishes. A try that never finished on a worker (lost with
// its worker, failed while rendering) has only the scheduler's part.
type Manifest struct {
	// DAGVersion is the hash of the DAG version the try ran on
	// (docs/reproducibility.md#dag-versions).
	DAGVersion string `json:"dag_version"`
	// KilnVersion is the version of the scheduler that rendered the try.
	KilnVersion string `json:"kiln_version"`
	// With is the task's rendered `with`, each secret value replaced by ***.
	With map[string]any `json:"with"`
	// Env names the variables of the DAG's and the task's `env`, sorted;
	// their values are not kept.
	Env []string `json:"env"`
	// When is the task's `when`, absent for a task that has none.
	When *WhenResult `json:"when,omitempty"`
	// Params are the run's params.
	Params map[string]any `json:"params"`
	// OutputsRead are the upstream outputs the task's templates and `when`
	// refer to, as they were when the try was dispatched: task id → key →
	// value.
	OutputsRead map[string]map[string]any `json:"outputs_read"`
	// Plugin is the stage plugin that ran the try.
	Plugin PluginRecord `json:"plugin"`
	// Worker is the worker that ran the try; absent until it finished.
	Worker *WorkerRecord `json:"worker,omitempty"`
}

// WhenResult is a task's `when` expression and what it gave.
type WhenResult struct {
	Expr   string `json:"expr"`
	Result bool   `json:"result"`
}

// PluginRecord names a stage plugin and the build of it that ran a try.
type PluginRecord struct {
	Name string `json:"name"`
	// Version is what the plugin reports as its version.
	Version string `json:"version,omitempty"`
	// SHA256 is the hex SHA-256 of the plugin's executable, hashed when
	// the worker launched it (for a built-in plugin, the kiln binary).
	SHA256 string `json:"sha256,omitempty"`
	// Facts are what the plugin reported about the environment the try
	// ran in, such as the python stage's python_version and env_key
	// (docs/reproducibility.md#plugin-facts).
	Facts map[string]string `json:"facts,omitempty"`
}

// WorkerRecord is the worker that ran a try.
type WorkerRecord struct {
	ID          string `json:"id"`
	Host        string `json:"host"`
	KilnVersion string `json:"kiln_version"`
}
