package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
)

// dagsTestFlags are the flags of `kiln dags test`.
type dagsTestFlags struct {
	dags       dagsFolder
	pluginsDir string
	secrets    string
	date       string
	params     []string
	tasks      []string
	dryRun     bool
	asJSON     bool
}

func newDagsTestCmd() *cobra.Command {
	var f dagsTestFlags
	cmd := &cobra.Command{
		Use:   "test DAG",
		Short: "Run one DAG run on this machine, without a server, and report how it went",
		Long: `Run one manual run of a DAG on this machine, without a server: the real
scheduler, a worker and the stage plugins in this process, on a throw-away
data folder (removed at the end) and an embedded NATS server on a free
loopback port, so that any number of them run at once. Each task's state
is printed as it changes, and each try's log when the try ends.

DAG is a DAG id in the DAGs folder (--dags, else $KILN_DAGS, else ./dags)
or a DAG file. Tasks run in the current folder, as kiln standalone runs
them. The exit code is 0 when the run succeeds, 1 when it fails, 2 for a
bad DAG or command line.

--task runs the named tasks and every task they depend on; the others are
skipped. --dry-run runs nothing: it prints each task's with and env
rendered with the run's params and dates, upstream outputs marked unknown
and secrets masked. --json prints one JSON object (docs/cli.md#kiln-dags-test).`,
		Example: `  kiln dags test ml_pipeline --dags examples/dags
  kiln dags test ml_pipeline --param sample_frac=0.1 --date 2026-11-02
  kiln dags test ml_pipeline --task train
  kiln dags test ml_pipeline --dry-run`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			started := time.Now()
			ctx := cmd.Context()
			reg, err := discoverPlugins(ctx, cmd.Flags(), f.pluginsDir, nil, false)
			if err != nil {
				return err
			}
			g, err := findDAG(ctx, args[0], &f.dags, reg)
			if err != nil {
				return err
			}
			req, err := f.request(g)
			if err != nil {
				return err
			}
			stdout := cmd.OutOrStdout()
			if f.dryRun {
				p, err := scheduler.Preview(g, req, time.Now())
				if err != nil {
					return usageError("%s", requestProblem(err))
				}
				return printPreview(stdout, g, p, f.asJSON)
			}
			return testRun(ctx, started, g, req, reg, f, stdout)
		},
	}
	fl := cmd.Flags()
	f.dags.register(fl, "DAGs folder to look the DAG up in")
	addPluginsFlag(cmd, &f.pluginsDir)
	fl.StringVar(&f.secrets, "secrets", os.Getenv("KILN_SECRETS"), "folder of secret files, one per secret named like the file (default $KILN_SECRETS); KILN_SECRET_NAME in the environment wins")
	fl.StringVar(&f.date, "date", "", "logical date: RFC 3339 time or YYYY-MM-DD in the DAG's timezone (default now)")
	fl.StringArrayVar(&f.params, "param", nil, "a param as NAME=VALUE, coerced to its declared type (repeatable)")
	fl.StringArrayVar(&f.tasks, "task", nil, "run only this task and those it depends on (repeatable)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "run nothing: print each task's rendered with and env")
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object")
	return cmd
}

// request checks the flags against the DAG: a bad date, param or task is
// a usage error.
func (f *dagsTestFlags) request(g *dag.DAG) (scheduler.TriggerRequest, error) {
	var req scheduler.TriggerRequest
	if f.date != "" {
		t, err := parseTime(f.date, g.Location)
		if err != nil {
			return req, usageError("--date: %v", err)
		}
		t = t.UTC()
		req.LogicalDate = &t
	}
	params, err := g.ParseParamArgs(f.params)
	if err != nil {
		return req, usageError("%v", err)
	}
	if _, err := g.ResolveParams(params); err != nil {
		return req, usageError("%v", err)
	}
	req.Params = params
	if _, err := scheduler.UpstreamClosure(g, f.tasks); err != nil {
		return req, usageError("--task: %s", requestProblem(err))
	}
	req.Tasks = f.tasks
	return req, nil
}

// requestProblem is the message of a scheduler's ErrInvalid, without the
// sentinel's own words.
func requestProblem(err error) string {
	return strings.TrimPrefix(err.Error(), scheduler.ErrInvalid.Error()+": ")
}

// previewJSON is what `kiln dags test --dry-run --json` prints
// (docs/cli.md#kiln-dags-test).
type previewJSON struct {
	DAGID             string            `json:"dag_id"`
	RunID             string            `json:"run_id"`
	LogicalDate       time.Time         `json:"logical_date"`
	DataIntervalStart time.Time         `json:"data_interval_start"`
	DataIntervalEnd   time.Time         `json:"data_interval_end"`
	Params            map[string]any    `json:"params"`
	DAGVersion        string            `json:"dag_version"`
	Tasks             []taskPreviewJSON `json:"tasks"`
}

type taskPreviewJSON struct {
	TaskID    string            `json:"task_id"`
	Plugin    string            `json:"plugin"`
	DependsOn []string          `json:"depends_on"`
	With      map[string]any    `json:"with"`
	Env       map[string]string `json:"env"`
	When      string            `json:"when,omitempty"`
	// Inputs name the upstream artifact of each input, TASK.ARTIFACT.
	Inputs         map[string]string `json:"inputs,omitempty"`
	UnknownOutputs []string          `json:"unknown_outputs"`
	Error          string            `json:"error,omitempty"`
}

