package plugins

import (
	"fmt"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins/dagsensor"
	"github.com/kilnhq/kiln/plugins/shell"
)

// Builtin returns the catalog of the plugins built into the kiln binary.
func Builtin() dag.MapCatalog {
	return dag.MapCatalog{
		shell.Name:     mustSpec(shell.Name, false, shell.Schema),
		dagsensor.Name: mustSpec(dagsensor.Name, true, dagsensor.Schema),
	}
}

func mustSpec(name string, sensor bool, schema []byte) *dag.PluginSpec {
	s, err := dag.CompileSchemaJSON(schema)
	if err != nil {
		panic(fmt.Sprintf("built-in plugin %s: bad schema: %v", name, err))
	}
	return &dag.PluginSpec{Name: name, Sensor: sensor, Schema: s}
}
