package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newTriggerCmd() *cobra.Command {
	var (
		sf        serverFlags
		date      string
		paramArgs []string
		conf      string
		wait      bool
		asJSON    bool
		latest    bool
		noCache   bool
	)
	cmd := &cobra.Command{
		Use:   "trigger DAG",
		Short: "Start a manual run of a DAG",
		Long: `Start a manual run of a DAG. Its logical date is now unless --date says
otherwise (a date or time without an offset is read in the DAG's timezone).

Its data interval is empty, [logical date, logical date], unless --date
names a logical date of the DAG's schedule: then the run covers that
scheduled interval. --latest-interval makes it cover the latest interval of
the schedule that had ended at the logical date (now by default), as
Airflow 2 did for manual runs: "re-do yesterday" for a daily DAG.

--no-cache runs every task, whatever the task cache holds for the tasks
that use it (docs/artifacts.md#the-task-cache).

Params are checked against the DAG's schema before anything is created: an
unknown or invalid one exits 2. --conf gives params as one JSON object;
--param values override it. Arrays and objects are written as JSON.

With --wait, the command waits for the run to end, showing its progress on
stderr, and exits 1 if it failed. With --json it prints the run as JSON:
as created, or with --wait as it ended.`,
		Example: `  kiln trigger churn_training
  kiln trigger churn_training --param sample_frac=0.1 --param region=us --wait
  kiln trigger churn_training --date 2026-01-31 --conf '{"region": "us"}' --json
  kiln trigger churn_training --latest-interval`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var d ui.DAGDetail
			if _, err := c.do(ctx, "GET", apiPath("dags", args[0]), nil, nil, &d); err != nil {
				return err
			}
			req, err := triggerRequest(d, date, paramArgs, conf)
			if err != nil {
				return err
			}
			if latest && d.Schedule == nil {
				return usageError("--latest-interval: DAG %s has no schedule, so it has no latest interval", d.DAGID)
			}
			req.LatestInterval, req.NoCache = latest, noCache
			var run ui.Run
			if _, err := c.do(ctx, "POST", apiPath("dags", d.DAGID, "runs"), nil, req, &run); err != nil {
				return err
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			if !asJSON {
				fmt.Fprintf(stdout, "created run %s of DAG %s\n  logical date   %s\n  data interval  %s\n", run.RunID, run.DAGID,
					fmtTimeZoned(&run.LogicalDate, d.Timezone), fmtInterval(run.DataIntervalStart, run.DataIntervalEnd, d.Timezone))
			}
			if wait {
				progress := stderr
				if asJSON {
					progress = io.Discard
				}
				if run, err = waitForRun(ctx, c, run, progress); err != nil {
					return err
				}
			}
			if asJSON {
				if err := printJSONValue(stdout, run); err != nil {
					return err
				}
			}
			if wait {
				return runOutcome(stdout, run, asJSON)
			}
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&date, "date", "", "logical date: RFC 3339 time or YYYY-MM-DD in the DAG's timezone (default now)")
	f.StringArrayVar(&paramArgs, "param", nil, "a param as NAME=VALUE, coerced to its declared type (repeatable)")
	f.StringVar(&conf, "conf", "", "params as a JSON object; --param values override it")
	f.BoolVar(&wait, "wait", false, "wait for the run to end; exit 1 if it failed")
	f.BoolVar(&asJSON, "json", false, "print the run as JSON")
	f.BoolVar(&latest, "latest-interval", false, "cover the latest interval of the schedule that had ended at the logical date")
	f.BoolVar(&noCache, "no-cache", false, "run every task, whatever the task cache holds")
	return cmd
}

// triggerRequest builds the body of a trigger from the flags, checking the
// params against the DAG's schema first: every problem is a usage error.
func triggerRequest(d ui.DAGDetail, date string, paramArgs []string, conf string) (ui.TriggerRunRequest, error) {
	var req ui.TriggerRunRequest
	if date != "" {
		loc, err := time.LoadLocation(d.Timezone)
		if err != nil {
			loc = time.UTC
		}
		t, err := parseTime(date, loc)
		if err != nil {
			return req, usageError("--date: %v", err)
		}
		t = t.UTC()
		req.LogicalDate = &t
	}
	given := map[string]any{}
	if conf != "" {
		dec := json.NewDecoder(strings.NewReader(conf))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil || dec.More() || obj == nil {
			return req, usageError("--conf: want a JSON object such as '{\"region\": \"eu\"}'")
		}
		given = dag.NormalizeNumbers(obj).(map[string]any)
	}
	if len(paramArgs) == 0 && len(given) == 0 {
		return req, nil // the server fills in the defaults
	}
	g, err := paramSchema(d)
	if err != nil {
		// Cannot check here: coerce by type and let the server check
		// (it answers 400, which exits 2 as well).
		for _, a := range paramArgs {
			k, v, ok := strings.Cut(a, "=")
			if !ok || k == "" {
				return req, usageError("--param %q: want NAME=VALUE", a)
			}
			p := &dag.Param{Name: k}
			if i := slices.IndexFunc(d.Params, func(p ui.Param) bool { return p.Name == k }); i >= 0 {
				p.Type = d.Params[i].Type
			}
			x, err := p.Coerce(v)
			if err != nil {
				return req, usageError("--%v", err)
			}
			given[k] = x
		}
		req.Params = dag.NormalizeNumbers(given).(map[string]any)
		return req, nil
	}
	args, err := g.ParseParamArgs(paramArgs)
	if err != nil {
		return req, usageError("%v", err)
	}
	for k, v := range args {
		given[k] = v
	}
	if _, err := g.ResolveParams(given); err != nil {
		return req, usageError("%v", err)
	}
	req.Params = dag.NormalizeNumbers(given).(map[string]any)
	return req, nil
}

// paramSchema rebuilds a DAG's params from the API's description of them,
// as a DAG document of its own loaded by the dag package, so that --param
// and --conf are coerced and checked exactly as the server checks them.
func paramSchema(d ui.DAGDetail) (*dag.DAG, error) {
	// JSON is YAML; params keep their order in a hand-built mapping.
	var params bytes.Buffer
	params.WriteByte('{')
	for i, p := range d.Params {
		m := map[string]any{}
		if p.Type != "" {
			m["type"] = p.Type
		}
		if !p.Required {
			m["default"] = p.Default
		}
		if p.Enum != nil {
			m["enum"] = p.Enum
		}
		if p.Minimum != nil {
			m["minimum"] = *p.Minimum
		}
		if p.Maximum != nil {
			m["maximum"] = *p.Maximum
		}
		name, _ := json.Marshal(p.Name)
		spec, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			params.WriteByte(',')
		}
		params.Write(name)
		params.WriteByte(':')
		params.Write(spec)
	}
	params.WriteByte('}')
	id, _ := json.Marshal(d.DAGID)
	doc := fmt.Sprintf(`{"id": %s, "params": %s, "tasks": [{"id": "t", "plugin": "noop"}]}`, id, params.Bytes())
	return dag.Parse(d.DAGID+".yaml", []byte(doc), dag.Options{Plugins: dag.MapCatalog{"noop": {Name: "noop"}}})
}

