package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func TestTrigger(t *testing.T) {
	e := newCLIEnv(t)
	stdout, stderr, code := e.run("trigger", "churn", "--json", "--date", "2026-01-31",
		"--conf", `{"region": "us", "sample_frac": 0.2}`, "--param", "sample_frac=0.5", "--param", `features=["age","plan"]`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	run := checkRunJSON(t, []byte(stdout))
	// 2026-01-31 is read in the DAG's timezone, Europe/Berlin.
	if run.RunID != "manual__2026-01-30T23:00:00Z" || run.State != store.RunQueued || len(run.Tasks) != 3 {
		t.Errorf("run = %+v", run)
	}
	want := map[string]any{"region": "us", "sample_frac": 0.5, "features": []any{"age", "plan"}}
	if diff := cmp.Diff(want, storedParams(t, e, run.RunID)); diff != "" {
		t.Errorf("params of the run (-want +got):\n%s", diff)
	}
	if stderr != "" {
		t.Errorf("stderr = %q, want nothing", stderr)
	}

	// Without --json: a line saying what was created; the server applies
	// the defaults.
	stdout, _, code = e.run("trigger", "churn")
	if code != 0 || !strings.HasPrefix(stdout, "created run manual__") || !strings.Contains(stdout, "of DAG churn") {
		t.Fatalf("trigger: exit %d, %q", code, stdout)
	}
	runID, _, _ := strings.Cut(strings.TrimPrefix(stdout, "created run "), " ")
	want = map[string]any{"region": "eu", "sample_frac": 1.0, "features": []any{"age"}}
	if diff := cmp.Diff(want, storedParams(t, e, runID)); diff != "" {
		t.Errorf("params of a run without --param (-want +got):\n%s", diff)
	}
	// An integer param is coerced to an integer.
	if stdout, stderr, code := e.run("trigger", "needs", "--param", "n=3", "--json"); code != 0 {
		t.Errorf("needs: exit %d: %s", code, stderr)
	} else if got := checkRunJSON(t, []byte(stdout)).Params["n"]; got != float64(3) {
		t.Errorf("n = %v (%T)", got, got)
	}
}

// storedParams returns the params of a run of churn as the store holds
// them.
func storedParams(t *testing.T, e *cliEnv, runID string) map[string]any {
	t.Helper()
	r, err := e.k.Store().GetRun("churn", runID)
	if err != nil {
		t.Fatal(err)
	}
	return r.Params
}

func TestTriggerRefusesBadParams(t *testing.T) {
	e := newCLIEnv(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"not a number", []string{"--param", "sample_frac=lots"}, []string{"sample_frac", "not a number"}},
		{"above maximum", []string{"--param", "sample_frac=7"}, []string{"sample_frac"}},
		{"not in enum", []string{"--param", "region=mars"}, []string{"region"}},
		{"unknown param", []string{"--param", "colour=red"}, []string{"colour", "unknown"}},
		{"no equals sign", []string{"--param", "region"}, []string{"NAME=VALUE"}},
		{"bad JSON array", []string{"--param", "features=[age"}, []string{"features"}},
		{"conf not an object", []string{"--conf", `["eu"]`}, []string{"--conf", "JSON object"}},
		{"conf not JSON", []string{"--conf", `{region: eu}`}, []string{"--conf"}},
		{"conf unknown param", []string{"--conf", `{"colour": "red"}`}, []string{"colour"}},
		{"conf bad value", []string{"--conf", `{"sample_frac": "all"}`}, []string{"sample_frac"}},
		{"bad date", []string{"--date", "next tuesday"}, []string{"--date"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := e.run(append([]string{"trigger", "churn", "--json"}, tt.args...)...)
			wantExit(t, code, stderr, 2, tt.want...)
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
		})
	}
	if _, total, _ := e.k.Store().ListRuns(store.RunQuery{}); total != 0 {
		t.Errorf("%d run(s) created, want none", total)
	}

	// A required param left out: the server refuses it, still exit 2.
	_, stderr, code := e.run("trigger", "needs")
	wantExit(t, code, stderr, 2, "param n is required")
	_, stderr, code = e.run("trigger", "needs", "--param", "n=0")
	wantExit(t, code, stderr, 2, "n")

	_, stderr, code = e.run("trigger", "nope")
	wantExit(t, code, stderr, 1, `DAG "nope" not found`)
}

