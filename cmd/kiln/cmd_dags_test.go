package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/ui"
)

func TestDagsList(t *testing.T) {
	e := newCLIEnv(t)
	stdout, stderr, code := e.run("dags", "list", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(stdout), &raw); err != nil {
		t.Fatalf("stdout is not a JSON array: %v\n%s", err, stdout)
	}
	var dags []ui.DAG
	json.Unmarshal([]byte(stdout), &dags)
	if len(dags) != 2 || dags[0].DAGID != "churn" || dags[1].DAGID != "needs" {
		t.Fatalf("dags = %+v", dags)
	}
	if !slices.Contains(jsonKeys(t, raw[0]), "next_data_interval") {
		t.Errorf("DAG has no next_data_interval: %s", raw[0])
	}

	e.k.WriteDAG("bad.yaml", "id: bad\ntsks: []\n")
	stdout, stderr, code = e.run("dags", "list")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "DAG") || !strings.Contains(lines[0], "NEXT RUN AT") || !strings.Contains(lines[0], "FOR LOGICAL DATE") {
		t.Fatalf("table =\n%s", stdout)
	}
	// churn's first run, for 2099-01-01 03:00 in Berlin, is created a day
	// later; both in UTC, the DAG's timezone beside.
	if f := strings.Fields(lines[1]); f[0] != "churn" || !strings.Contains(lines[1], "0 3 * * *  Europe/Berlin") ||
		!strings.Contains(lines[1], "2099-01-02T02:00:00Z  2099-01-01T02:00:00Z") || !strings.HasSuffix(lines[1], "ml,churn") {
		t.Errorf("churn row = %q, want id, schedule, timezone, next run at and its logical date in UTC, tags", lines[1])
	}
	if !strings.Contains(lines[2], "(manual)") {
		t.Errorf("needs row = %q, want (manual)", lines[2])
	}
	if !strings.Contains(stderr, "  bad.yaml:2:1: unknown key") {
		t.Errorf("stderr does not report the import error: %q", stderr)
	}
}

func TestDagsShow(t *testing.T) {
	e := newCLIEnv(t)
	stdout, stderr, code := e.run("dags", "show", "churn", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var d ui.DAGDetail
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if d.DAGID != "churn" || len(d.Tasks) != 3 || d.Tasks[1].Retries != 2 || len(d.Params) != 3 {
		t.Errorf("DAG = %+v", d)
	}

	stdout, _, code = e.run("dags", "show", "churn")
	for _, want := range []string{"DAG:", "churn", "Europe/Berlin", "sample_frac", `"eu"|"us"`, ">= 0, <= 1", "TASK", "extract", "all_success"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show does not mention %q:\n%s", want, stdout)
		}
	}
	if code != 0 {
		t.Errorf("exit %d", code)
	}

	_, stderr, code = e.run("dags", "show", "nope")
	wantExit(t, code, stderr, 1, `DAG "nope" not found`)
	_, stderr, code = e.run("dags", "show")
	wantExit(t, code, stderr, 2, "arg")
}

func TestDagsPause(t *testing.T) {
	e := newCLIEnv(t)
	stdout, stderr, code := e.run("dags", "pause", "churn")
	if code != 0 || strings.TrimSpace(stdout) != "DAG churn paused" {
		t.Errorf("pause: exit %d, %q %q", code, stdout, stderr)
	}
	e.k.WaitPaused("churn", true)
	stdout, _, code = e.run("dags", "unpause", "churn")
	if code != 0 || strings.TrimSpace(stdout) != "DAG churn unpaused" {
		t.Errorf("unpause: exit %d, %q", code, stdout)
	}
	e.k.WaitPaused("churn", false)
	_, stderr, code = e.run("dags", "pause", "nope")
	wantExit(t, code, stderr, 1, "nope")
}
