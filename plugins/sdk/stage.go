package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// Info describes a stage plugin.
type Info struct {
	// Name is the plugin's name in DAG files (`plugin: NAME`); an external
	// plugin's executable is named kiln-plugin-NAME.
	Name string
	// Version is the plugin's version, for people; kiln does not read it.
	Version string
	// Schema is the JSON Schema of the task's `with` object, which kiln
	// checks DAG files against. Nil accepts any object.
	Schema []byte
	// Sensor marks a plugin that waits for a condition (docs/dag-format.md#sensors): its
	// tasks also take mode, poke_interval, sensor_timeout and soft_fail,
	// and its Run returns ErrNotYet while the condition is not met.
	Sensor bool
}

// anyObject is the schema of a plugin that sets none.
var anyObject = []byte(`{"type":"object"}`)

// validate checks what Main checks before it serves the plugin.
func (i Info) validate() error {
	if i.Name == "" {
		return errors.New("invalid plugin info: Name is empty")
	}
	if i.Schema == nil {
		return nil
	}
	var v any
	if err := json.Unmarshal(i.Schema, &v); err != nil {
		return fmt.Errorf("plugin %s: invalid Schema: not valid JSON: %w", i.Name, err)
	}
	if _, ok := v.(map[string]any); !ok {
		return fmt.Errorf("plugin %s: invalid Schema: not a JSON object", i.Name)
	}
	return nil
}

// schema returns the schema Describe sends.
func (i Info) schema() []byte {
	if i.Schema == nil {
		return anyObject
	}
	return bytes.Clone(i.Schema)
}

// Stage is what a plugin author implements.
type Stage interface {
	// Info describes the plugin. It is called once, when the plugin
	// starts.
	Info() Info
	// Run runs one try of one task, and is called for several tasks at
	// once. Its error is the try's outcome: nil is success; an error
	// wrapping ErrNotYet (sensors) means the condition is not met yet and
	// the sensor is to be poked again; ExitCode(...) fails the try with an
	// exit code; any other error fails it with its message. ctx is
	// cancelled when the try is cancelled or times out.
	Run(ctx context.Context, t *Task) error
}

// ErrNotYet is what a sensor's Run returns, or wraps, while the condition
// it waits for is not met: the worker pokes it again later, after
// poke_interval, until sensor_timeout (docs/dag-format.md#sensors). Its message, or the
// wrapping error's, goes to the task log:
//
//	return fmt.Errorf("no file matches %s: %w", p.Path, sdk.ErrNotYet)
var ErrNotYet = errors.New("condition not met yet")

// ErrShutdown is the cause (context.Cause) of a Run's ctx ending because
// the plugin process is shutting down, as it does when its worker went
// away: Run has about a second left, too short for a graceful stop, and
// should end what it started at once.
var ErrShutdown = errors.New("plugin shutting down")

// ExitCode returns an error that fails the try with an exit code, as a
// process would. Its message is err's, or "exit status CODE" when err is
// nil, and it wraps err. The try fails whatever the code, 0 included.
func ExitCode(code int, err error) error {
	return &exitError{code: code, err: err}
}

type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// ExitCode returns the code the try fails with.
func (e *exitError) ExitCode() int { return e.code }
