// Package httpsensor is the http_sensor stage plugin: a sensor (docs/dag-format.md#sensors)
// whose condition is that a URL answers with an expected status and,
// optionally, a body containing some text.
//
// Each poke makes one request. A reply that does not meet the condition,
// and a server that cannot be reached (not up yet, say), mean "not yet":
// the poke says why in the task log and the host pokes again later.
package httpsensor

import (
	_ "embed"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// Name is the plugin's name in DAG files.
const Name = "http_sensor"

// Version is the plugin's version, reported by Describe.
const Version = "0.1.0"

// Schema is the JSON Schema of the plugin's `with` parameters.
//
//go:embed schema.json
var Schema []byte

// Stage is the http_sensor stage. Its zero value is ready to use.
type Stage struct{}

var _ sdk.Stage = Stage{}

// Info describes the stage.
func (Stage) Info() sdk.Info {
	return sdk.Info{Name: Name, Version: Version, Schema: Schema, Sensor: true}
}

// Main serves the plugin to the Kiln host that started this process, and
// returns when the host lets it go (`kiln plugin http_sensor`).
func Main() { sdk.Main(Stage{}) }
