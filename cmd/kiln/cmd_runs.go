package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newRunsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List and inspect DAG runs",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newRunsListCmd(), newRunsShowCmd(), newRunsMarkCmd(), newRunsDiffCmd())
	return cmd
}

var (
	runStateNames = []string{string(store.RunQueued), string(store.RunRunning), string(store.RunSuccess), string(store.RunFailed)}
	runTypeNames  = []string{store.RunTypeScheduled, store.RunTypeManual, store.RunTypeBackfill, store.RunTypeDataset}
)

func newRunsListCmd() *cobra.Command {
	var (
		sf         serverFlags
		state      string
		runType    string
		backfillID string
		limit      int
		asJSON     bool
	)
	cmd := &cobra.Command{
		Use:   "list [DAG]",
		Short: "List runs, newest first: of one DAG, or of all",
		Long: `List runs, newest first: a DAG's by logical date, or without DAG the runs
of every DAG by the time they were queued. --state, --run-type and
--backfill keep to the runs that match all of them.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if state != "" && !slices.Contains(runStateNames, state) {
				return usageError("--state %q: want one of queued, running, success, failed", state)
			}
			if runType != "" && !slices.Contains(runTypeNames, runType) {
				return usageError("--run-type %q: want one of scheduled, manual, backfill", runType)
			}
			if limit < 1 || limit > 1000 {
				return usageError("--limit %d: want 1 to 1000", limit)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			dagID := ui.AllDAGs
			if len(args) == 1 {
				dagID = args[0]
			}
			q := url.Values{"limit": {strconv.Itoa(limit)}}
			if state != "" {
				q.Set("state", state)
			}
			if runType != "" {
				q.Set("run_type", runType)
			}
			if backfillID != "" {
				q.Set("backfill_id", backfillID)
			}
			var runs []ui.Run
			h, err := c.do(cmd.Context(), "GET", apiPath("dags", dagID, "runs"), q, nil, &runs)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), runs)
			}
			if err := printRuns(cmd.OutOrStdout(), runs); err != nil {
				return err
			}
			if total, err := strconv.Atoi(h.Get("X-Total-Count")); err == nil && total > len(runs) {
				fmt.Fprintf(cmd.ErrOrStderr(), "kiln: showing the newest %d of %d runs (see --limit)\n", len(runs), total)
			}
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "only runs in this state: queued, running, success or failed")
	f.StringVar(&runType, "run-type", "", "only runs of this type: scheduled, manual or backfill")
	f.StringVar(&backfillID, "backfill", "", "only the runs of this backfill (created or re-run by it)")
	f.IntVar(&limit, "limit", 50, "list at most this many runs (1 to 1000)")
	f.BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func printRuns(w io.Writer, runs []ui.Run) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "DAG\tRUN ID\tTYPE\tSTATE\tLOGICAL DATE\tSTART\tEND")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.DAGID, r.RunID, r.RunType, r.State,
			fmtTime(&r.LogicalDate), fmtTime(r.StartDate), fmtTime(r.EndDate))
	}
	return tw.Flush()
}

func newRunsShowCmd() *cobra.Command {
	var (
		sf     serverFlags
		dagID  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show RUN_ID [--dag DAG]",
		Short: "Show a run and the state of its tasks",
		Long: `Show a run and the state of its tasks. Without --dag, the run is looked
up in every DAG; --dag is needed only when several DAGs have a run with
that id.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			inDAG := dagID
			if inDAG == "" {
				inDAG = ui.AllDAGs
			}
			var run ui.Run
			if _, err := c.do(cmd.Context(), "GET", apiPath("dags", inDAG, "runs", args[0]), nil, nil, &run); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), run)
			}
			// The DAG's timezone goes beside the run's dates; a DAG no
			// longer loaded has runs but no timezone: UTC alone.
			var d ui.DAGDetail
			if _, err := c.do(cmd.Context(), "GET", apiPath("dags", run.DAGID), nil, nil, &d); err != nil {
				d.Timezone = "UTC"
			}
			// The instances of mapped tasks, and the failed tries' logs,
			// come from the list of every task instance.
			var tis []ui.TaskInstance
			if slices.ContainsFunc(run.Tasks, func(t ui.RunTask) bool { return t.MapLength > 0 || failedTry(t) }) {
				if _, err := c.do(cmd.Context(), "GET", apiPath("dags", run.DAGID, "runs", run.RunID, "tasks"), nil, nil, &tis); err != nil {
					return err
				}
			}
			if err := printRun(cmd.OutOrStdout(), run, d.Timezone, tis); err != nil {
				return err
			}
			return printFailedTries(cmd.Context(), cmd.OutOrStdout(), c, run, tis)
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&dagID, "dag", "", "the DAG of the run (needed only when several DAGs have a run with this id)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

