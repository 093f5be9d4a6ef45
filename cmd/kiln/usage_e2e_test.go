package main_test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestArgumentErrors checks what a mistyped command line gets: the
// command's usage line, and the closest sub-command or DAG id.
func TestArgumentErrors(t *testing.T) {
	s := startStandalone(t, "../../examples/dags", t.TempDir(), "--workers", "0")
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"dags", "lsit"}, []string{`unknown command "lsit" for "kiln dags" (did you mean "list"?)`, "Usage: kiln dags COMMAND [flags]"}},
		{[]string{"runs", "shwo", "x"}, []string{`(did you mean "show"?)`, "Usage: kiln runs COMMAND"}},
		{[]string{"runs", "show"}, []string{"accepts 1 arg(s), received 0", "Usage: kiln runs show RUN_ID [--dag DAG] [flags]", "kiln runs show -h"}},
		{[]string{"trigger", "--bogus", "hello"}, []string{"unknown flag: --bogus", "Usage: kiln trigger DAG"}},
		{[]string{"dags", "next", "ml_pipelin", "--dags", "../../examples/dags"}, []string{`no DAG "ml_pipelin" in ../../examples/dags (did you mean "ml_pipeline"?)`, "Usage: kiln dags next PATH_OR_DAG"}},
	} {
		_, stderr, code := runKiln(t, tt.args...)
		wantStderr(t, code, stderr, 2, tt.want...)
	}
	// Unknown DAG ids: the server's answer names the closest.
	for _, args := range [][]string{
		{"trigger", "ml_pipelin"},
		{"dags", "show", "ml_pipelin"},
		{"dags", "pause", "ml_pipelin"},
		{"runs", "list", "ml_pipelin"},
		{"backfill", "ml_pipelin", "--from", "2026-01-01", "--to", "2026-01-02"},
		{"tasks", "clear", "ml_pipelin", "--run", "x"},
	} {
		_, stderr, code := s.kiln(t, args...)
		wantStderr(t, code, stderr, 1, `DAG "ml_pipelin" not found (did you mean "ml_pipeline"?)`)
	}

	// runs show finds a run by its id alone while only one DAG has it.
	trigger := func(dagID string) string {
		t.Helper()
		stdout, stderr, code := s.kiln(t, "trigger", dagID, "--date", "2026-01-01T00:00:00Z", "--json")
		var run struct {
			RunID string `json:"run_id"`
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &run) != nil {
			t.Fatalf("trigger %s: exit %d, %q %q", dagID, code, stdout, stderr)
		}
		return run.RunID
	}
	runID := trigger("hello")
	stdout, stderr, code := s.kiln(t, "runs", "show", runID, "--json")
	if code != 0 || !strings.Contains(stdout, `"dag_id": "hello"`) {
		t.Errorf("runs show %s: exit %d, %q %q", runID, code, stdout, stderr)
	}
	if trigger("ml_pipeline") != runID {
		t.Fatal("the two manual runs at one date have different ids")
	}
	_, stderr, code = s.kiln(t, "runs", "show", runID)
	wantStderr(t, code, stderr, 1, "is in more than one DAG (hello, ml_pipeline): name the DAG")
	if stdout, stderr, code := s.kiln(t, "runs", "show", runID, "--dag", "ml_pipeline", "--json"); code != 0 || !strings.Contains(stdout, `"dag_id": "ml_pipeline"`) {
		t.Errorf("runs show --dag ml_pipeline: exit %d, %q %q", code, stdout, stderr)
	}
	_, stderr, code = s.kiln(t, "runs", "show", "manual__nope")
	wantStderr(t, code, stderr, 1, `run "manual__nope" not found in any DAG`)
}
