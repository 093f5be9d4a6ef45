package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"strings"
	"sync"
)

// Task is one try of one task.
type Task struct {
	// With is the task's rendered `with` object, as JSON.
	With json.RawMessage
	// Env is the task's whole environment as KEY=VALUE strings: what the
	// worker passes on, the DAG's and the task's `env`, and KILN_DAG_ID,
	// KILN_OUTPUT and the rest (docs/dag-format.md#environment-variables). It is not the plugin process's
	// environment; pass it to the commands the task starts.
	Env []string
	// TaskEnv is the part of Env that Kiln and the DAG set, without what
	// the worker passes on of its own environment: the environment to give
	// a task run somewhere else, such as in a container, where the
	// worker's PATH and HOME mean nothing.
	TaskEnv []string
	// WorkDir is the task's working directory; empty means the plugin
	// process's.
	WorkDir string
	// Try names the try as dag/run/task#try, for messages.
	Try string
	// Log is the task's log. What is written to it is sent to the worker
	// as it is written, each Write as one piece, and it is safe for
	// concurrent use. Writes after Run returned fail; writes after the
	// worker went away are dropped.
	Log io.Writer

	factsMu sync.Mutex
	facts   map[string]string
}

// SetFact records something the plugin learned about the environment the
// task ran in, such as an interpreter's version; it is sent with the
// task's result and kept in the try's manifest (docs/reproducibility.md#plugin-facts). A key
// is [a-z0-9_]{1,64} and a value at most 1 KiB: the host drops others.
// Setting a key again replaces its value. It is safe for concurrent use.
func (t *Task) SetFact(key, value string) {
	t.factsMu.Lock()
	defer t.factsMu.Unlock()
	if t.facts == nil {
		t.facts = map[string]string{}
	}
	t.facts[key] = value
}

// Facts returns a copy of the facts set so far, for tests of a Stage.
func (t *Task) Facts() map[string]string {
	t.factsMu.Lock()
	defer t.factsMu.Unlock()
	return maps.Clone(t.facts)
}

// takeFacts returns the facts set so far.
func (t *Task) takeFacts() map[string]string {
	t.factsMu.Lock()
	defer t.factsMu.Unlock()
	return t.facts
}

// Decode decodes the task's `with` object into v, strictly: a field v does
// not have is an error naming the field, as is a value of the wrong type.
// An empty With decodes as {}.
func (t *Task) Decode(v any) error {
	with := bytes.TrimSpace(t.With)
	if len(with) == 0 {
		with = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(with))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &paramError{err}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &paramError{errors.New("more than one JSON value")}
	}
	return nil
}

// paramError is a `with` object that Decode could not decode. It wraps
// encoding/json's error and says what is wrong in the terms of the DAG
// file rather than of Go.
type paramError struct{ err error }

func (e *paramError) Error() string {
	var te *json.UnmarshalTypeError
	if errors.As(e.err, &te) && te.Field != "" {
		return fmt.Sprintf("invalid parameters: %s: got a JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	return "invalid parameters: " + strings.TrimPrefix(e.err.Error(), "json: ")
}

func (e *paramError) Unwrap() error { return e.err }

// Getenv returns the value of key in the task's environment, t.Env (its
// last one, as os/exec would), or "" when it has none.
func (t *Task) Getenv(key string) string {
	for i := len(t.Env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(t.Env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Logf writes a line to the task's log, adding the newline if format does
// not end with one.
func (t *Task) Logf(format string, args ...any) {
	if t.Log == nil {
		return
	}
	line := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(line, "\n") {
		line += "\n"
	}
	_, _ = io.WriteString(t.Log, line)
}

// outputKey is what SetOutput accepts as a key: what a template can name
// as .outputs.TASK.KEY.
var outputKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// SetOutput sets one of the task's outputs (docs/dag-format.md#outputs), which downstream
// tasks see as .outputs.TASK.KEY: it appends a KEY=VALUE line to the file
// named by KILN_OUTPUT in t.Env. A key is [A-Za-z_][A-Za-z0-9_.-]*, a value
// holds no newline; setting a key again replaces its value. It is an
// error, and nothing is written, when the task has no KILN_OUTPUT or the
// file already holds a JSON object.
func (t *Task) SetOutput(key, value string) error {
	if !outputKey.MatchString(key) {
		return fmt.Errorf("setting output %q: invalid key: want [A-Za-z_][A-Za-z0-9_.-]*", key)
	}
	if strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("setting output %s: the value holds a newline", key)
	}
	path := t.Getenv("KILN_OUTPUT")
	if path == "" {
		return fmt.Errorf("setting output %s: KILN_OUTPUT is not set in the task's environment", key)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("setting output %s: %w", key, err)
	}
	defer f.Close()
	if isJSON, err := holdsJSON(f); err != nil {
		return fmt.Errorf("setting output %s: reading %s: %w", key, path, err)
	} else if isJSON {
		return fmt.Errorf("setting output %s: %s already holds a JSON object, and outputs are either one JSON object or KEY=VALUE lines", key, path)
	}
	// One write of the whole line, in append mode: tasks setting outputs
	// from several goroutines do not interleave.
	if _, err := f.WriteString(key + "=" + value + "\n"); err != nil {
		return fmt.Errorf("setting output %s: %w", key, err)
	}
	return f.Close()
}

// holdsJSON reports whether the outputs file starts with a JSON object,
// which the worker reads as the task's only outputs.
func holdsJSON(f *os.File) (bool, error) {
	buf := make([]byte, 512)
	for off := int64(0); ; {
		n, err := f.ReadAt(buf, off)
		if rest := bytes.TrimLeft(buf[:n], " \t\r\n"); len(rest) > 0 {
			return rest[0] == '{', nil
		}
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		off += int64(n)
	}
}
