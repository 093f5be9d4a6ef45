// Command kiln is the Kiln workflow orchestrator: one binary for the
// scheduler, the workers, the web UI and API, and the command line.
package main

import (
	"errors"
	"fmt"
	"os"

	// Timezones must resolve the same on every machine, with or without
	// a system zoneinfo database.
	_ "time/tzdata"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit code:
// 0 success, 1 a failure reported by a run or a server, 2 bad usage or an
// invalid DAG (docs/cli.md#exit-codes).
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(os.Stderr, "kiln:", ex.msg)
		}
		return ex.code
	}
	fmt.Fprintln(os.Stderr, "kiln:", err)
	return 2 // cobra's own errors are usage errors
}

// exitError ends the command with a given exit code.
type exitError struct {
	code int
	msg  string // printed to stderr when set
}

func (e *exitError) Error() string { return e.msg }

func usageError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}
