// Command kiln is the Kiln workflow orchestrator: one binary for the
// scheduler, the workers, the web UI and API, and the command line.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

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
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var ex *exitError
	if errors.As(err, &ex) {
		if ex.msg != "" {
			fmt.Fprintln(os.Stderr, "kiln:", ex.msg)
		}
		if ex.usage {
			printUsageLine(cmd)
		}
		return ex.code
	}
	// cobra's own errors are usage errors: a wrong number of arguments, an
	// unknown flag or command.
	fmt.Fprintln(os.Stderr, "kiln:", strings.TrimRight(err.Error(), "\n"))
	printUsageLine(cmd)
	return 2
}

// printUsageLine prints the command's usage line after an argument error,
// and where its help is.
func printUsageLine(cmd *cobra.Command) {
	if cmd == nil {
		return
	}
	line := cmd.UseLine()
	if cmd.HasAvailableSubCommands() {
		line = cmd.CommandPath() + " COMMAND [flags]"
	}
	fmt.Fprintf(os.Stderr, "Usage: %s\nRun '%s -h' for help.\n", line, cmd.CommandPath())
}

// exitError ends the command with a given exit code.
type exitError struct {
	code   int
	msg    string // printed to stderr when set
	usage  bool   // the command line is wrong: its usage line follows
	status int    // the HTTP status of the server's answer, if one caused it
}

func (e *exitError) Error() string { return e.msg }

// usageError reports a wrong command line (exit 2, with the command's
// usage line).
func usageError(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...), usage: true}
}
