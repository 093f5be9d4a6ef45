// Package filesensor is the file_sensor stage plugin: a sensor (docs/dag-format.md#sensors)
// whose condition is that a file matching a glob exists, at least as large
// as the task asks.
//
// Each poke looks once and says what it saw in the task log; the host pokes
// again later while the condition is not met.
package filesensor

import (
	_ "embed"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// Name is the plugin's name in DAG files.
const Name = "file_sensor"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte

// Stage is the file_sensor stage. Its zero value is ready to use.
type Stage struct{}

var _ sdk.Stage = Stage{}

// Info describes the stage.
func (Stage) Info() sdk.Info {
	return sdk.Info{Name: Name, Version: Version, Schema: Schema, Sensor: true}
}

// Main serves the plugin to the Kiln host that started this process, and
// returns when the host lets it go (`kiln plugin file_sensor`).
func Main() { sdk.Main(Stage{}) }
