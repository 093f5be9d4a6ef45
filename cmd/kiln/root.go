package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Kiln runs data and ML pipelines kept as DAG files",
		Long: `Kiln runs data and ML pipelines kept as DAG files in your repository:
on a cron schedule, on demand, or as a backfill over a date range.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(newDagsCmd())
	root.AddCommand(newPluginCmd(), newPluginsCmd())
	root.AddCommand(newWorkerCmd())
	root.AddCommand(newStandaloneCmd(), newServerCmd(), newDBCmd())
	addServerCommands(root)
	return root
}