// printRun prints a run, its dates in UTC with the DAG's timezone zone
// beside them (docs/cli.md#dates-and-times), and its tasks, each mapped
// task's instances (from tis, every task instance of the run) right under
// it.
func printRun(w io.Writer, r ui.Run, zone string, tis []ui.TaskInstance) error {
	tw := newTable(w)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("DAG", r.DAGID)
	field("Run", r.RunID)
	field("Type", r.RunType)
	field("State", string(r.State))
	field("Logical date", fmtTimeZoned(&r.LogicalDate, zone))
	field("Data interval", fmtInterval(r.DataIntervalStart, r.DataIntervalEnd, zone))
	field("Start", fmtTime(r.StartDate))
	field("End", fmtTime(r.EndDate))
	if len(r.Params) > 0 {
		field("Params", jsonText(r.Params))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	instances := map[string][]ui.TaskInstance{}
	for _, ti := range tis {
		if ti.MapIndex >= 0 {
			instances[ti.TaskID] = append(instances[ti.TaskID], ti)
		}
	}
	tw = newTable(w)
	fmt.Fprintln(tw, "TASK\tSTATE\tTRY\tSTART\tEND\tDURATION")
	for _, t := range r.Tasks {
		state, try := string(t.State), strconv.Itoa(t.TryNumber)
		if t.Cached {
			state += " (cached)" // docs/artifacts.md#the-task-cache
		}
		if t.MapLength > 0 {
			// docs/cli.md#mapped-tasks: the state of its instances together.
			state += " (" + instanceCount(t.MapLength) + ")"
			try = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.TaskID, state, try, fmtTime(t.StartDate), fmtTime(t.EndDate), fmtDuration(t.DurationS))
		for _, in := range instances[t.TaskID] {
			if in.MapIndex >= t.MapLength {
				continue // left from an earlier, longer list
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", store.InstanceKey(in.TaskID, in.MapIndex), in.State, in.TryNumber,
				fmtTime(in.StartDate), fmtTime(in.EndDate), fmtDuration(in.DurationS))
		}
	}
	return tw.Flush()
}

// instanceCount is "1 instance" or "N instances".
func instanceCount(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return strconv.Itoa(n) + " instances"
}

// failedTry says a run's task ended its latest try failed; for a mapped
// task, that some of its instances did.
func failedTry(t ui.RunTask) bool {
	return ui.FailedTry(t.State) && (t.TryNumber > 0 || t.MapLength > 0)
}

// maxFailedInstances is how many failed instances of one mapped task `kiln
// runs show` prints the log of; a note counts the others.
const maxFailedInstances = 5

// printFailedTries prints, for each task instance of a run whose latest
// try failed (tis, every task instance of the run), the try's error and
// the last lines of its log: of a mapped task, of its first few failed
// instances.
func printFailedTries(ctx context.Context, w io.Writer, c *apiClient, r ui.Run, tis []ui.TaskInstance) error {
	shown := map[string]int{} // failed instances by mapped task
	for _, t := range tis {
		if !ui.FailedTry(t.State) || t.TryNumber == 0 {
			continue
		}
		key := store.InstanceKey(t.TaskID, t.MapIndex)
		q := url.Values{"try": {strconv.Itoa(t.TryNumber)}, "tail": {"10"}}
		if t.MapIndex >= 0 {
			if shown[t.TaskID]++; shown[t.TaskID] > maxFailedInstances {
				continue
			}
			q.Set("map_index", strconv.Itoa(t.MapIndex))
		}
		resp, err := c.send(ctx, "GET", apiPath("dags", r.DAGID, "runs", r.RunID, "tasks", t.TaskID, "logs"), q, nil)
		if err != nil {
			return err
		}
		tail, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("reading the log of %s: %w", key, err)
		}
		fmt.Fprintf(w, "\n%s %s (try %d): %s\n", key, t.State, t.TryNumber, dashIfEmpty(t.Error))
		for line := range strings.Lines(string(tail)) {
			fmt.Fprintf(w, "  | %s\n", strings.TrimSuffix(line, "\n"))
		}
	}
	for _, t := range r.Tasks {
		if n := shown[t.TaskID] - maxFailedInstances; n > 0 {
			fmt.Fprintf(w, "\n%s: %d more failed instance(s); kiln tasks logs %s --run %s --task %s --map-index N reads one\n", t.TaskID, n, r.DAGID, r.RunID, t.TaskID)
		}
	}
	return nil
}