// printPreview prints a dry run; a task whose templates do not render
// would fail, so that exits 1.
func printPreview(w io.Writer, g *dag.DAG, p *scheduler.RunPreview, asJSON bool) error {
	out := previewJSON{
		DAGID: p.Run.DAGID, RunID: p.Run.RunID, LogicalDate: p.Run.LogicalDate,
		DataIntervalStart: p.Run.DataIntervalStart, DataIntervalEnd: p.Run.DataIntervalEnd,
		Params: p.Run.Params, DAGVersion: p.Run.DAGHash, Tasks: []taskPreviewJSON{},
	}
	var broken []string
	for _, tp := range p.Tasks {
		tj := taskPreviewJSON{
			TaskID: tp.Task.ID, Plugin: tp.Task.Plugin, DependsOn: append([]string{}, tp.Task.DependsOn...),
			With: tp.With, Env: tp.Env, UnknownOutputs: []string{},
		}
		if tp.Task.When != nil {
			tj.When = tp.Task.When.String()
		}
		for _, in := range tp.Task.Inputs {
			if tj.Inputs == nil {
				tj.Inputs = map[string]string{}
			}
			tj.Inputs[in.Name] = in.Task + "." + in.Artifact
		}
		for _, r := range tp.UnknownOutputs {
			tj.UnknownOutputs = append(tj.UnknownOutputs, outputRefText(r))
		}
		if tp.Err != nil {
			tj.Error = tp.Err.Error()
			broken = append(broken, tp.Task.ID)
		}
		out.Tasks = append(out.Tasks, tj)
	}
	if asJSON {
		if err := printJSONValue(w, out); err != nil {
			return err
		}
	} else {
		printPreviewText(w, g, out)
	}
	if len(broken) > 0 {
		return &exitError{code: 1, msg: fmt.Sprintf("dry run of DAG %s: the templates of %s do not render; the run would fail there", g.ID, strings.Join(broken, ", "))}
	}
	return nil
}

func outputRefText(r dag.OutputRef) string {
	switch {
	case r.Task == "":
		return ".outputs"
	case r.Key == "":
		return ".outputs." + r.Task
	}
	return ".outputs." + r.Task + "." + r.Key
}

func printPreviewText(w io.Writer, g *dag.DAG, p previewJSON) {
	zone := g.Location.String()
	fmt.Fprintf(w, "dry run of DAG %s: nothing runs\n  run            %s\n  logical date   %s\n  data interval  %s\n  params         %s\n",
		p.DAGID, p.RunID, fmtTimeZoned(&p.LogicalDate, zone), fmtInterval(p.DataIntervalStart, p.DataIntervalEnd, zone), keyValues(p.Params))
	for _, t := range p.Tasks {
		fmt.Fprintf(w, "\ntask %s (%s)", t.TaskID, t.Plugin)
		if len(t.DependsOn) > 0 {
			fmt.Fprintf(w, ", after %s", strings.Join(t.DependsOn, ", "))
		}
		fmt.Fprintln(w)
		if t.When != "" {
			fmt.Fprintf(w, "  when: %s (evaluated when the run gets there)\n", t.When)
		}
		if t.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", t.Error)
			continue
		}
		if len(t.Inputs) > 0 {
			fmt.Fprintln(w, "  inputs (downloaded before it starts):")
			for _, k := range sortedKeys(t.Inputs) {
				fmt.Fprintf(w, "    %s: %s, as $%s\n", k, t.Inputs[k], wire.InputEnv(k))
			}
		}
		printTree(w, "  with:", t.With, "    ")
		if len(t.Env) > 0 {
			fmt.Fprintln(w, "  env:")
			for _, k := range sortedKeys(t.Env) {
				fmt.Fprintf(w, "    %s: %s\n", k, t.Env[k])
			}
		}
		for _, r := range t.UnknownOutputs {
			task := strings.SplitN(strings.TrimPrefix(r, ".outputs."), ".", 2)[0]
			fmt.Fprintf(w, "  unknown: %s is only known once %s has run\n", r, task)
		}
	}
}

// printTree prints a rendered with: scalars after their key, maps and
// lists indented below it.
func printTree(w io.Writer, head string, v any, indent string) {
	switch v := v.(type) {
	case map[string]any:
		fmt.Fprintln(w, head)
		for _, k := range sortedKeys(v) {
			printTree(w, indent+k+":", v[k], indent+"  ")
		}
	case []any:
		fmt.Fprintln(w, head)
		for _, x := range v {
			printTree(w, indent+"-", x, indent+"  ")
		}
	default:
		s := fmt.Sprint(v)
		if !strings.Contains(s, "\n") {
			fmt.Fprintf(w, "%s %s\n", head, s)
			return
		}
		fmt.Fprintf(w, "%s |\n", head)
		for line := range strings.Lines(strings.TrimRight(s, "\n")) {
			fmt.Fprintf(w, "%s%s", indent, line)
		}
		fmt.Fprintln(w)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
