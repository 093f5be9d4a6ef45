package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/dag/timetable"
	"github.com/kilnhq/kiln/internal/suggest"
)

func newDagsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dags",
		Short: "Validate, inspect and steer DAGs",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newDagsValidateCmd(), newDagsNextCmd(), newDagsTestCmd())
	addServerDagsCommands(cmd)
	return cmd
}

// loadOptions loads DAGs against the plugins of a catalog, usually the
// registry of a discovery.
func loadOptions(plugins dag.Catalog) dag.Options {
	return dag.Options{Plugins: plugins}
}

func newDagsValidateCmd() *cobra.Command {
	var (
		pluginsDir string
		dags       dagsFolder
	)
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check DAG files and folders; print every problem as FILE:LINE:COL: message",
		Long: `Check DAG files and folders (recursively) without a server. Every problem
is printed to stderr as FILE:LINE:COL: message; the exit code is 0 when all
DAGs are valid and 2 otherwise. Without a PATH, the DAGs folder is checked:
--dags, else $KILN_DAGS, else ./dags. Tasks
are checked against the built-in plugins and the external ones in --plugins
and on $PATH, as kiln plugins list shows them.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				dir, err := dags.folder()
				if err != nil {
					return err
				}
				args = []string{dir}
			} else if cmd.Flags().Changed("dags") {
				return usageError("give PATHs or --dags, not both")
			}
			reg, err := discoverPlugins(cmd.Context(), cmd.Flags(), pluginsDir, nil, false)
			if err != nil {
				return err
			}
			return validate(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), args, reg)
		},
	}
	dags.register(cmd.Flags(), "the DAGs folder to check when no PATH is given")
	addPluginsFlag(cmd, &pluginsDir)
	return cmd
}

func validate(ctx context.Context, stdout, stderr io.Writer, paths []string, plugins dag.Catalog) error {
	var problems int
	var roots []string
	for _, path := range paths {
		if _, err := os.Stat(path); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", path, unwrapPathError(err))
			problems++
			continue
		}
		roots = append(roots, path)
	}
	set := &dag.Set{}
	if len(roots) > 0 {
		var err error
		if set, err = dag.NewFolder(loadOptions(plugins), roots...).Load(ctx); err != nil {
			return usageError("%v", err)
		}
	}
	for _, ie := range set.ImportErrors {
		problems += report(stderr, ie.Errors)
	}
	warnings := 0
	for _, d := range set.DAGs {
		warnings += report(stderr, d.Warnings)
	}
	if problems > 0 {
		return &exitError{code: 2, msg: fmt.Sprintf("%d problem(s) found; %d valid DAG(s) in %d file(s)", problems, len(set.DAGs), set.Parsed)}
	}
	fmt.Fprintf(stdout, "ok: %d DAG(s) in %d file(s)", len(set.DAGs), set.Parsed)
	if warnings > 0 {
		fmt.Fprintf(stdout, ", %d warning(s)", warnings)
	}
	fmt.Fprintln(stdout)
	return nil
}

// unwrapPathError drops the path from an *fs.PathError, which the caller
// prints already.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func report(w io.Writer, errs dag.ErrorList) int {
	for _, e := range errs {
		fmt.Fprintln(w, e.Error())
	}
	return len(errs)
}

func newDagsNextCmd() *cobra.Command {
	var (
		from       string
		n          int
		asJSON     bool
		dags       dagsFolder
		pluginsDir string
	)
	cmd := &cobra.Command{
		Use:   "next PATH_OR_DAG",
		Short: "Show the next data intervals of a DAG's schedule",
		Long: `Show the next N data intervals of a DAG's schedule inside
start_date..end_date: when each run is created (the interval's end) and
the logical date it carries (the interval's start). Without --from they
start with the next run the scheduler creates, the one kiln dags list
shows (for a DAG whose schedule is up to date); with --from, with the first
interval whose logical date is at or after it. Times are in UTC, with the
DAG's timezone beside them. PATH_OR_DAG is a DAG file, or a DAG id looked
up in the DAGs folder (--dags, else $KILN_DAGS, else ./dags). Works
without a server.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 1 {
				return usageError("--n must be at least 1")
			}
			reg, err := discoverPlugins(cmd.Context(), cmd.Flags(), pluginsDir, nil, false)
			if err != nil {
				return err
			}
			g, err := findDAG(cmd.Context(), args[0], &dags, reg)
			if err != nil {
				return err
			}
			if g.Timetable == nil && g.Datasets != nil {
				return &exitError{code: 2, msg: fmt.Sprintf("DAG %s has no cron schedule: it runs when its datasets are updated (%s) and when triggered", g.ID, g.ScheduleText())}
			}
			if g.Timetable == nil {
				return &exitError{code: 2, msg: fmt.Sprintf("DAG %s has no schedule: it runs only when triggered", g.ID)}
			}
			first, ok := g.Timetable.Upcoming(time.Now())
			if from != "" {
				start, err := parseTime(from, g.Location)
				if err != nil {
					return usageError("--from: %v", err)
				}
				first, ok = g.Timetable.AtOrAfter(start)
			}
			ivs := nextIntervals(g.Timetable, first, ok, n)
			if asJSON {
				return printIntervalsJSON(cmd.OutOrStdout(), ivs)
			}
			return printIntervals(cmd.OutOrStdout(), ivs, g.Location)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "first logical date to show: RFC 3339 time or YYYY-MM-DD in the DAG's timezone (default: the next run's)")
	cmd.Flags().IntVar(&n, "n", 5, "how many intervals to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	dags.register(cmd.Flags(), "DAGs folder to look a DAG id up in")
	addPluginsFlag(cmd, &pluginsDir)
	return cmd
}

// findDAG loads a DAG file, or finds a DAG by id in the DAGs folder.
func findDAG(ctx context.Context, arg string, dags *dagsFolder, plugins dag.Catalog) (*dag.DAG, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		g, err := dag.LoadFile(arg, loadOptions(plugins))
		if err != nil {
			errs := err.(dag.ErrorList)
			report(os.Stderr, errs)
			return nil, &exitError{code: 2, msg: fmt.Sprintf("%s is not a valid DAG: %d problem(s)", arg, len(errs))}
		}
		return g, nil
	}
	dagsDir, err := dags.folder()
	if err != nil {
		return nil, usageError("%s is not a DAG file, and to look it up as a DAG id: %v", arg, err)
	}
	set, err := dag.NewFolder(loadOptions(plugins), dagsDir).Load(ctx)
	if err != nil {
		return nil, usageError("%s is neither a DAG file nor a DAG id: %v", arg, err)
	}
	if g := set.Get(arg); g != nil {
		return g, nil
	}
	ids := make([]string, len(set.DAGs))
	for i, g := range set.DAGs {
		ids[i] = g.ID
	}
	hint := suggest.DidYouMean(arg, ids)
	if n := len(set.ImportErrors); n > 0 {
		// The DAG may be in one of them: say what is wrong, where.
		for _, ie := range set.ImportErrors {
			report(os.Stderr, ie.Errors)
		}
		return nil, usageError("no DAG %q in %s%s (%d file(s) there have errors, above; kiln dags validate %s checks them)", arg, dagsDir, hint, n, dagsDir)
	}
	return nil, usageError("no DAG %q in %s%s", arg, dagsDir, hint)
}

// timeLayouts are the forms --from and similar flags accept; those
// without an offset are read in the DAG's timezone.
var timeLayouts = []string{time.DateOnly, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04"}

func parseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range timeLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q: want RFC 3339 (2026-01-31T03:00:00Z) or a date (2026-01-31)", s)
}

// nextIntervals returns n intervals from iv on (none when !ok).
func nextIntervals(tt *timetable.Timetable, iv timetable.Interval, ok bool, n int) []timetable.Interval {
	var out []timetable.Interval
	for ok && len(out) < n {
		out = append(out, iv)
		iv, ok = tt.Next(iv)
	}
	return out
}

type intervalJSON struct {
	LogicalDate       string `json:"logical_date"`
	DataIntervalStart string `json:"data_interval_start"`
	DataIntervalEnd   string `json:"data_interval_end"`
}

func printIntervalsJSON(w io.Writer, ivs []timetable.Interval) error {
	out := make([]intervalJSON, len(ivs))
	for i, iv := range ivs {
		out[i] = intervalJSON{
			LogicalDate:       iv.Start.Format(time.RFC3339),
			DataIntervalStart: iv.Start.Format(time.RFC3339),
			DataIntervalEnd:   iv.End.Format(time.RFC3339),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// printIntervals prints intervals by the CLI's rule: UTC, with the DAG's
// timezone beside it when that is not UTC.
func printIntervals(w io.Writer, ivs []timetable.Interval, loc *time.Location) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	zoned := loc != nil && loc.String() != "UTC"
	header := "RUN CREATED AT\tLOGICAL DATE\tDATA INTERVAL"
	if zoned {
		header += "\tIN " + loc.String()
	}
	fmt.Fprintln(tw, header)
	for _, iv := range ivs {
		start, end := iv.Start.UTC(), iv.End.UTC()
		fmt.Fprintf(tw, "%s\t%s\t[%s, %s)", fmtTime(&end), fmtTime(&start), fmtTime(&start), fmtTime(&end))
		if zoned {
			fmt.Fprintf(tw, "\t%s to %s", zonedText(iv.Start.In(loc)), zonedText(iv.End.In(loc)))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}