// waitForRun follows a run until it ends, telling progress what changed.
// It re-reads the run when the server's event stream says it changed (and
// at the latest every eventFallback).
func waitForRun(ctx context.Context, c *apiClient, run ui.Run, progress io.Writer) (ui.Run, error) {
	tasks := map[string]store.TaskState{}
	state := store.RunState("")
	report := func(r ui.Run) {
		if r.State != state {
			fmt.Fprintf(progress, "run %s: %s\n", r.RunID, r.State)
			state = r.State
		}
		for _, t := range r.Tasks {
			if prev, ok := tasks[t.TaskID]; (ok || t.State != store.TaskNone) && prev != t.State {
				if t.TryNumber > 1 {
					fmt.Fprintf(progress, "  %s: %s (try %d)\n", t.TaskID, t.State, t.TryNumber)
				} else {
					fmt.Fprintf(progress, "  %s: %s\n", t.TaskID, t.State)
				}
			}
			tasks[t.TaskID] = t.State
		}
	}
	report(run)
	changed, stop := c.watchEvents(ctx, url.Values{"dag": {run.DAGID}, "run": {run.RunID}}, nil)
	defer stop()
	fallback := time.NewTicker(eventFallback)
	defer fallback.Stop()
	for !run.State.Finished() {
		select {
		case <-ctx.Done():
			return run, &exitError{code: 1, msg: "interrupted while waiting for run " + run.RunID}
		case <-changed:
		case <-fallback.C:
		}
		var next ui.Run
		if _, err := c.do(ctx, "GET", apiPath("dags", run.DAGID, "runs", run.RunID), nil, nil, &next); err != nil {
			return run, err
		}
		run = next
		report(run)
	}
	return run, nil
}

// runOutcome ends a command that waited for a run: nil when it succeeded,
// exit 1 naming the tasks that did not when it failed.
func runOutcome(stdout io.Writer, run ui.Run, asJSON bool) error {
	if run.State == store.RunSuccess {
		if !asJSON {
			fmt.Fprintf(stdout, "run %s succeeded\n", run.RunID)
		}
		return nil
	}
	var bad []string
	for _, t := range run.Tasks {
		if t.State == store.TaskFailed || t.State == store.TaskUpstreamFailed {
			bad = append(bad, fmt.Sprintf("%s (%s)", t.TaskID, t.State))
		}
	}
	msg := fmt.Sprintf("run %s of DAG %s %s", run.RunID, run.DAGID, run.State)
	if len(bad) > 0 {
		msg += ": " + strings.Join(bad, ", ")
	}
	return &exitError{code: 1, msg: msg}
}
