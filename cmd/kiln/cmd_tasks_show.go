package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newTasksShowCmd() *cobra.Command {
	var (
		sf          serverFlags
		runID, task string
		try         int
		mapIndex    int
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "show DAG --run RUN_ID --task ID [--map-index N] [--try N]",
		Short: "Show a task's try and what it ran",
		Long: `Show a task's try, the latest unless --try says which, with its manifest:
what it ran — the rendered with (secret values masked), the env names, the
when result, the DAG version, the plugin's version and the SHA-256 of its
executable, the worker, the run's params and the upstream outputs it read
(docs/reproducibility.md#what-each-try-records). --map-index N shows a try
of instance N of a mapped task.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("try") && try < 1 {
				return usageError("--try %d: tries are numbered from 1", try)
			}
			if runID == "" || task == "" {
				return usageError("--run and --task: a run id and a task id, not empty")
			}
			q := url.Values{}
			name, err := addMapIndex(cmd, q, task, mapIndex)
			if err != nil {
				return err
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			base := apiPath("dags", args[0], "runs", runID, "tasks", task, "tries")
			var tr ui.TryDetail
			if try > 0 {
				if _, err := c.do(cmd.Context(), "GET", base+"/"+strconv.Itoa(try), q, nil, &tr); err != nil {
					return err
				}
			} else {
				var tries []ui.TryDetail
				if _, err := c.do(cmd.Context(), "GET", base, q, nil, &tries); err != nil {
					return err
				}
				if len(tries) == 0 {
					return &exitError{code: 1, msg: fmt.Sprintf("task %s of run %s has not been tried yet", name, runID)}
				}
				tr = tries[len(tries)-1]
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), tr)
			}
			return printTry(cmd.OutOrStdout(), tr)
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&runID, "run", "", "the run id (required)")
	f.StringVar(&task, "task", "", "the task id (required)")
	f.IntVar(&try, "try", 0, "the try number (default the latest)")
	f.IntVar(&mapIndex, "map-index", 0, "instance N of the mapped task --task names")
	f.BoolVar(&asJSON, "json", false, "print a JSON object")
	cmd.MarkFlagRequired("run")
	cmd.MarkFlagRequired("task")
	return cmd
}

// printTry prints a try and its manifest as fields, the rendered with last
// as indented JSON.
func printTry(w io.Writer, tr ui.TryDetail) error {
	tw := newTable(w)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("DAG", tr.DAGID)
	field("Run", tr.RunID)
	field("Task", store.InstanceKey(tr.TaskID, tr.MapIndex))
	field("Try", strconv.Itoa(tr.TryNumber))
	field("State", string(tr.State))
	field("Start", fmtTime(tr.StartDate))
	field("End", fmtTime(tr.EndDate))
	field("Duration", fmtDuration(tr.DurationS))
	if tr.Error != "" {
		field("Error", tr.Error)
	}
	if c := tr.CachedFrom; c != nil {
		field("Cached from", fmt.Sprintf("run %s of %s, task %s, try %d", c.RunID, c.DAGID, c.TaskID, c.Try))
	}
	for _, a := range tr.Artifacts {
		field("Artifact "+a.Name, fmt.Sprintf("%s, %s, sha256 %s", a.Path, humanize.IBytes(uint64(a.Size)), a.SHA256))
	}
	m := tr.Manifest
	if m == nil {
		field("Manifest", "none (recorded before Kiln kept manifests)")
		return tw.Flush()
	}
	field("DAG version", m.DAGVersion)
	field("Kiln version", m.KilnVersion)
	plugin := m.Plugin.Name
	if m.Plugin.Version != "" {
		plugin += " " + m.Plugin.Version
	}
	if m.Plugin.SHA256 != "" {
		plugin += " (sha256 " + m.Plugin.SHA256 + ")"
	}
	field("Plugin", plugin)
	for _, k := range slices.Sorted(maps.Keys(m.Plugin.Facts)) {
		field("  "+k, m.Plugin.Facts[k])
	}
	if m.Worker != nil {
		field("Worker", fmt.Sprintf("%s on %s (kiln %s)", m.Worker.ID, m.Worker.Host, m.Worker.KilnVersion))
	}
	if m.When != nil {
		field("When", fmt.Sprintf("%s → %t", m.When.Expr, m.When.Result))
	}
	field("Env", dashIfEmpty(strings.Join(m.Env, " ")))
	field("Params", keyValues(m.Params))
	var reads []string
	for _, up := range slices.Sorted(maps.Keys(m.OutputsRead)) {
		for _, k := range slices.Sorted(maps.Keys(m.OutputsRead[up])) {
			reads = append(reads, up+"."+k+"="+dag.ParamText(m.OutputsRead[up][k]))
		}
	}
	field("Outputs read", dashIfEmpty(strings.Join(reads, " ")))
	for _, name := range slices.Sorted(maps.Keys(m.Inputs)) {
		field("Input "+name, "sha256 "+m.Inputs[name])
	}
	if c := m.Cache; c != nil {
		field("Cache", c.Result)
		if c.Key != "" {
			field("Cache key", c.Key)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// As JSON, with "<", ">" and "&" left as they are: shell commands
	// hold them.
	var with strings.Builder
	enc := json.NewEncoder(&with)
	enc.SetEscapeHTML(false)
	enc.SetIndent("  ", "  ")
	if err := enc.Encode(m.With); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "With:\n  %s", with.String())
	return err
}

// keyValues writes a map, such as a run's params, as sorted KEY=VALUE
// words (region=eu sample_frac=1), each value as its task sees it; - for
// none.
func keyValues(m map[string]any) string {
	if len(m) == 0 {
		return "-"
	}
	words := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		words = append(words, k+"="+dag.ParamText(m[k]))
	}
	return strings.Join(words, " ")
}
