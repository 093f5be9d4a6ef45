package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newTasksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "Read task logs and clear task instances",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newTasksLogsCmd(), newTasksClearCmd())
	return cmd
}

func newTasksLogsCmd() *cobra.Command {
	var (
		sf           serverFlags
		runID, task  string
		try          int
		followTheLog bool
	)
	cmd := &cobra.Command{
		Use:   "logs DAG --run RUN_ID --task ID",
		Short: "Print the log of a task's try",
		Long: `Print the log of a task's try: the latest unless --try says which.
With --follow, keep printing what the try logs until it ends, then exit: 0
when it succeeded (or was skipped), 1 otherwise. While following, a
carriage return is printed as a newline.`,
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
			if try > 0 {
				q.Set("try", strconv.Itoa(try))
			}
			if followTheLog {
				q.Set("follow", "1")
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
			return &exitError{code: 1, msg: fmt.Sprintf("try %d of task %s ended %s", end.TryNumber, task, end.State)}
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&runID, "run", "", "the run id (required)")
	f.StringVar(&task, "task", "", "the task id (required)")
	f.IntVar(&try, "try", 0, "the try number (default the latest)")
	f.BoolVar(&followTheLog, "follow", false, "keep printing the log until the try ends")
	cmd.MarkFlagRequired("run")
	cmd.MarkFlagRequired("task")
	return cmd
}

func newTasksClearCmd() *cobra.Command {
	var (
		sf         serverFlags
		runID      string
		tasks      []string
		downstream bool
		onlyFailed bool
	)
	cmd := &cobra.Command{
		Use:   "clear DAG --run RUN_ID [--task ID]...",
		Short: "Clear task instances of a run so that they run again",
		Long: `Clear task instances of a run so that they run again: the tasks named with
--task, or every task of the run. --downstream clears the tasks downstream
of them too; --only-failed keeps to those that failed or are
upstream_failed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			req := ui.ClearTasksRequest{Tasks: tasks, Downstream: downstream, OnlyFailed: onlyFailed}
			var res ui.ClearResult
			if _, err := c.do(cmd.Context(), "POST", apiPath("dags", args[0], "runs", runID, "clear"), nil, req, &res); err != nil {
				return err
			}
			if len(res.Cleared) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "nothing to clear in run %s\n", runID)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cleared %d task instance(s) of run %s: %s\n", len(res.Cleared), runID, strings.Join(res.Cleared, ", "))
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&runID, "run", "", "the run id (required)")
	f.StringArrayVar(&tasks, "task", nil, "a task to clear (repeatable; default every task)")
	f.BoolVar(&downstream, "downstream", false, "also clear the tasks downstream")
	f.BoolVar(&onlyFailed, "only-failed", false, "only task instances that failed or are upstream_failed")
	cmd.MarkFlagRequired("run")
	return cmd
}
