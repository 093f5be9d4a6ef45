// Package python is the python stage plugin: it runs inline code, a script
// or a module with a Python interpreter, and the interpreter's exit code
// decides the try's outcome.
//
// The interpreter runs in the task's working directory, in its own process
// group, with the task's environment plus PYTHONUNBUFFERED=1 (so prints
// reach the log as they happen), its stdout and stderr merged and streamed
// to the task log. Cancelling the task kills the group.
//
// With `requirements`, the task runs in a virtual environment built from
// that file once per interpreter and file content, then reused by every run
// of the same file (venv.go).
package python

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/kilnhq/kiln/plugins/internal/proc"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// Name is the plugin's name in DAG files.
const Name = "python"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte

// Stage is the python stage. Its zero value is ready to use.
type Stage struct{}

var _ sdk.Stage = Stage{}

// Main serves the plugin to the Kiln host that started this process, and
// returns when the host lets it go (`kiln plugin python`).
func Main() { sdk.Main(Stage{}) }

// Info describes the plugin.
func (Stage) Info() sdk.Info {
	return sdk.Info{Name: Name, Version: Version, Schema: Schema}
}

// Run runs the task's code, script or module to its end.
func (Stage) Run(ctx context.Context, t *sdk.Task) error {
	p, err := decodeParams(t)
	if err != nil {
		return err
	}
	python, err := lookPath(p.Python, t.Getenv("PATH"), t.WorkDir)
	if err != nil {
		return fmt.Errorf("python interpreter: %w", err)
	}

	recordInterpreter(ctx, t, python)

	// First, so the task's own value wins.
	env := append([]string{"PYTHONUNBUFFERED=1"}, t.Env...)
	if p.Requirements != "" {
		venv, err := ensureEnv(ctx, t, python, p.Requirements)
		if err != nil {
			return err
		}
		t.SetFact("env_key", filepath.Base(venv))
		// What activating the environment would do, so the task's
		// subprocesses and console scripts use it too.
		python = filepath.Join(venv, "bin", "python")
		env = append(env, "VIRTUAL_ENV="+venv)
		if path := t.Getenv("PATH"); path != "" {
			env = append(env, "PATH="+filepath.Join(venv, "bin")+string(filepath.ListSeparator)+path)
		}
	}

	cmd := exec.Command(python, p.argv()...)
	cmd.Env = env
	cmd.Dir = t.WorkDir
	return result(proc.Run(ctx, cmd, t.Log))
}

// result turns the end of the interpreter into the try's result.
func result(err error) error {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return err
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return fmt.Errorf("python killed by signal %v", ws.Signal())
	}
	code := ee.ExitCode()
	return sdk.ExitCode(code, fmt.Errorf("python exited with status %d", code))
}
