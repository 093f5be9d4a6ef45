package main

import (
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/internal/buildinfo"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Kiln runs data and ML pipelines kept as DAG files",
		Long: `Kiln runs data and ML pipelines kept as DAG files in your repository:
on a cron schedule, on demand, or as a backfill over a date range.`,
		Version:       buildinfo.Get().String(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --version prints what `kiln version` does.
	root.SetVersionTemplate("{{.Version}}\n")
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(newVersionCmd(), newDagsCmd())
	root.AddCommand(newPluginCmd(), newPluginsCmd())
	root.AddCommand(newWorkerCmd())
	root.AddCommand(newStandaloneCmd(), newServerCmd(), newDBCmd())
	addServerCommands(root)
	return root
}
