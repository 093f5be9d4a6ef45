package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/ui"
)

// addServerDagsCommands adds the dags subcommands that talk to a server:
// list, show, pause and unpause.
func addServerDagsCommands(dags *cobra.Command) {
	dags.AddCommand(newDagsListCmd(), newDagsShowCmd(), newDagsPauseCmd(true), newDagsPauseCmd(false))
}

func newDagsListCmd() *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the DAGs a server has loaded",
		Long: `List the DAGs the server has loaded, with their schedule and timezone,
whether they are paused, when their next scheduled run is created (the end
of its data interval) and the logical date it carries (the interval's
start), in UTC. DAG files that do not load are reported on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			var dags []ui.DAG
			if _, err := c.do(cmd.Context(), "GET", apiPath("dags"), nil, nil, &dags); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), dags)
			}
			if err := printDAGs(cmd.OutOrStdout(), dags); err != nil {
				return err
			}
			var ies []ui.ImportError
			if _, err := c.do(cmd.Context(), "GET", apiPath("import-errors"), nil, nil, &ies); err != nil {
				return err
			}
			reportImportErrors(cmd.ErrOrStderr(), ies)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func printDAGs(w io.Writer, dags []ui.DAG) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "DAG\tSCHEDULE\tTIMEZONE\tPAUSED\tNEXT RUN AT\tFOR LOGICAL DATE\tTAGS")
	for _, d := range dags {
		id := d.DAGID
		if d.Stale {
			id += " (stale)"
		}
		at, ld := nextRun(d)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, schedule(d), d.Timezone, yesNo(d.Paused), at, ld, dashIfEmpty(strings.Join(d.Tags, ",")))
	}
	return tw.Flush()
}

// reportImportErrors tells, on stderr, which DAG files do not load.
func reportImportErrors(w io.Writer, ies []ui.ImportError) {
	if len(ies) == 0 {
		return
	}
	fmt.Fprintf(w, "kiln: %d DAG file(s) have errors:\n", len(ies))
	for _, ie := range ies {
		for _, e := range ie.Errors {
			fmt.Fprintf(w, "  %s\n", e.Error())
		}
		if ie.Stale {
			fmt.Fprintf(w, "  (%s: its last good version still runs)\n", ie.File)
		}
	}
}

func newDagsShowCmd() *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show DAG",
		Short: "Show a DAG: schedule, params and tasks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			var d ui.DAGDetail
			if _, err := c.do(cmd.Context(), "GET", apiPath("dags", args[0]), nil, nil, &d); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), d)
			}
			return printDAG(cmd.OutOrStdout(), d)
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func printDAG(w io.Writer, d ui.DAGDetail) error {
	tw := newTable(w)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	field("DAG", d.DAGID)
	if d.Description != "" {
		field("Description", d.Description)
	}
	field("File", d.File)
	field("Schedule", schedule(d.DAG))
	field("Timezone", d.Timezone)
	field("Paused", yesNo(d.Paused))
	if d.Stale {
		field("Stale", "yes: a newer version of the file has errors; this one runs")
	}
	if iv := d.NextDataInterval; iv != nil {
		field("Next run at", fmtTimeZoned(&iv.End, d.Timezone))
		field("  for logical date", fmtTimeZoned(&iv.Start, d.Timezone))
	} else {
		field("Next run at", "-")
	}
	field("Start date", fmtTimeZoned(d.StartDate, d.Timezone))
	field("End date", fmtTimeZoned(d.EndDate, d.Timezone))
	field("Catchup", yesNo(d.Catchup))
	field("Max active runs", fmt.Sprint(d.MaxActiveRuns))
	field("Max active tasks", fmt.Sprint(d.MaxActiveTasks))
	field("Tags", dashIfEmpty(strings.Join(d.Tags, ", ")))
	if err := tw.Flush(); err != nil {
		return err
	}

	if len(d.Params) > 0 {
		fmt.Fprintln(w, "\nParams:")
		tw = newTable(w)
		fmt.Fprintln(tw, "NAME\tTYPE\tDEFAULT\tALLOWED\tDESCRIPTION")
		for _, p := range d.Params {
			def := "(required)"
			if !p.Required {
				def = jsonText(p.Default)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, dashIfEmpty(p.Type), def, allowed(p), dashIfEmpty(p.Description))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "\nTasks:")
	tw = newTable(w)
	fmt.Fprintln(tw, "TASK\tPLUGIN\tDEPENDS ON\tTRIGGER RULE\tRETRIES\tQUEUE\tPOOL")
	for _, t := range d.Tasks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.TaskID, t.Plugin, dashIfEmpty(strings.Join(t.DependsOn, ",")),
			t.TriggerRule, t.Retries, t.Queue, t.Pool)
	}
	if err := tw.Flush(); err != nil || len(d.Groups) == 0 {
		return err
	}
	fmt.Fprintln(w, "\nGroups:")
	tw = newTable(w)
	fmt.Fprintln(tw, "GROUP\tTASKS\tDESCRIPTION")
	for _, g := range d.Groups {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Name, strings.Join(g.Tasks, ","), dashIfEmpty(g.Description))
	}
	return tw.Flush()
}

func newDagsPauseCmd(pause bool) *cobra.Command {
	var sf serverFlags
	verb, short := "pause", "Pause a DAG: it gets no scheduled runs until unpaused"
	if !pause {
		verb, short = "unpause", "Unpause a DAG: its schedule runs again"
	}
	cmd := &cobra.Command{
		Use:   verb + " DAG",
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			var d ui.DAGDetail
			if _, err := c.do(cmd.Context(), "PATCH", apiPath("dags", args[0]), nil, ui.PatchDAGRequest{Paused: &pause}, &d); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "DAG %s %sd\n", d.DAGID, verb)
			return nil
		},
	}
	sf.register(cmd)
	return cmd
}

func schedule(d ui.DAG) string {
	if d.Schedule == nil {
		return "(manual)"
	}
	return *d.Schedule
}

// nextRun is when a DAG's next scheduled run is created (the end of its
// data interval) and the logical date it carries (the interval's start),
// both in UTC; "-" for none.
func nextRun(d ui.DAG) (at, logicalDate string) {
	if d.NextDataInterval == nil {
		return "-", "-"
	}
	return fmtTime(&d.NextDataInterval.End), fmtTime(&d.NextDataInterval.Start)
}

// fmtTimeZoned formats a time by the CLI's rule (docs/cli.md#dates-and-times):
// RFC 3339 in UTC, followed by the same time in the DAG's timezone when
// that is not UTC (and known here); "-" when unknown.
func fmtTimeZoned(t *time.Time, zone string) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	s := fmtTime(t)
	if loc, err := time.LoadLocation(zone); err == nil && zone != "" && zone != "UTC" {
		s += " (" + zonedText(t.In(loc)) + " " + zone + ")"
	}
	return s
}

// fmtInterval formats a data interval by the CLI's rule, half-open:
// "[2026-11-26T02:00:00Z, 2026-11-27T02:00:00Z)", followed by the same in
// the DAG's timezone when that is not UTC. An empty interval (a manual
// run's) reads "[t, t] (empty)".
func fmtInterval(start, end time.Time, zone string) string {
	closing := ")"
	if start.Equal(end) {
		closing = "] (empty)"
	}
	s := "[" + fmtTime(&start) + ", " + fmtTime(&end) + closing
	if loc, err := time.LoadLocation(zone); err == nil && zone != "" && zone != "UTC" {
		s += " (" + zonedText(start.In(loc)) + " to " + zonedText(end.In(loc)) + " " + zone + ")"
	}
	return s
}

// zonedText is a time on its zone's wall clock, to the minute or to the
// second when it has any: "2026-11-27 03:00".
func zonedText(t time.Time) string {
	if t.Second() != 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

func allowed(p ui.Param) string {
	var parts []string
	if p.Enum != nil {
		vals := make([]string, len(p.Enum))
		for i, v := range p.Enum {
			vals[i] = jsonText(v)
		}
		parts = append(parts, strings.Join(vals, "|"))
	}
	if p.Minimum != nil {
		parts = append(parts, fmt.Sprintf(">= %v", *p.Minimum))
	}
	if p.Maximum != nil {
		parts = append(parts, fmt.Sprintf("<= %v", *p.Maximum))
	}
	return dashIfEmpty(strings.Join(parts, ", "))
}

// jsonText shows a value as JSON, so that "1" and 1 differ.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
