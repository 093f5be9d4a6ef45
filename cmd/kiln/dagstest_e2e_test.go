package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Black-box tests of `kiln dags test` (docs/cli.md#kiln-dags-test): the
// real binary runs real tasks in a test's folder, its working directory.

// testRunOut is the JSON `kiln dags test --json` prints.
type testRunOut struct {
	DAGID       string         `json:"dag_id"`
	RunID       string         `json:"run_id"`
	State       string         `json:"state"`
	LogicalDate string         `json:"logical_date"`
	StartDate   string         `json:"start_date"`
	Params      map[string]any `json:"params"`
	DAGVersion  string         `json:"dag_version"`
	ElapsedS    float64        `json:"elapsed_s"`
	Tasks       []struct {
		TaskID    string         `json:"task_id"`
		State     string         `json:"state"`
		MaxTries  int            `json:"max_tries"`
		StartDate string         `json:"start_date"`
		Outputs   map[string]any `json:"outputs"`
		Artifacts []struct {
			Name   string `json:"name"`
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
		} `json:"artifacts"`
		Tries []struct {
			TryNumber int     `json:"try_number"`
			State     string  `json:"state"`
			Worker    string  `json:"worker"`
			EndDate   string  `json:"end_date"`
			DurationS float64 `json:"duration_s"`
			ExitCode  *int    `json:"exit_code"`
			Log       string  `json:"log"`
		} `json:"tries"`
	} `json:"tasks"`
}

func decodeTestRun(t *testing.T, stdout string) testRunOut {
	t.Helper()
	var out testRunOut
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	return out
}

// mlFolder copies the ML example (its DAG and scripts) into a fresh
// folder, where its tasks write their data.
func mlFolder(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for _, pattern := range []string{"../../examples/dags/ml_pipeline.yaml", "../../examples/ml/*.py"} {
		paths, err := filepath.Glob(pattern)
		if err != nil || len(paths) == 0 {
			t.Fatalf("no %s: %v", pattern, err)
		}
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files[strings.TrimPrefix(filepath.ToSlash(p), "../../")] = string(b)
		}
	}
	writeFiles(t, dir, files)
	return dir
}

// ownTmp gives the binary a TMPDIR of its own, which the test checks is
// empty afterwards: the throw-away data folder is removed.
func ownTmp(t *testing.T) (dir string, env []string) {
	t.Helper()
	dir = t.TempDir()
	return dir, []string{"TMPDIR=" + dir}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("%s still holds %v: the throw-away data folder was not removed", dir, left)
	}
}

func TestDagsTestRunsTheMLExample(t *testing.T) {
	dir := mlFolder(t)
	tmp, env := ownTmp(t)
	start := time.Now()
	stdout, stderr, code := runKilnEnv(t, dir, env, "", "dags", "test", "ml_pipeline", "--dags", "examples/dags", "--date", "2026-11-02T03:00:00+01:00", "--json")
	wall := time.Since(start)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	out := decodeTestRun(t, stdout)
	if out.State != "success" || out.RunID != "manual__2026-11-02T02:00:00Z" || out.DAGVersion == "" {
		t.Errorf("run %s: %s, version %q", out.RunID, out.State, out.DAGVersion)
	}
	// The run and its tasks are the API's views: times in UTC whatever
	// the machine's timezone (TZ is not UTC here), tries with their
	// worker.
	if out.LogicalDate != "2026-11-02T02:00:00Z" || !strings.HasSuffix(out.StartDate, "Z") ||
		!strings.HasSuffix(out.Tasks[0].StartDate, "Z") || !strings.HasSuffix(out.Tasks[0].Tries[0].EndDate, "Z") {
		t.Errorf("times not in UTC: logical date %q, start %q, extract's start %q, its try's end %q",
			out.LogicalDate, out.StartDate, out.Tasks[0].StartDate, out.Tasks[0].Tries[0].EndDate)
	}
	if out.Tasks[0].MaxTries < 1 || out.Tasks[0].Tries[0].Worker == "" {
		t.Errorf("extract: max_tries %d, try 1's worker %q: not the API's task instance", out.Tasks[0].MaxTries, out.Tasks[0].Tries[0].Worker)
	}
	var ids []string
	var tasksTime float64
	for _, task := range out.Tasks {
		ids = append(ids, task.TaskID+"="+task.State)
		for _, tr := range task.Tries {
			tasksTime += tr.DurationS
		}
	}
	if got := strings.Join(ids, " "); got != "extract=success features=success train=success evaluate=success" {
		t.Errorf("tasks: %s", got)
	}
	if rows := out.Tasks[0].Outputs["rows"]; rows == nil || !strings.Contains(out.Tasks[3].Tries[0].Log, "accuracy") {
		t.Errorf("extract's outputs %v, evaluate's log %q", out.Tasks[0].Outputs, out.Tasks[3].Tries[0].Log)
	}
	// The files went from task to task as artifacts, and the working
	// directory holds none of them.
	for i, want := range []string{"raw", "table", "model", "metrics"} {
		arts := out.Tasks[i].Artifacts
		if len(arts) != 1 || arts[0].Name != want || arts[0].Size == 0 || len(arts[0].SHA256) != 64 {
			t.Errorf("%s's artifacts %+v, want %s stored", out.Tasks[i].TaskID, arts, want)
		}
	}
	if log := out.Tasks[3].Tries[0].Log; !strings.Contains(log, "kiln: input model (train.model): inputs/model/model.json") || !strings.Contains(log, out.Tasks[2].Artifacts[0].SHA256+" verified") {
		t.Errorf("evaluate's log %q does not show the model it read, verified", log)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*.csv")); len(leftovers) > 0 {
		t.Errorf("files left in the working directory: %v", leftovers)
	}
	t.Logf("kiln dags test ml_pipeline: %.2fs wall, the tries took %.2fs (the chain runs one task at a time)", wall.Seconds(), tasksTime)
	assertEmpty(t, tmp)
}

