// Package shell is the shell stage plugin: it runs a command with a shell,
// and the command's exit code decides the try's outcome.
package shell

import _ "embed"

// Name is the plugin's name in DAG files.
const Name = "shell"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte
