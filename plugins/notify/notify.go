// Package notify is the notify stage plugin: it POSTs a message to a
// webhook, typically from an on_failure, on_success or on_retry callback
// (docs/dag-format.md#callbacks), and fails unless the webhook answers with a 2xx status.
//
// The message is the task's `body`, rendered by the scheduler like any
// template, or else a JSON summary of the task built from its KILN_*
// environment.
package notify

import (
	_ "embed"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// Name is the plugin's name in DAG files.
const Name = "notify"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte

// Stage is the notify stage. Its zero value is ready to use.
type Stage struct{}

var _ sdk.Stage = Stage{}

// Info describes the stage.
func (Stage) Info() sdk.Info {
	return sdk.Info{Name: Name, Version: Version, Schema: Schema}
}

// Main serves the plugin to the Kiln host that started this process, and
// returns when the host lets it go (`kiln plugin notify`).
func Main() { sdk.Main(Stage{}) }
