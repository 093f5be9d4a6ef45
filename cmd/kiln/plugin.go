package main

import (
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/plugins/docker"
	"github.com/kilnhq/kiln/plugins/filesensor"
	"github.com/kilnhq/kiln/plugins/http"
	"github.com/kilnhq/kiln/plugins/httpsensor"
	"github.com/kilnhq/kiln/plugins/notify"
	"github.com/kilnhq/kiln/plugins/python"
	"github.com/kilnhq/kiln/plugins/shell"
)

// builtinPlugins are the stage plugins `kiln plugin NAME` serves.
var builtinPlugins = map[string]func(){
	shell.Name:      shell.Main,
	python.Name:     python.Main,
	docker.Name:     docker.Main,
	http.Name:       http.Main,
	notify.Name:     notify.Main,
	filesensor.Name: filesensor.Main,
	httpsensor.Name: httpsensor.Main,
}

// newPluginCmd is how a worker starts a built-in plugin: it runs the kiln
// binary itself as the plugin process. People have no use for it.
func newPluginCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "plugin NAME",
		Short:  "Serve a built-in stage plugin to the worker that started this process",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			serve, ok := builtinPlugins[args[0]]
			if !ok {
				return usageError("unknown plugin %q", args[0])
			}
			serve()
			return nil
		},
	}
}
