package main

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/ui"
)

func newCacheCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "List and clear the task cache",
		Long: `The task cache keeps the results of the successful tries of tasks that
use it (cache: true), by a key that covers everything that can change the
result; a task whose key has a live entry succeeds without running
(docs/artifacts.md#the-task-cache).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newCacheListCmd(), newCacheClearCmd())
	return cmd
}

// cacheQuery is the query of the cache routes for --dag and --task.
func cacheQuery(dagID, task string) (url.Values, error) {
	if task != "" && dagID == "" {
		return nil, usageError("--task needs --dag, the DAG of the task")
	}
	q := url.Values{}
	if dagID != "" {
		q.Set("dag", dagID)
	}
	if task != "" {
		q.Set("task", task)
	}
	return q, nil
}

func newCacheListCmd() *cobra.Command {
	var (
		sf          serverFlags
		dagID, task string
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "list [--dag DAG] [--task ID]",
		Short: "List the task cache's entries, newest first",
		Long: `List the task cache's entries, newest first: of every DAG, of one DAG's
tasks with --dag, of one task with --task too. Each names the try whose
result it holds; an expired entry serves no more, and goes when its
artifacts are collected. The key is the cache key's first 12 digits; --json
has it whole.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := cacheQuery(dagID, task)
			if err != nil {
				return err
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			var entries []ui.CacheEntry
			if _, err := c.do(cmd.Context(), "GET", apiPath("cache"), q, nil, &entries); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), entries)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "KEY\tDAG\tTASK\tRUN\tTRY\tCREATED\tEXPIRES\tARTIFACTS")
			for _, e := range entries {
				expires := "never"
				if e.Expires != nil {
					expires = fmtTime(e.Expires)
				}
				if !e.Live {
					expires += " (expired)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\n", e.Key[:min(12, len(e.Key))], e.From.DAGID, e.From.TaskID,
					e.From.RunID, e.From.Try, fmtTime(&e.Created), expires, len(e.Artifacts))
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&dagID, "dag", "", "only the entries of this DAG's tasks")
	f.StringVar(&task, "task", "", "with --dag: only this task's entries")
	f.BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newCacheClearCmd() *cobra.Command {
	var (
		sf          serverFlags
		dagID, task string
		all         bool
	)
	cmd := &cobra.Command{
		Use:   "clear (--dag DAG [--task ID] | --all)",
		Short: "Delete task cache entries, so that their tasks run again",
		Long: `Delete the task cache's entries of one task (--dag and --task), of a DAG's
tasks (--dag), or every entry (--all), so that the tasks run again the
next time instead of taking a cached result. The artifacts the entries held
stay stored until garbage collection. Needs the operator role.`,
		Example: `  kiln cache clear --dag ml_pipeline --task train
  kiln cache clear --all`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case all && dagID != "":
				return usageError("--all clears every entry: leave --dag and --task out, or --all")
			case !all && dagID == "" && task == "":
				return usageError("name what to clear: --dag DAG (and --task ID), or every entry with --all")
			}
			q, err := cacheQuery(dagID, task)
			if err != nil {
				return err
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			var res ui.ClearCacheResult
			if _, err := c.do(cmd.Context(), "DELETE", apiPath("cache"), q, nil, &res); err != nil {
				return err
			}
			scope := ""
			switch {
			case task != "":
				scope = fmt.Sprintf(" of task %s of DAG %s", task, dagID)
			case dagID != "":
				scope = " of DAG " + dagID
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cleared %s cache entr%s%s\n", strconv.Itoa(res.Cleared), plural(res.Cleared, "y", "ies"), scope)
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&dagID, "dag", "", "clear the entries of this DAG's tasks")
	f.StringVar(&task, "task", "", "with --dag: only this task's entries")
	f.BoolVar(&all, "all", false, "clear every entry of every DAG")
	return cmd
}