func newRunsMarkCmd() *cobra.Command {
	var (
		sf       serverFlags
		dagID    string
		state    string
		task     string
		mapIndex int
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "mark RUN_ID --dag DAG --state success|failed [--task ID [--map-index N]]",
		Short: "Mark a run, or one of its tasks, success or failed",
		Long: `Mark a run success or failed: success marks every task that did not
succeed or skip as success; failed marks every unfinished task as failed.
Tries still queued or running are stopped. With --task, only that task is
marked, and the tasks downstream of it that failed or could not run go on
as their trigger rules say. Marking a mapped task marks each of its
instances; --map-index N marks only instance N.`,
		Example: `  kiln runs mark manual__2026-03-01T00:00:00Z --dag churn_training --state success
  kiln runs mark scheduled__2026-03-01T02:00:00Z --dag churn_training --task train --state failed`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if state != "success" && state != "failed" {
				return usageError("--state %q: want success or failed", state)
			}
			if task == "" && cmd.Flags().Changed("map-index") {
				return usageError("--map-index names an instance of the mapped task --task names: give --task")
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
			req := ui.MarkRequest{State: &state}
			runID, out := args[0], cmd.OutOrStdout()
			if task == "" {
				var run ui.Run
				if _, err := c.do(cmd.Context(), "PATCH", apiPath("dags", dagID, "runs", runID), nil, req, &run); err != nil {
					return err
				}
				if asJSON {
					return printJSONValue(out, run)
				}
				fmt.Fprintf(out, "marked run %s of DAG %s %s; it is now %s\n", runID, dagID, state, run.State)
				return nil
			}
			var ti ui.TaskInstance
			if _, err := c.do(cmd.Context(), "PATCH", apiPath("dags", dagID, "runs", runID, "tasks", task), q, req, &ti); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(out, ti)
			}
			fmt.Fprintf(out, "marked task %s of run %s %s\n", name, runID, ti.State)
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&dagID, "dag", "", "the DAG of the run (required)")
	f.StringVar(&state, "state", "", "success or failed (required)")
	f.StringVar(&task, "task", "", "mark only this task")
	f.IntVar(&mapIndex, "map-index", 0, "mark only instance N of the mapped task --task names")
	f.BoolVar(&asJSON, "json", false, "print the run, or the task instance, as JSON")
	cmd.MarkFlagRequired("dag")
	cmd.MarkFlagRequired("state")
	return cmd
}
