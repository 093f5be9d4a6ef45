// Package wire holds what the scheduler and the workers say to each other
// over NATS: stream and subject names and the messages, JSON-encoded. Both
// sides import it, so the protocol is written down exactly once.
//
// Assignments travel on the work-queue stream KILN_TASKS, one subject per
// worker queue (kiln.task.<queue>); a message is removed once a worker
// acks it, so each try is handed to exactly one worker. Workers report on
// the stream KILN_EVENTS (kiln.event.<worker>.<kind>.<dag>); the scheduler
// acks an event only after its effect is committed to the store, so a crash
// loses nothing. Cancellations are plain NATS messages on kiln.cancel: a lost one
// is harmless, since a late result of a try that is no longer current is
// ignored.
package wire

import (
	"fmt"
	"strings"
	"time"
)

// Stream and subject names.
const (
	TasksStream   = "KILN_TASKS"
	TasksSubjects = "kiln.task.>"
	EventsStream  = "KILN_EVENTS"
	EventSubjects = "kiln.event.>"
	CancelSubject = "kiln.cancel"
)

// TaskSubject is the subject of assignments for a worker queue.
func TaskSubject(queue string) string { return "kiln.task." + queue }

// EventSubject is the subject of an event of a worker. The worker's name
// is a token of its own, so that NATS permissions can let each worker
// identity publish under its own name only; the scheduler learns who sent
// an event from its subject, never from its body
// (docs/architecture.md#tries-and-fencing).
func EventSubject(worker string, kind EventKind, dagID string) string {
	return fmt.Sprintf("kiln.event.%s.%s.%s", worker, kind, dagID)
}

// WorkerEventSubjects matches every event subject of the named worker
// ("*": of any worker).
func WorkerEventSubjects(worker string) string { return "kiln.event." + worker + ".>" }

// ParseEventSubject returns the worker and the kind an event subject
// names; ok is false for a subject EventSubject does not make.
func ParseEventSubject(subject string) (worker string, kind EventKind, ok bool) {
	rest, found := strings.CutPrefix(subject, "kiln.event.")
	if !found {
		return "", "", false
	}
	tokens := strings.SplitN(rest, ".", 3)
	if len(tokens) != 3 || CheckWorker(tokens[0]) != nil || tokens[1] == "" || tokens[2] == "" {
		return "", "", false
	}
	return tokens[0], EventKind(tokens[1]), true
}

// SchedulerInbox is the prefix of the scheduler's reply subjects, and
// WorkerInbox that of a worker's: each identity may read the replies under
// its own prefix only, so no worker reads what JetStream answers the
// scheduler or another worker.
const SchedulerInbox = "_INBOX.kiln-scheduler"

// WorkerInbox is the prefix of the reply subjects of the named worker.
func WorkerInbox(worker string) string { return "_INBOX.kiln-worker." + worker }

// CheckWorker reports whether name is a valid worker name.
func CheckWorker(name string) error {
	if !nameToken.MatchString(name) {
		return fmt.Errorf("invalid worker name %q: use 1 to 64 of A-Z a-z 0-9 _ -", name)
	}
	return nil
}

// WorkerNameFrom makes a valid worker name of s, such as a host name with
// dots in it: every other character becomes '-', and it is cut to 64.
func WorkerNameFrom(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	if len(b) == 0 {
		return "worker"
	}
	return string(b)
}

// ValidSubjectPart reports whether s can stand in a subject as one or
// more tokens: no empty token (a leading, trailing or doubled dot), no
// wildcard, no white space or control character. DAG ids are checked
// stricter at load (docs/dag-format.md#ids-names-and-values); a worker checks
// this before it runs a try, since it cannot report on an invalid subject.
func ValidSubjectPart(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '*' || r == '>' {
			return false
		}
	}
	return true
}

// TryKey names one try of one task instance. Every message about a try
// carries it; the scheduler ignores messages for a try that is not current.
type TryKey struct {
	DAGID  string `json:"dag_id"`
	RunID  string `json:"run_id"`
	TaskID string `json:"task_id"`
	Try    int    `json:"try"`
}

func (k TryKey) String() string {
	return fmt.Sprintf("%s/%s/%s#%d", k.DAGID, k.RunID, k.TaskID, k.Try)
}

// MsgID is the JetStream de-duplication id of an assignment, so that a
// re-publish after a scheduler crash does not queue the try twice. A sensor
// in reschedule mode is assigned once per poke of the same try.
func (a *Assignment) MsgID() string { return fmt.Sprintf("assign:%s:%d", a.TryKey, a.Poke) }

