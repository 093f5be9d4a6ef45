package plugins

import (
	"github.com/kilnhq/kiln/plugins/docker"
	"github.com/kilnhq/kiln/plugins/filesensor"
	"github.com/kilnhq/kiln/plugins/http"
	"github.com/kilnhq/kiln/plugins/httpsensor"
	"github.com/kilnhq/kiln/plugins/notify"
	"github.com/kilnhq/kiln/plugins/python"
	"github.com/kilnhq/kiln/plugins/shell"
)

// builtinVersions are the versions of the built-in plugins that keep one
// of their own; the others (dag_sensor, which the scheduler evaluates) are
// versioned with kiln.
var builtinVersions = map[string]string{
	shell.Name:      shell.Version,
	http.Name:       http.Version,
	notify.Name:     notify.Version,
	filesensor.Name: filesensor.Version,
	httpsensor.Name: httpsensor.Version,
	python.Name:     python.Version,
	docker.Name:     docker.Version,
}

// BuiltinVersion returns the version of a built-in plugin, or "" for one
// that has no version apart from kiln's.
func BuiltinVersion(name string) string { return builtinVersions[name] }