// failing: b fails after printing a marker; c is upstream_failed.
const failingDAG = `id: failing
tasks:
  - {id: a, plugin: shell, with: {command: "echo fine"}}
  - {id: b, plugin: shell, depends_on: [a], with: {command: "echo 'reading input.csv: broken-marker' >&2; exit 3"}}
  - {id: c, plugin: shell, depends_on: [b], with: {command: "echo never"}}
`

func TestDagsTestFailingRunExits1WithTheLog(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"dags/failing.yaml": failingDAG})
	stdout, stderr, code := runKilnIn(t, dir, "dags", "test", "failing")
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !regexp.MustCompile(`(?m)^\[ *[0-9.]+s\] b +failed +try 1 in .*exit.*\n    \| kiln: running: .*\n    \| reading input\.csv: broken-marker$`).MatchString(stdout) {
		t.Errorf("stdout does not show b failing with its log:\n%s", stdout)
	}
	if !regexp.MustCompile(`(?m)^\[ *[0-9.]+s\] c +upstream_failed$`).MatchString(stdout) {
		t.Errorf("stdout does not show c upstream_failed:\n%s", stdout)
	}
	if !strings.Contains(stderr, "failed: b (failed), c (upstream_failed)") {
		t.Errorf("stderr = %q, want the tasks that did not succeed named", stderr)
	}

	stdout, stderr, code = runKilnIn(t, dir, "dags", "test", "failing", "--json")
	if code != 1 {
		t.Fatalf("--json: exit %d, want 1\nstderr:\n%s", code, stderr)
	}
	out := decodeTestRun(t, stdout)
	if out.Params == nil {
		t.Errorf("--json: params null for a DAG without params, want {}:\n%s", stdout)
	}
	b := out.Tasks[1]
	if out.State != "failed" || b.State != "failed" || len(b.Tries) != 1 || b.Tries[0].ExitCode == nil || *b.Tries[0].ExitCode != 3 ||
		!strings.Contains(b.Tries[0].Log, "broken-marker") {
		t.Errorf("--json: run %s, b %+v", out.State, b)
	}
}

// closure: each task leaves a file named after it in $MARKS; a runs on a
// queue and in a pool of its own, which a test run provides.
const closureDAG = `id: closure
tasks:
  - {id: a, plugin: shell, queue: gpu, pool: gpu, with: {command: "touch $MARKS/ran-a"}}
  - {id: b, plugin: shell, depends_on: [a], with: {command: "touch $MARKS/ran-b"}}
  - {id: c, plugin: shell, depends_on: [b], with: {command: "touch $MARKS/ran-c"}}
  - {id: d, plugin: shell, depends_on: [a], with: {command: "touch $MARKS/ran-d"}}
  - {id: e, plugin: shell, with: {command: "touch $MARKS/ran-e"}}
`

func TestDagsTestTaskRunsOnlyItsUpstream(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"dags/closure.yaml": closureDAG})
	stdout, stderr, code := runKilnEnv(t, dir, []string{"MARKS=" + dir}, "", "dags", "test", "closure", "--task", "b")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for task, want := range map[string]bool{"a": true, "b": true, "c": false, "d": false, "e": false} {
		_, err := os.Stat(filepath.Join(dir, "ran-"+task))
		if ran := err == nil; ran != want {
			t.Errorf("task %s ran: %v, want %v", task, ran, want)
		}
	}
	if !strings.Contains(stdout, "  tasks          a, b (skipped, not needed by --task: c, d, e)\n") {
		t.Errorf("stdout does not say which tasks run and which are skipped:\n%s", stdout)
	}
}

