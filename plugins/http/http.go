// Package http is the http stage plugin: it makes one HTTP request and
// succeeds when the reply's status is one the task expects.
//
// The reply's status is always an output of the task; for a JSON reply, the
// task's `outputs` pick more of them out of the body with small path
// selectors (selector.go). The request, the status, the time taken and the
// start of the reply's body go to the task log.
package http

import (
	_ "embed"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// Name is the plugin's name in DAG files.
const Name = "http"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte

// Stage is the http stage. Its zero value is ready to use.
type Stage struct{}

var _ sdk.Stage = Stage{}

// Info describes the stage.
func (Stage) Info() sdk.Info {
	return sdk.Info{Name: Name, Version: Version, Schema: Schema}
}

// Main serves the plugin to the Kiln host that started this process, and
// returns when the host lets it go (`kiln plugin http`).
func Main() { sdk.Main(Stage{}) }
