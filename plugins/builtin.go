package plugins

import (
	"context"
	"fmt"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins/dagsensor"
	"github.com/kilnhq/kiln/plugins/docker"
	"github.com/kilnhq/kiln/plugins/filesensor"
	"github.com/kilnhq/kiln/plugins/http"
	"github.com/kilnhq/kiln/plugins/httpsensor"
	"github.com/kilnhq/kiln/plugins/notify"
	"github.com/kilnhq/kiln/plugins/python"
	"github.com/kilnhq/kiln/plugins/shell"
)

// Builtin returns the catalog of the plugins built into the kiln binary.
func Builtin() dag.MapCatalog {
	return dag.MapCatalog{
		shell.Name:      mustSpec(shell.Name, false, shell.Schema),
		dagsensor.Name:  mustSpec(dagsensor.Name, true, dagsensor.Schema),
		http.Name:       mustSpec(http.Name, false, http.Schema),
		notify.Name:     mustSpec(notify.Name, false, notify.Schema),
		filesensor.Name: mustSpec(filesensor.Name, true, filesensor.Schema),
		httpsensor.Name: mustSpec(httpsensor.Name, true, httpsensor.Schema),
		python.Name:     mustSpec(python.Name, false, python.Schema),
		docker.Name:     mustSpec(docker.Name, false, docker.Schema),
	}
}

// Checks are the readiness checks of the built-in plugins that depend on
// something beyond the kiln binary, for registry.Config.Checks.
func Checks() map[string]func(context.Context) error {
	return map[string]func(context.Context) error{docker.Name: docker.Check}
}

// StopGraces are how long the built-in plugins that may take longer than
// a process group's grace to stop a cancelled task may take, for
// host.Config.StopGraces.
func StopGraces() map[string]time.Duration {
	return map[string]time.Duration{docker.Name: docker.MaxStopGrace}
}

func mustSpec(name string, sensor bool, schema []byte) *dag.PluginSpec {
	s, err := dag.CompileSchemaJSON(schema)
	if err != nil {
		panic(fmt.Sprintf("built-in plugin %s: bad schema: %v", name, err))
	}
	return &dag.PluginSpec{Name: name, Sensor: sensor, Schema: s, SchemaJSON: schema}
}
