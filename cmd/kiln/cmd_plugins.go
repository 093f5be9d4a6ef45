package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/plugins/registry"
	"github.com/kilnhq/kiln/ui"
)

// addPluginsFlag registers --plugins, the folder of external stage plugins,
// on a command that discovers plugins.
func addPluginsFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "plugins", "",
		`folder of external stage plugins (kiln-plugin-NAME executables), searched before $PATH; "" for none (default $KILN_PLUGINS, else ~/.kiln/plugins)`)
}

// defaultPluginsDir is $KILN_PLUGINS, else ~/.kiln/plugins.
func defaultPluginsDir() string {
	if d := os.Getenv("KILN_PLUGINS"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".kiln", "plugins")
}

// discoverPlugins finds the built-in plugins, those in dir (--plugins)
// and those on $PATH. A --plugins folder given on the command line must
// exist; the default one need not. With check, the built-in plugins that
// depend on something beyond kiln (docker, on a Docker Engine) are
// checked too, for the processes that run tasks or list plugins.
func discoverPlugins(ctx context.Context, flags *pflag.FlagSet, dir string, logger *slog.Logger, check bool) (*registry.Registry, error) {
	switch {
	case !flags.Changed("plugins"):
		dir = defaultPluginsDir()
	case dir != "":
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, usageError("--plugins %s: no such folder", dir)
		}
	}
	cfg := registry.Config{Dirs: []string{dir}, Path: os.Getenv("PATH"), Logger: logger}
	if check {
		cfg.Checks = plugins.Checks()
	}
	reg, err := cfg.Discover(ctx)
	if err != nil {
		return nil, usageError("--plugins: %v", err)
	}
	return reg, nil
}

// logPluginProblems logs the plugins that did not load and the warnings of
// a discovery, for the long-running commands.
func logPluginProblems(logger *slog.Logger, reg *registry.Registry) {
	for _, w := range reg.Warnings() {
		logger.Warn(w)
	}
	for _, e := range reg.List() {
		if e.Error != "" {
			logger.Warn("plugin did not load: tasks using it cannot run", "plugin", e.Name, "path", e.Source, "err", e.Error)
		}
		if e.Warning != "" {
			logger.Info("tasks using this plugin cannot run here now", "plugin", e.Name, "reason", e.Warning)
		}
	}
}

// apiPlugins is the registry's list in the form of the HTTP API.
type apiPlugins struct{ reg *registry.Registry }

var _ ui.PluginLister = apiPlugins{}

// Plugins implements ui.PluginLister.
func (a apiPlugins) Plugins() []ui.Plugin {
	list := a.reg.List()
	out := make([]ui.Plugin, len(list))
	for i, e := range list {
		out[i] = ui.Plugin{Name: e.Name, Version: e.Version, Source: e.Source, Sensor: e.Sensor, Schema: e.Schema, Error: e.Error, Warning: e.Warning}
	}
	return out
}

func newPluginsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List the stage plugins this machine has",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newPluginsListCmd())
	return cmd
}

func newPluginsListCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--plugins DIR] [--json]",
		Short: "List the built-in and external stage plugins, with those that do not load and why",
		Long: `List the stage plugins kiln finds on this machine, without a server: the
built-in ones, then executables named kiln-plugin-NAME in --plugins and on
$PATH (the first of a name wins; built-in names cannot be taken). Each
external plugin is started once to ask its version and parameter schema.
Plugins that do not load are listed with the reason, also on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := discoverPlugins(cmd.Context(), cmd.Flags(), dir, nil, true)
			if err != nil {
				return err
			}
			list := apiPlugins{reg}.Plugins()
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			printPlugins(cmd.OutOrStdout(), cmd.ErrOrStderr(), list, reg.Warnings())
			return nil
		},
	}
	addPluginsFlag(cmd, &dir)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

// printPlugins prints a table of the plugins, and on stderr the errors of
// those that did not load and the warnings.
func printPlugins(stdout, stderr io.Writer, list []ui.Plugin, warnings []string) {
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tVERSION\tSENSOR\tSOURCE")
	for _, p := range list {
		version, sensor := p.Version, "no"
		if p.Sensor {
			sensor = "yes"
		}
		if p.Error != "" {
			version, sensor = "-", "-"
		}
		if version == "" {
			version = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, version, sensor, p.Source)
	}
	tw.Flush()
	for _, p := range list {
		if p.Error != "" {
			fmt.Fprintf(stderr, "kiln: plugin %s (%s) did not load: %s\n", p.Name, p.Source, p.Error)
		}
	}
	for _, p := range list {
		if p.Warning != "" {
			fmt.Fprintf(stderr, "kiln: plugin %s: its tasks cannot run here now: %s\n", p.Name, p.Warning)
		}
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "kiln: warning: %s\n", w)
	}
}
