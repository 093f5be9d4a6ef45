package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// notifyInterrupt returns a context canceled on Ctrl-C, which ends
// following a backfill (not the backfill); tests replace it.
var notifyInterrupt = func(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt)
}

// isTerminal reports whether w is a terminal, where --wait draws a
// progress bar instead of printing lines; tests replace it.
var isTerminal = func(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exitInterrupted is the exit code after Ctrl-C, as shells report it.
const exitInterrupted = 130

// maxFailedListed bounds the failed dates listed when a backfill ends.
const maxFailedListed = 50

var reprocessNames = []string{store.ReprocessNone, store.ReprocessFailed, store.ReprocessCompleted}

func newBackfillCmd() *cobra.Command {
	var (
		sf            serverFlags
		from, to      string
		reprocess     string
		reverse       bool
		maxActiveRuns int
		paramArgs     []string
		dryRun, wait  bool
		asJSON        bool
		noCache       bool
	)
	cmd := &cobra.Command{
		Use:   "backfill DAG --from DATE --to DATE",
		Short: "Run a DAG for every logical date of its schedule in a range",
		Long: `Run a DAG for every logical date of its schedule from --from to --to, both
ends included, whether the DAG is paused or not. A date (2026-01-31) is read
in the DAG's timezone and stands for the whole day; a time without an offset
is read there too.

--reprocess says what becomes of dates that already have a run: none (the
default) skips them, failed re-runs those whose run failed, completed
re-runs those whose run ended either way. A run still queued or running is
never doubled. --reverse runs the newest date first (refused when a task has
depends_on_past). A DAG has at most one active backfill; dates whose data
interval has not ended yet, and DAGs without a schedule, are refused (exit 2).
--no-cache makes the runs run every task, whatever the task cache holds
(docs/artifacts.md#the-task-cache).

--dry-run prints every date and what would be done with it, and changes
nothing. --wait follows the backfill until it ends, with a progress bar on a
terminal and progress lines otherwise, then exits 0 if every run succeeded
and 1 otherwise, listing the failed dates. Ctrl-C stops following; the
backfill keeps running (exit 130). With --json the backfill is printed as
JSON: as created, or with --wait as it ended.`,
		Example: `  kiln backfill churn_training --from 2026-01-01 --to 2026-01-31 --dry-run
  kiln backfill churn_training --from 2026-01-01 --to 2026-01-31 --reprocess failed --wait
  kiln backfill churn_training --from 2026-01-01 --to 2026-01-07 --param region=us --max-active-runs 2 --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !slices.Contains(reprocessNames, reprocess) {
				return usageError("--reprocess %q: want none, failed or completed", reprocess)
			}
			if maxActiveRuns < 1 {
				return usageError("--max-active-runs %d: want at least 1", maxActiveRuns)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var d ui.DAGDetail
			if _, err := c.do(ctx, "GET", apiPath("dags", args[0]), nil, nil, &d); err != nil {
				return err
			}
			loc := dagLocation(d)
			req := ui.CreateBackfillRequest{Reprocess: reprocess, Reverse: reverse, MaxActiveRuns: &maxActiveRuns, DryRun: dryRun, NoCache: noCache}
			if req.From, err = rangeArg("--from", from, loc); err != nil {
				return err
			}
			if req.To, err = rangeArg("--to", to, loc); err != nil {
				return err
			}
			params, err := triggerRequest(d, "", paramArgs, "")
			if err != nil {
				return err
			}
			req.Params = params.Params
			var bf ui.Backfill
			if _, err := c.do(ctx, "POST", apiPath("dags", d.DAGID, "backfills"), nil, req, &bf); err != nil {
				return err
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			switch {
			case asJSON && (dryRun || !wait):
				return printJSONValue(stdout, bf)
			case dryRun:
				printPlan(stdout, bf)
				return nil
			case !asJSON:
				fmt.Fprintf(stdout, "created backfill %s of DAG %s: %s\n", bf.ID, bf.DAGID, planSummary(bf))
			}
			if !wait {
				return nil
			}
			progress := stderr
			if asJSON {
				progress = io.Discard
			}
			if bf, err = followBackfill(ctx, c, bf, progress); err != nil {
				return err
			}
			if asJSON {
				if err := printJSONValue(stdout, bf); err != nil {
					return err
				}
			}
			return backfillOutcome(stdout, bf, asJSON)
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "first logical date: YYYY-MM-DD (start of that day in the DAG's timezone) or a time (required)")
	f.StringVar(&to, "to", "", "last logical date, included: YYYY-MM-DD (the whole day in the DAG's timezone) or a time (required)")
	f.StringVar(&reprocess, "reprocess", store.ReprocessNone, "dates that have a run: none (skip them), failed (re-run failed runs) or completed (re-run ended runs)")
	f.BoolVar(&reverse, "reverse", false, "run the newest date first")
	f.IntVar(&maxActiveRuns, "max-active-runs", 10, "runs of the backfill active at once")
	f.StringArrayVar(&paramArgs, "param", nil, "a param as NAME=VALUE for every run, coerced to its declared type (repeatable)")
	f.BoolVar(&dryRun, "dry-run", false, "print the dates and what would be done with each; change nothing")
	f.BoolVar(&wait, "wait", false, "follow the backfill until it ends; exit 1 if any run failed")
	f.BoolVar(&asJSON, "json", false, "print the backfill as JSON")
	f.BoolVar(&noCache, "no-cache", false, "run every task of the runs, whatever the task cache holds")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

// dagLocation is the DAG's timezone, UTC if this machine does not know it.
func dagLocation(d ui.DAGDetail) *time.Location {
	loc, err := time.LoadLocation(d.Timezone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// rangeArg turns --from or --to into what the API takes: a date as it is,
// for the server to read in the DAG's timezone as a whole day; any other
// time read here in the DAG's timezone and sent in RFC 3339.
func rangeArg(flag, v string, loc *time.Location) (string, error) {
	if _, err := time.Parse(time.DateOnly, v); err == nil {
		return v, nil
	}
	t, err := parseTime(v, loc)
	if err != nil {
		return "", usageError("%s: %v", flag, err)
	}
	return t.UTC().Format(time.RFC3339Nano), nil
}

// rangeBound reads --from or --to as an instant, the way the API reads a
// backfill's range: a date in loc is the start of that day for from and its
// end (the next day's start minus 1 ns) for to.
func rangeBound(flag, v string, loc *time.Location, end bool) (time.Time, error) {
	t, err := parseTime(v, loc)
	if err != nil {
		return time.Time{}, usageError("%s: %v", flag, err)
	}
	if _, err := time.Parse(time.DateOnly, v); err == nil && end {
		y, m, d := t.Date()
		t = time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
	}
	return t, nil
}

// actionText says in words what a backfill does with a date.
func actionText(d ui.BackfillDate) string {
	action := d.Action
	if action == store.DateRerun {
		action = "re-run"
	}
	if d.Reason == "" {
		return action
	}
	return action + ": " + d.Reason
}

// printPlan prints a dry run: a line per date, then a summary.
func printPlan(w io.Writer, bf ui.Backfill) {
	for _, d := range bf.Dates {
		fmt.Fprintf(w, "%s  %s\n", fmtTime(&d.LogicalDate), actionText(d))
	}
	fmt.Fprintf(w, "dry run of a backfill of DAG %s: %s; nothing was created\n", bf.DAGID, planSummary(bf))
}

// planSummary counts a backfill's dates by action, with the first and last.
func planSummary(bf ui.Backfill) string {
	n := map[string]int{}
	for _, d := range bf.Dates {
		n[d.Action]++
	}
	s := fmt.Sprintf("%d logical date(s)", len(bf.Dates))
	if len(bf.Dates) > 0 {
		first, last := bf.Dates[0].LogicalDate, bf.Dates[len(bf.Dates)-1].LogicalDate
		if bf.Reverse {
			first, last = last, first
		}
		s += fmt.Sprintf(" from %s to %s", fmtTime(&first), fmtTime(&last))
	}
	return s + fmt.Sprintf(": %d new, %d re-run, %d skip", n[store.DateNew], n[store.DateRerun], n[store.DateSkip])
}

// backfillEnded reports whether there is nothing more to follow: the
// backfill ended and no run of it is still running (runs of a cancelled
// backfill finish).
func backfillEnded(bf ui.Backfill) bool {
	return bf.State != store.BackfillRunning && bf.Counts.Queued == 0 && bf.Counts.Running == 0
}

// followBackfill follows a backfill until it ends, showing its progress on
// w. It re-reads the backfill when the server's event stream says it
// changed (and at the latest every eventFallback). Ctrl-C stops following
// and says that the backfill goes on.
func followBackfill(ctx context.Context, c *apiClient, bf ui.Backfill, w io.Writer) (ui.Backfill, error) {
	ictx, stop := notifyInterrupt(ctx)
	defer stop()
	p := newBackfillProgress(w, bf)
	p.update(bf)
	interrupted := func() error {
		p.close()
		if ctx.Err() != nil {
			return &exitError{code: 1, msg: "interrupted while following backfill " + bf.ID}
		}
		return &exitError{code: exitInterrupted, msg: fmt.Sprintf("stopped following; backfill %s keeps running (kiln backfills show %s)", bf.ID, bf.ID)}
	}
	id := bf.ID
	changed, stopWatching := c.watchEvents(ictx, url.Values{"dag": {bf.DAGID}}, func(e ui.Event) bool {
		return e.Kind == string(store.ChangeBackfill) && e.BackfillID == id
	})
	defer stopWatching()
	fallback := time.NewTicker(eventFallback)
	defer fallback.Stop()
	for !backfillEnded(bf) {
		select {
		case <-ictx.Done():
			return bf, interrupted()
		case <-changed:
		case <-fallback.C:
		}
		var next ui.Backfill
		if _, err := c.do(ictx, "GET", apiPath("backfills", bf.ID), nil, nil, &next); err != nil {
			if ictx.Err() != nil {
				return bf, interrupted()
			}
			p.close()
			return bf, err
		}
		bf = next
		p.update(bf)
	}
	p.close()
	return bf, nil
}

// backfillProgress shows how a backfill moves on: a bar on a terminal,
// otherwise a line whenever the counts change.
type backfillProgress struct {
	w     io.Writer
	start time.Time
	bar   *progressbar.ProgressBar
	last  string // the counts last printed
}

func newBackfillProgress(w io.Writer, bf ui.Backfill) *backfillProgress {
	p := &backfillProgress{w: w, start: time.Now()}
	if runs := bf.Counts.Total - bf.Counts.Skipped; runs > 0 && isTerminal(w) {
		p.bar = progressbar.NewOptions(runs,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(barDescription(bf)),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionShowElapsedTimeOnFinish(),
		)
	}
	return p
}

func barDescription(bf ui.Backfill) string {
	return fmt.Sprintf("backfill %s: %d failed", bf.ID, bf.Counts.Failed)
}

func (p *backfillProgress) update(bf ui.Backfill) {
	c := bf.Counts
	if p.bar != nil {
		p.bar.Describe(barDescription(bf))
		p.bar.Set(c.Success + c.Failed)
		return
	}
	line := fmt.Sprintf("backfill %s: %d/%d done, %d failed, %d queued, %d running, %d pending", bf.ID,
		c.Success+c.Failed, c.Total-c.Skipped, c.Failed, c.Queued, c.Running, c.Pending)
	if c.Skipped > 0 {
		line += fmt.Sprintf(", %d skipped", c.Skipped)
	}
	if bf.State == store.BackfillCancelled {
		line += " (cancelled)"
	}
	if line != p.last {
		fmt.Fprintf(p.w, "%s, elapsed %s\n", line, time.Since(p.start).Round(time.Second))
		p.last = line
	}
}

// close leaves the bar as it is and ends its line.
func (p *backfillProgress) close() {
	if p.bar != nil {
		p.bar.Exit()
		fmt.Fprintln(p.w)
		p.bar = nil
	}
}

// backfillOutcome ends a command that followed a backfill: nil when every
// run succeeded, exit 1 listing the failed dates otherwise.
func backfillOutcome(stdout io.Writer, bf ui.Backfill, asJSON bool) error {
	c := bf.Counts
	if bf.State == store.BackfillSuccess {
		if !asJSON {
			msg := fmt.Sprintf("backfill %s succeeded: %d run(s)", bf.ID, c.Success)
			if c.Skipped > 0 {
				msg += fmt.Sprintf(", %d date(s) skipped", c.Skipped)
			}
			fmt.Fprintln(stdout, msg)
		}
		return nil
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "backfill %s of DAG %s %s: %d of %d run(s) failed", bf.ID, bf.DAGID, bf.State, c.Failed, c.Total-c.Skipped)
	if c.Pending > 0 {
		fmt.Fprintf(&msg, ", %d never ran", c.Pending)
	}
	listed := 0
	for _, d := range bf.Dates {
		if d.State == nil || *d.State != store.RunFailed {
			continue
		}
		if listed == 0 {
			msg.WriteString("; failed dates:")
		}
		if listed++; listed > maxFailedListed {
			fmt.Fprintf(&msg, "\n  ... and %d more (kiln backfills show %s)", c.Failed-maxFailedListed, bf.ID)
			break
		}
		fmt.Fprintf(&msg, "\n  %s  %s", fmtTime(&d.LogicalDate), deref(d.RunID))
	}
	return &exitError{code: 1, msg: msg.String()}
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

func newBackfillsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backfills",
		Short: "List, inspect and cancel backfills",
		Args:  cobra.NoArgs,
		RunE:  func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newBackfillsListCmd(), newBackfillsShowCmd(), newBackfillsCancelCmd())
	return cmd
}

func newBackfillsListCmd() *cobra.Command {
	var (
		sf     serverFlags
		dagID  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [--dag DAG]",
		Short: "List backfills, newest first",
		Long: `List backfills, newest first. With --json, each is printed without its
dates; kiln backfills show ID has them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if dagID != "" {
				q.Set("dag", dagID)
			}
			var bfs []ui.BackfillSummary
			if _, err := c.do(cmd.Context(), "GET", apiPath("backfills"), q, nil, &bfs); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), bfs)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tDAG\tSTATE\tFIRST DATE\tLAST DATE\tDONE\tFAILED\tSKIPPED\tREQUESTED BY\tCREATED")
			for _, bf := range bfs {
				c := bf.Counts
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%d\t%d\t%s\t%s\n", bf.ID, bf.DAGID, bf.State,
					fmtTime(bf.FirstDate), fmtTime(bf.LastDate), c.Success+c.Failed, c.Total-c.Skipped, c.Failed, c.Skipped,
					dashIfEmpty(bf.RequestedBy), fmtTime(&bf.CreatedAt))
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	cmd.Flags().StringVar(&dagID, "dag", "", "only the backfills of this DAG")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array")
	return cmd
}