func TestTriggerWait(t *testing.T) {
	onlyEvents(t)
	e := newCLIEnv(t)

	stdout, stderr, code := e.run("trigger", "churn", "--wait", "--date", "2026-01-31T00:00:00Z")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{": queued", ": success", "extract: success", "report: success"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("progress on stderr does not mention %q:\n%s", want, stderr)
		}
	}
	if !strings.Contains(stdout, "succeeded") {
		t.Errorf("stdout = %q", stdout)
	}

	// --json --wait: only the run as it ended on stdout, nothing on stderr.
	stdout, stderr, code = e.run("trigger", "churn", "--wait", "--json", "--date", "2026-02-01T00:00:00Z")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	run := checkRunJSON(t, []byte(stdout))
	if run.State != store.RunSuccess || run.EndDate == nil || run.Tasks[2].State != store.TaskSuccess || run.Tasks[2].DurationS == nil {
		t.Errorf("run = %+v, want it as it ended", run)
	}

	// Runs of region us fail at train.
	_, stderr, code = e.run("trigger", "churn", "--wait", "--date", "2026-01-30T00:00:00Z", "--param", "region=us")
	wantExit(t, code, stderr, 1, "failed", "train (failed)", "report (upstream_failed)")
	stdout, _, code = e.run("trigger", "churn", "--wait", "--json", "--date", "2026-02-02T00:00:00Z", "--param", "region=us")
	if code != 1 || checkRunJSON(t, []byte(stdout)).State != store.RunFailed {
		t.Errorf("--json of a failed run: exit %d, %s", code, stdout)
	}
}

// TestParamSchema checks that params rebuilt from the API's description
// check values as the DAG file declares them.
func TestParamSchema(t *testing.T) {
	one, ten := 1.0, 10.0
	d := ui.DAGDetail{DAG: ui.DAG{DAGID: "p.q-r", Params: []ui.Param{
		{Name: "n", Type: "integer", Default: 2, Minimum: &one, Maximum: &ten},
		{Name: "mode", Type: "string", Default: "fast", Enum: []any{"fast", "slow", "<&>"}},
		{Name: "level", Enum: []any{1, "two", 3.5}, Default: 1},
		{Name: "cfg", Type: "object", Required: true},
		{Name: "anything", Default: map[string]any{"a": []any{1, "b"}}},
	}}}
	g, err := paramSchema(d)
	if err != nil {
		t.Fatalf("paramSchema: %v", err)
	}
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"n=3", "mode=<&>", "level=two", `cfg={"x":1}`}, ""},
		{[]string{"n=3.5", `cfg={}`}, "not an integer"},
		{[]string{"n=11", `cfg={}`}, "n"},
		{[]string{"mode=medium", `cfg={}`}, "mode"},
		{[]string{"level=2", `cfg={}`}, "level"},
		{[]string{"n=3"}, "cfg is required"},
		{[]string{`cfg=[1]`}, "cfg"},
	}
	for _, tt := range tests {
		got, err := g.ParseParamArgs(tt.args)
		if err == nil {
			_, err = g.ResolveParams(got)
		}
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%v: %v", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%v: error %v, want one mentioning %q", tt.args, err, tt.wantErr)
		}
	}
}

// TestTriggerRequestFallback checks that params the CLI cannot rebuild a
// schema for are still coerced by type and left to the server to check.
func TestTriggerRequestFallback(t *testing.T) {
	d := ui.DAGDetail{DAG: ui.DAG{DAGID: "x", Timezone: "UTC", Params: []ui.Param{
		{Name: "n", Type: "integer", Default: 1},
		{Name: "odd", Type: "a type from the future", Default: 1},
	}}}
	req, err := triggerRequest(d, "", []string{"n=4", "odd=[1]"}, `{"z": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"n": int64(4), "odd": []any{int64(1)}, "z": int64(1)}
	if diff := cmp.Diff(want, req.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	if _, err := triggerRequest(d, "", []string{"n=four"}, ""); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Errorf("n=four: %v, want a usage error", err)
	}
}