// dryrun's first task would leave a file; the second reads its output.
const dryRunDAG = `id: dryrun
params:
  region: {type: string, enum: [eu, us], default: eu}
env: {TOKEN: "{{ .secrets.api_token }}"}
tasks:
  - {id: a, plugin: shell, with: {command: "touch side-effect; echo rows=5 >> $KILN_OUTPUT"}}
  - id: b
    plugin: shell
    depends_on: [a]
    with: {command: "load --region {{ .params.region }} --day {{ .ds_nodash }} --rows {{ .outputs.a.rows }}"}
`

func TestDagsTestDryRunRendersAndRunsNothing(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"dags/dryrun.yaml": dryRunDAG})
	env := []string{"KILN_SECRET_api_token=s3cr3t-value"}
	stdout, stderr, code := runKilnEnv(t, dir, env, "", "dags", "test", "dryrun", "--dry-run", "--param", "region=us", "--date", "2026-03-01")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"command: load --region us --day 20260301 --rows <unknown until a runs: .outputs.a.rows>",
		"unknown: .outputs.a.rows is only known once a has run",
		"TOKEN: ***",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, code = runKilnEnv(t, dir, env, "", "dags", "test", "dryrun", "--dry-run", "--json", "--task", "a")
	var p struct {
		RunID string `json:"run_id"`
		Tasks []struct {
			TaskID         string            `json:"task_id"`
			With           map[string]any    `json:"with"`
			Env            map[string]string `json:"env"`
			UnknownOutputs []string          `json:"unknown_outputs"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(stdout), &p); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, stdout)
	}
	if len(p.Tasks) != 1 || p.Tasks[0].TaskID != "a" || p.Tasks[0].With["command"] != "touch side-effect; echo rows=5 >> $KILN_OUTPUT" || p.Tasks[0].UnknownOutputs == nil {
		t.Errorf("--json --task a: %+v", p)
	}
	if strings.Contains(stdout, "s3cr3t") {
		t.Errorf("a secret's value was printed:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, "side-effect")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("side-effect: %v, want none: a dry run runs nothing", err)
	}
}

// meet's task starts, then waits for the other test run's task to have
// started too: both runs must be up at once. They meet in $MEET.
const meetDAG = `id: meet
params:
  me: {type: string}
  other: {type: string}
tasks:
  - id: wait
    plugin: shell
    with:
      command: |
        touch "$MEET/{{ .params.me }}.started"
        i=0
        while [ ! -f "$MEET/{{ .params.other }}.started" ]; do
          i=$((i+1)); [ $i -gt 400 ] && { echo "{{ .params.other }} never started"; exit 1; }
          sleep 0.05
        done
        echo "met {{ .params.other }}"
`

func TestDagsTestTwoAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"dags/meet.yaml": meetDAG})
	tmp, env := ownTmp(t)
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	type result struct {
		out  string
		code int
		err  error
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i, names := range [][2]string{{"one", "two"}, {"two", "one"}} {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, kilnBin, "dags", "test", "meet", "--param", "me="+names[0], "--param", "other="+names[1])
			cmd.Dir = dir
			cmd.Env = append(append(kilnEnv(), env...), "MEET="+dir)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				results[i] = result{out.String(), exit.ExitCode(), nil}
				return
			}
			results[i] = result{out.String(), 0, err}
		})
	}
	wg.Wait()
	for i, r := range results {
		if r.err != nil || r.code != 0 {
			t.Errorf("run %d: exit %d, %v\n%s", i, r.code, r.err, r.out)
		}
	}
	if !strings.Contains(results[0].out, "met two") || !strings.Contains(results[1].out, "met one") {
		t.Errorf("the runs did not overlap:\n%s\n%s", results[0].out, results[1].out)
	}
	assertEmpty(t, tmp)
}

func TestDagsTestBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"dags/closure.yaml": closureDAG,
		"dags/broken.yaml":  "id: broken\ntasks:\n  - id: a\n    plugin: shell\n    retries: many\n    with: {command: \"true\"}\n",
	})
	for _, tc := range []struct {
		name   string
		args   []string
		stderr []string
	}{
		{"unknown DAG", []string{"closur"}, []string{`no DAG "closur" in dags (did you mean "closure"?)`}},
		{"unknown task", []string{"closure", "--task", "bb"}, []string{`--task: DAG closure has no task "bb" (did you mean "b"?)`}},
		{"broken file", []string{"broken"}, []string{"dags/broken.yaml:5:14: ", `no DAG "broken"`}},
		{"bad param", []string{"closure", "--param", "nope=1"}, []string{"nope"}},
		{"bad date", []string{"closure", "--date", "yesterday"}, []string{"--date: bad time"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := runKilnIn(t, dir, append([]string{"dags", "test"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr)
				}
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "ran-a")); err == nil {
		t.Error("a task ran although the command line was bad")
	}
}
