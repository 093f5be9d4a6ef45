package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newTasksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "Show tries, read task logs and clear task instances",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newTasksShowCmd(), newTasksLogsCmd(), newTasksClearCmd())
	return cmd
}

func newTasksLogsCmd() *cobra.Command {
	var (
		sf           serverFlags
		runID, task  string
		try          int
		mapIndex     int
		followTheLog bool
		timestamps   bool
	)
	cmd := &cobra.Command{
		Use:   "logs DAG --run RUN_ID --task ID [--map-index N]",
		Short: "Print the log of a task's try",
		Long: `Print the log of a task's try: the latest unless --try says which.
--map-index N reads instance N of a mapped task.
With --follow, keep printing what the try logs until it ends, then exit: 0
when it succeeded (or was skipped), 1 otherwise. While following, a
carriage return is printed as a newline. With --timestamps, each line
starts with the time the server received it (UTC, to the second; blank for
lines logged before Kiln kept times).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.Flags().Changed("try") && try < 1 {
				return usageError("--try %d: tries are numbered from 1", try)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			name, err := addMapIndex(cmd, q, task, mapIndex)
			if err != nil {
				return err
			}
			if try > 0 {
				q.Set("try", strconv.Itoa(try))
			}
			if followTheLog {
				q.Set("follow", "1")
			}
			if timestamps {
				q.Set("timestamps", "1")
			}
			resp, err := c.send(cmd.Context(), "GET", apiPath("dags", args[0], "runs", runID, "tasks", task, "logs"), q, nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			stdout := cmd.OutOrStdout()
			if !followTheLog {
				if _, err := io.Copy(stdout, resp.Body); err != nil {
					return &exitError{code: 1, msg: fmt.Sprintf("reading the log: %v", err)}
				}
				return nil
			}
			end, err := ui.DecodeLogStream(resp.Body, stdout)
			switch {
			case errors.Is(err, ui.ErrLogStreamCut):
				return &exitError{code: 1, msg: "the server ended the log stream before the try ended"}
			case err != nil:
				return &exitError{code: 1, msg: fmt.Sprintf("following the log: %v", err)}
			}
			switch end.State {
			case "", store.TaskSuccess, store.TaskSkipped:
				return nil
			}
			return &exitError{code: 1, msg: fmt.Sprintf("try %d of task %s ended %s", end.TryNumber, name, end.State)}
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&runID, "run", "", "the run id (required)")
	f.StringVar(&task, "task", "", "the task id (required)")
	f.IntVar(&try, "try", 0, "the try number (default the latest)")
	f.IntVar(&mapIndex, "map-index", 0, "instance N of the mapped task --task names")
	f.BoolVar(&followTheLog, "follow", false, "keep printing the log until the try ends")
	f.BoolVar(&timestamps, "timestamps", false, "start each line with the time it was received")
	cmd.MarkFlagRequired("run")
	cmd.MarkFlagRequired("task")
	return cmd
}

func newTasksClearCmd() *cobra.Command {
	var (
		sf         serverFlags
		runID      string
		from, to   string
		tasks      []string
		mapIndexes []int
		downstream bool
		onlyFailed bool
		latest     bool
	)
	cmd := &cobra.Command{
		Use:   "clear DAG (--run RUN_ID | --from DATE --to DATE) [--task ID [--map-index N]...]...",
		Short: "Clear task instances of a run, or of the runs in a date range, so that they run again",
		Long: `Clear task instances of a run so that they run again: the tasks named with
--task, or every task of the run. --downstream clears the tasks downstream
of them too; --only-failed keeps to those that failed or are
upstream_failed. The tasks run again on the DAG version the run was
created with; --latest moves the run to the DAG's current version first,
which the run records (docs/reproducibility.md#dag-versions).

--map-index N (repeatable, or N,M,...) clears only instance N of the one
mapped task --task names, and with --downstream the same instances of its
mapped group and the whole of the other tasks downstream.

Instead of --run, --from and --to clear every run of the DAG whose logical
date lies in that range, both ends included. A date (2026-01-31) is read in
the DAG's timezone and stands for the whole day; a time without an offset is
read there too. Either end may be left out for an open range.`,
		Example: `  kiln tasks clear churn_training --run scheduled__2026-01-31T02:00:00Z --task train --downstream
  kiln tasks clear fanout --run manual__2026-03-01T00:00:00Z --task process --map-index 7 --map-index 12
  kiln tasks clear churn_training --from 2026-01-01 --to 2026-01-31 --only-failed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ranged := from != "" || to != ""
			switch {
			case runID != "" && ranged:
				return usageError("--run and --from/--to exclude each other: clear one run, or the runs in a range of logical dates")
			case runID == "" && !ranged:
				return usageError("want --run RUN_ID, or --from and --to for the runs in a range of logical dates")
			case len(mapIndexes) > 0 && len(tasks) != 1:
				return usageError("--map-index names instances of one mapped task: give exactly one --task (%d given)", len(tasks))
			case len(mapIndexes) > 0 && ranged:
				return usageError("--map-index clears instances of a mapped task in one run: use it with --run")
			}
			for _, i := range mapIndexes {
				if i < 0 {
					return usageError("--map-index %d: map indexes count from 0", i)
				}
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			if latest && ranged {
				return usageError("--latest moves one run to the DAG's current version: use it with --run")
			}
			req := ui.ClearTasksRequest{Tasks: tasks, MapIndexes: mapIndexes, Downstream: downstream, OnlyFailed: onlyFailed, Latest: latest}
			if ranged {
				return clearRange(cmd.Context(), c, cmd.OutOrStdout(), args[0], from, to, req)
			}
			var res ui.ClearResult
			if _, err := c.do(cmd.Context(), "POST", apiPath("dags", args[0], "runs", runID, "clear"), nil, req, &res); err != nil {
				return err
			}
			printCleared(cmd.OutOrStdout(), runID, res.Cleared)
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&runID, "run", "", "the run id")
	f.StringVar(&from, "from", "", "instead of --run: the runs from this logical date (YYYY-MM-DD or a time)")
	f.StringVar(&to, "to", "", "instead of --run: the runs up to this logical date, included (YYYY-MM-DD: the whole day)")
	f.StringArrayVar(&tasks, "task", nil, "a task to clear (repeatable; default every task)")
	f.IntSliceVar(&mapIndexes, "map-index", nil, "only this instance of the mapped task --task names (repeatable)")
	f.BoolVar(&downstream, "downstream", false, "also clear the tasks downstream")
	f.BoolVar(&onlyFailed, "only-failed", false, "only task instances that failed or are upstream_failed")
	f.BoolVar(&latest, "latest", false, "move the run to the DAG's current version first (by default it runs again on the version it was created with)")
	return cmd
}

// addMapIndex puts --map-index N, when given, in a request's query as
// map_index: instance N of the mapped task --task names
// (docs/cli.md#mapped-tasks). It returns the instance's name, TASK[N], or
// the task's without --map-index.
func addMapIndex(cmd *cobra.Command, q url.Values, task string, idx int) (string, error) {
	if !cmd.Flags().Changed("map-index") {
		return task, nil
	}
	if idx < 0 {
		return "", usageError("--map-index %d: map indexes count from 0", idx)
	}
	q.Set("map_index", strconv.Itoa(idx))
	return store.InstanceKey(task, idx), nil
}

func printCleared(w io.Writer, runID string, cleared []string) {
	if len(cleared) == 0 {
		fmt.Fprintf(w, "nothing to clear in run %s\n", runID)
		return
	}
	fmt.Fprintf(w, "cleared %d task instance(s) of run %s: %s\n", len(cleared), runID, strings.Join(cleared, ", "))
}

// clearRange clears the runs of a DAG whose logical date is in
// [fromArg, toArg] (either may be empty for an open end), oldest first.
func clearRange(ctx context.Context, c *apiClient, w io.Writer, dagID, fromArg, toArg string, req ui.ClearTasksRequest) error {
	var d ui.DAGDetail
	if _, err := c.do(ctx, "GET", apiPath("dags", dagID), nil, nil, &d); err != nil {
		return err
	}
	loc := dagLocation(d)
	var from, to *time.Time
	if fromArg != "" {
		t, err := rangeBound("--from", fromArg, loc, false)
		if err != nil {
			return err
		}
		from = &t
	}
	if toArg != "" {
		t, err := rangeBound("--to", toArg, loc, true)
		if err != nil {
			return err
		}
		to = &t
	}
	if from != nil && to != nil && from.After(*to) {
		return usageError("--from %s is after --to %s", fromArg, toArg)
	}
	runs, err := runsBetween(ctx, c, d.DAGID, from, to)
	if err != nil {
		return err
	}
	span := fmtTime(from) + " .. " + fmtTime(to)
	if len(runs) == 0 {
		fmt.Fprintf(w, "no runs of DAG %s with a logical date in %s\n", d.DAGID, span)
		return nil
	}
	total, touched := 0, 0
	for _, r := range runs {
		var res ui.ClearResult
		if _, err := c.do(ctx, "POST", apiPath("dags", d.DAGID, "runs", r.RunID, "clear"), nil, req, &res); err != nil {
			return err
		}
		printCleared(w, r.RunID, res.Cleared)
		if len(res.Cleared) > 0 {
			total += len(res.Cleared)
			touched++
		}
	}
	fmt.Fprintf(w, "cleared %d task instance(s) in %d of %d run(s) of DAG %s with a logical date in %s\n", total, touched, len(runs), d.DAGID, span)
	return nil
}

// runPageSize is how many runs clearRange asks for at a time (the API's
// most); tests make it smaller.
var runPageSize = 1000

// runsBetween lists the DAG's runs whose logical date is in [from, to] (nil
// for an open end), oldest first. The API lists a DAG's runs newest logical
// date first, so paging stops at the first run before from.
func runsBetween(ctx context.Context, c *apiClient, dagID string, from, to *time.Time) ([]ui.Run, error) {
	var out []ui.Run
	for offset := 0; ; {
		q := url.Values{"limit": {strconv.Itoa(runPageSize)}, "offset": {strconv.Itoa(offset)}}
		var page []ui.Run
		if _, err := c.do(ctx, "GET", apiPath("dags", dagID, "runs"), q, nil, &page); err != nil {
			return nil, err
		}
		for _, r := range page {
			switch {
			case to != nil && r.LogicalDate.After(*to):
				continue
			case from != nil && r.LogicalDate.Before(*from):
				slices.Reverse(out)
				return out, nil
			}
			out = append(out, r)
		}
		if len(page) < runPageSize {
			slices.Reverse(out)
			return out, nil
		}
		offset += len(page)
	}
}
