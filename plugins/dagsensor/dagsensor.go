// Package dagsensor describes the dag_sensor stage: it waits until a run of
// another DAG, or one task of it, reached a state. It needs the store, so
// the scheduler evaluates it itself instead of sending it to a worker; this
// package only holds its name and parameter schema.
package dagsensor

import _ "embed"

// Name is the stage's name in DAG files.
const Name = "dag_sensor"

// Schema is the JSON Schema of the stage's `with` parameters.
//
//go:embed schema.json
var Schema []byte
