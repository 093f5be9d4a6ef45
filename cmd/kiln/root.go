package main

import (
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/suggest"
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
	suggestSubcommands(root)
	return root
}

// suggestSubcommands makes every command that only groups others (kiln
// dags, kiln runs, ...) refuse an unknown sub-command with the closest
// one: cobra suggests only for the top level.
func suggestSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		if sub.HasSubCommands() {
			sub.Args = unknownSubcommand
			suggestSubcommands(sub)
		}
	}
}

func unknownSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
			names = append(names, sub.Aliases...)
		}
	}
	return usageError("unknown command %q for %q%s", args[0], cmd.CommandPath(), suggest.DidYouMean(args[0], names))
}
