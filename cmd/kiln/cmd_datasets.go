package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newDatasetsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "datasets",
		Short: "List datasets, show their events, and emit events of external producers",
		Long: `Datasets are what tasks update and DAGs are scheduled on: a task's outlets
record an event for each of its datasets when it succeeds, and a DAG with
schedule: {datasets: [...]} runs when they were updated
(docs/dag-format.md#datasets).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newDatasetsListCmd(), newDatasetsShowCmd(), newDatasetsEmitCmd())
	return cmd
}

// datasets fetches the list of every dataset.
func datasets(cmd *cobra.Command, sf *serverFlags) ([]scheduler.DatasetInfo, error) {
	c, err := sf.client()
	if err != nil {
		return nil, err
	}
	var list []scheduler.DatasetInfo
	_, err = c.do(cmd.Context(), "GET", apiPath("datasets"), nil, nil, &list)
	return list, err
}

func newDatasetsListCmd() *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the datasets the DAGs name or events updated",
		Long: `List every dataset a DAG names (a task's outlets, a DAG's schedule) or an
event updated, with its producing tasks, the DAGs scheduled on it, how
many events it had and when the last came.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := datasets(cmd, &sf)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), list)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "URI\tPRODUCERS\tCONSUMERS\tEVENTS\tLAST EVENT")
			for _, d := range list {
				last := "-"
				if d.LastEvent != nil {
					last = fmtTime(&d.LastEvent.Time)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", d.URI, producers(d), consumers(d), d.Events, last)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func producers(d scheduler.DatasetInfo) string {
	var out []string
	for _, p := range d.Producers {
		out = append(out, p.DAGID+"."+p.TaskID)
	}
	return dashIfEmpty(strings.Join(out, ", "))
}

func consumers(d scheduler.DatasetInfo) string {
	var out []string
	for _, c := range d.Consumers {
		out = append(out, c.DAGID)
	}
	return dashIfEmpty(strings.Join(out, ", "))
}

func newDatasetsShowCmd() *cobra.Command {
	var (
		sf     serverFlags
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show URI [--limit N] [--json]",
		Short: "Show a dataset: its producers, the DAGs waiting on it, its last events",
		Long: `Show a dataset: the tasks that update it, each DAG scheduled on it with
the events queued for its next run and the datasets it still waits on, and
its last events, newest first (--limit, default 10).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 {
				return usageError("--limit: want 1 or more")
			}
			list, err := datasets(cmd, &sf)
			if err != nil {
				return err
			}
			var info *scheduler.DatasetInfo
			for i := range list {
				if list[i].URI == args[0] {
					info = &list[i]
				}
			}
			if info == nil {
				return &exitError{code: 1, msg: fmt.Sprintf("dataset %s: no DAG names it and no event updated it", args[0])}
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			var events []store.DatasetEvent
			q := url.Values{"uri": {args[0]}, "limit": {strconv.Itoa(limit)}}
			if _, err := c.do(cmd.Context(), "GET", apiPath("datasets", "events"), q, nil, &events); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), struct {
					scheduler.DatasetInfo
					RecentEvents []store.DatasetEvent `json:"recent_events"`
				}{*info, events})
			}
			printDataset(cmd.OutOrStdout(), info, events)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().IntVar(&limit, "limit", 10, "how many of the last events to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object: the dataset and recent_events")
	return cmd
}

func printDataset(w io.Writer, d *scheduler.DatasetInfo, events []store.DatasetEvent) {
	fmt.Fprintf(w, "Dataset:    %s\n", d.URI)
	fmt.Fprintf(w, "Producers:  %s\n", producers(*d))
	fmt.Fprintf(w, "Events:     %d\n", d.Events)
	if len(d.Consumers) == 0 {
		fmt.Fprintln(w, "Consumers:  -")
	} else {
		fmt.Fprintln(w, "Consumers:")
		for _, c := range d.Consumers {
			cond := "all of its datasets"
			if c.Any {
				cond = "any of its datasets"
			}
			var state string
			switch {
			case len(c.WaitingOn) > 0 && c.Paused:
				state = "waiting on " + strings.Join(c.WaitingOn, ", ") + " (paused: its events are kept)"
			case len(c.WaitingOn) > 0:
				state = "waiting on " + strings.Join(c.WaitingOn, ", ")
			case c.Paused:
				state = "runs once unpaused (paused: its events are kept)"
			default:
				state = "ready"
			}
			fmt.Fprintf(w, "  %s  runs on %s; %d event(s) of this one queued; %s\n", c.DAGID, cond, c.QueuedEvents, state)
		}
	}
	if len(events) == 0 {
		fmt.Fprintln(w, "Last events: -")
		return
	}
	fmt.Fprintln(w, "Last events:")
	tw := newTable(w)
	fmt.Fprintln(tw, "  ID\tTIME\tSOURCE\tEXTRA")
	for _, e := range events {
		source := "external"
		if e.By != "" {
			source += " (" + e.By + ")"
		}
		if e.SourceDAGID != "" {
			source = fmt.Sprintf("%s/%s/%s#%d", e.SourceDAGID, e.SourceRunID, e.SourceTaskID, e.SourceTry)
		}
		extra := "-"
		if len(e.Extra) > 0 {
			b, _ := json.Marshal(e.Extra)
			extra = string(b)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\n", e.ID, fmtTime(&e.Time), source, extra)
	}
	tw.Flush()
}

func newDatasetsEmitCmd() *cobra.Command {
	var (
		sf     serverFlags
		extra  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "emit URI [--extra JSON]",
		Short: "Record that a dataset was updated outside Kiln",
		Long: `Record an event of an external producer: the dataset was updated, as a
task with it among its outlets would have said. The DAGs scheduled on it
run once their condition holds. --extra is a JSON object kept with the
event, which those runs see in .triggering_events. Needs the operator
role.`,
		Example: `  kiln datasets emit s3://lake/sales/2026-12-05.parquet --extra '{"rows": 120000}'`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := dag.CheckDatasetURI(args[0]); err != nil {
				return usageError("%v", err)
			}
			req := ui.DatasetEventRequest{URI: args[0]}
			if extra != "" {
				if err := json.Unmarshal([]byte(extra), &req.Extra); err != nil || req.Extra == nil {
					return usageError("--extra: want a JSON object, such as '{\"rows\": 120000}'")
				}
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			var e store.DatasetEvent
			if _, err := c.do(cmd.Context(), "POST", apiPath("datasets", "events"), nil, req, &e); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), e)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "event %d of %s recorded\n", e.ID, e.URI)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&extra, "extra", "", "a JSON object kept with the event")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the event as JSON")
	return cmd
}
