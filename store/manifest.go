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
	// Map is set for an instance of a mapped task: what it ran for
	// (docs/dag-format.md#mapping).
	Map *MapRecord `json:"map,omitempty"`
	// Plugin is the stage plugin that ran the try.
	Plugin PluginRecord `json:"plugin"`
	// Worker is the worker that ran the try; absent until it finished.
	Worker *WorkerRecord `json:"worker,omitempty"`
	// Inputs are the SHA-256 of the upstream artifacts the try read, by
	// input name (docs/artifacts.md#inputs).
	Inputs map[string]string `json:"inputs,omitempty"`
	// Cache is the try's cache key and its parts, for a task whose cache
	// is on (docs/artifacts.md#the-task-cache).
	Cache *CacheRecord `json:"cache,omitempty"`
}

// CacheRecord is a try's cache key, what it was made of, and what the
// cache did for the try.
type CacheRecord struct {
	// Key is the hex SHA-256 of Parts; empty while the plugin's build is
	// not known (Result says why).
	Key   string     `json:"key,omitempty"`
	Parts CacheParts `json:"parts"`
	// Result is what the cache did: "hit" (the try took a cached result),
	// "miss" (no entry for the key), or why it was not consulted.
	Result string `json:"result"`
}

// CacheParts are what a cache key covers (docs/artifacts.md#what-the-key-covers).
// Values that may be long or secret are hashed: a difference still shows
// in `kiln runs diff`.
type CacheParts struct {
	// Plugin is the plugin's name and the version and executable hash of
	// the build the task's workers run.
	Plugin PluginRecord `json:"plugin"`
	// With is the SHA-256 of the rendered `with`, as JSON.
	With string `json:"with_sha256"`
	// Env is the SHA-256 of each variable of the DAG's and the task's env
	// by name; a secret's value is left out, only its name counts.
	Env map[string]string `json:"env"`
	// Inputs are the SHA-256 of the input artifacts by input name.
	Inputs map[string]string `json:"inputs"`
	// OutputsRead is the SHA-256 of the upstream outputs the task's
	// templates read, as JSON.
	OutputsRead string `json:"outputs_read_sha256"`
	// Key is the task's rendered `cache.key`.
	Key string `json:"key"`
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

// MapRecord is what an instance of a mapped task ran for: the `map`
// expression, and the index and element of the list it yielded.
type MapRecord struct {
	Expr  string `json:"expr"`
	Index int    `json:"index"`
	Item  any    `json:"item"`
}
