// Package shell is the shell stage plugin: it runs a command with a shell,
// and the command's exit code decides the try's outcome.
//
// The command runs in its own process group, with exactly the environment
// the host sends plus the task's `env`, its stdout and stderr merged into one
// pipe (so their order is kept) and streamed to the host in chunks as they
// come. Cancelling the task, and the end of the command, kill whatever is
// left of its process group.
package shell

import (
	_ "embed"

	"github.com/kilnhq/kiln/plugins/serve"
)

// Name is the plugin's name in DAG files.
const Name = "shell"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte

// Main serves the plugin to the Kiln host that started this process, and
// returns when the host lets it go (`kiln plugin shell`).
func Main() {
	s := newServer()
	serve.Serve(s)
}