func newBackfillsShowCmd() *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a backfill and what became of each of its dates",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			var bf ui.Backfill
			if _, err := c.do(cmd.Context(), "GET", apiPath("backfills", args[0]), nil, nil, &bf); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), bf)
			}
			return printBackfill(cmd.OutOrStdout(), bf)
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	return cmd
}

func printBackfill(w io.Writer, bf ui.Backfill) error {
	tw := newTable(w)
	field := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	c := bf.Counts
	field("Backfill", bf.ID)
	field("DAG", bf.DAGID)
	field("State", string(bf.State))
	field("Range", fmt.Sprintf("%s to %s, both included: %d logical date(s) from %s to %s",
		fmtTime(&bf.From), fmtTime(&bf.To), len(bf.Dates), fmtTime(bf.FirstDate), fmtTime(bf.LastDate)))
	field("Reprocess", bf.Reprocess)
	if bf.Reverse {
		field("Order", "newest first")
	} else {
		field("Order", "oldest first")
	}
	field("Max active runs", fmt.Sprint(bf.MaxActiveRuns))
	if len(bf.Params) > 0 {
		field("Params", jsonText(bf.Params))
	}
	field("Requested by", dashIfEmpty(bf.RequestedBy))
	field("Created", fmtTime(&bf.CreatedAt))
	field("Ended", fmtTime(bf.EndDate))
	field("Dates", fmt.Sprintf("%d: %d success, %d failed, %d queued, %d running, %d pending, %d skipped",
		c.Total, c.Success, c.Failed, c.Queued, c.Running, c.Pending, c.Skipped))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "LOGICAL DATE\tACTION\tRUN\tSTATE\tREASON")
	for _, d := range bf.Dates {
		action := d.Action
		if action == store.DateRerun {
			action = "re-run"
		}
		state := "-"
		if d.State != nil {
			state = string(*d.State)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", fmtTime(&d.LogicalDate), action, deref(d.RunID), state, dashIfEmpty(d.Reason))
	}
	return tw.Flush()
}

func newBackfillsCancelCmd() *cobra.Command {
	var (
		sf     serverFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a backfill: queued runs do not start, running ones finish",
		Long: `Cancel an active backfill: dates without a run never get one, runs still
queued are not started (they are marked failed), and runs already running
finish. A backfill that already ended cannot be cancelled (exit 1).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			var bf ui.Backfill
			if _, err := c.do(cmd.Context(), "DELETE", apiPath("backfills", args[0]), nil, nil, &bf); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), bf)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "cancelled backfill %s of DAG %s: %d date(s) without a run will get none, %d queued run(s) will not start, %d running run(s) will finish (kiln backfills show %s)\n",
				bf.ID, bf.DAGID, bf.Counts.Pending, bf.Counts.Queued, bf.Counts.Running, bf.ID)
			return nil
		},
	}
	sf.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the backfill as JSON")
	return cmd
}