// Assignment asks a worker to run one try through a stage plugin.
type Assignment struct {
	TryKey
	Queue  string            `json:"queue"`
	Plugin string            `json:"plugin"`
	With   map[string]any    `json:"with"` // rendered parameters
	Env    map[string]string `json:"env"`
	// Mask lists the secret values in Env (docs/dag-format.md#secrets): the worker writes
	// *** in their place in the try's log and error.
	Mask []string `json:"mask,omitempty"`
	// Timeout is the try's execution timeout; zero means none.
	Timeout time.Duration `json:"timeout,omitempty"`
	// LogLimit caps the bytes of log the worker sends for this try.
	LogLimit int64 `json:"log_limit"`
	// LogOffset is where this assignment's log starts in the try's log: a
	// sensor rescheduled between pokes appends to what earlier pokes wrote.
	LogOffset int64 `json:"log_offset,omitempty"`
	// Heartbeat is how often the worker must report the try alive.
	Heartbeat time.Duration `json:"heartbeat"`
	// Sensor is set for a sensor task (docs/dag-format.md#sensors); Poke counts its pokes
	// within the try, from 1.
	Sensor   *Sensor   `json:"sensor,omitempty"`
	Poke     int       `json:"poke,omitempty"`
	QueuedAt time.Time `json:"queued_at"`
	// Artifacts are the files and folders the try must leave, name → path
	// relative to its working directory; the worker stores each once the
	// stage succeeded (docs/artifacts.md).
	Artifacts map[string]string `json:"artifacts,omitempty"`
	// Inputs are the upstream artifacts the worker downloads into the
	// try's working directory before the stage starts. The rendered With
	// and Env name each by InputPlaceholder(Name), which the worker
	// replaces with the local path.
	Inputs []Input `json:"inputs,omitempty"`
}

// InputPlaceholder is what `{{ .inputs.NAME }}` renders to at the
// scheduler, which does not know where a worker puts the file: the worker
// replaces it, in every string of the assignment's With and Env, with the
// downloaded input's absolute path. It reads as the variable that holds
// the same path (InputEnv), so a rendered command in a manifest says what
// it means.
func InputPlaceholder(name string) string { return "${" + InputEnv(name) + "}" }

// InputEnv is the environment variable through which a try's process
// finds the input of the given name: KILN_INPUT_ and the name in upper
// case.
func InputEnv(name string) string { return "KILN_INPUT_" + strings.ToUpper(name) }

// Sensor says how a worker pokes a sensor task. In poke mode the worker
// pokes every PokeInterval, holding its slot, until the condition is met or
// Deadline passes; in reschedule mode it pokes once and reports PokeAgain,
// and the scheduler assigns the next poke after PokeInterval.
type Sensor struct {
	Reschedule   bool          `json:"reschedule"`
	PokeInterval time.Duration `json:"poke_interval"`
	Deadline     time.Time     `json:"deadline"` // first poke + sensor_timeout
}

// EventKind tells worker events apart.
type EventKind string

// Event kinds, in the order a try produces them.
const (
	EventStarted   EventKind = "started"
	EventHeartbeat EventKind = "heartbeat"
	EventLog       EventKind = "log"
	EventFinished  EventKind = "finished"
)

// Event is what a worker reports about a try.
type Event struct {
	TryKey
	Kind EventKind `json:"kind"`
	Time time.Time `json:"time"`

	// Log events: a chunk of the try's log starting at byte Offset, so a
	// redelivered chunk is written once.
	Offset int64  `json:"offset,omitempty"`
	Data   []byte `json:"data,omitempty"`

	// Finished events.
	Success bool `json:"success,omitempty"`
	// PokeAgain: a sensor's condition is not met yet (reschedule mode).
	PokeAgain bool `json:"poke_again,omitempty"`
	// SensorTimeout: a sensor in poke mode reached its deadline.
	SensorTimeout bool           `json:"sensor_timeout,omitempty"`
	ExitCode      *int           `json:"exit_code,omitempty"`
	Error         string         `json:"error,omitempty"`
	Outputs       map[string]any `json:"outputs,omitempty"`
	// LogBytes is the full size the try's log reached, LogSent what was
	// sent of it (less when the log hit its limit).
	LogBytes int64 `json:"log_bytes,omitempty"`
	LogSent  int64 `json:"log_sent,omitempty"`
	// Runtime is how the worker ran the try, for its manifest.
	Runtime *Runtime `json:"runtime,omitempty"`
	// Artifacts are the try's declared artifacts, stored in
	// ArtifactsBucket; set on success only.
	Artifacts []Artifact `json:"artifacts,omitempty"`
}

// Runtime is what a worker reports, with a try's end, of how it ran it:
// the worker's part of the try's manifest (docs/reproducibility.md#what-each-try-records).
// The worker's name is not in it: the scheduler takes it from the
// event's subject.
type Runtime struct {
	Host          string            `json:"host"`
	KilnVersion   string            `json:"kiln_version"`
	PluginVersion string            `json:"plugin_version,omitempty"`
	PluginSHA256  string            `json:"plugin_sha256,omitempty"`
	Facts         map[string]string `json:"facts,omitempty"`
}

// Cancel asks the worker running a try to stop it.
type Cancel struct {
	TryKey
	Reason string `json:"reason"`
}
