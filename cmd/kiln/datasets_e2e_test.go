package main_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDatasetsExamples runs the example pair on datasets through the CLI
// and the API: orders_ingest updates lake://orders and orders_report
// runs on it; an event posted by `kiln datasets emit` and one posted to
// the API each start it again; `datasets list` and `show` tell who
// produces, who consumes and what came.
func TestDatasetsExamples(t *testing.T) {
	s := startStandalone(t, exampleDAGs(t, "orders_ingest.yaml", "orders_report.yaml"), t.TempDir())
	reports := func() []map[string]any {
		t.Helper()
		out, stderr, code := s.kiln(t, "runs", "list", "orders_report", "--json")
		if code != 0 {
			t.Fatalf("runs list: %s", stderr)
		}
		var runs []map[string]any
		if err := json.Unmarshal([]byte(out), &runs); err != nil {
			t.Fatal(err)
		}
		return runs
	}
	waitReports := func(n int) []map[string]any {
		t.Helper()
		deadline := time.Now().Add(runTimeout)
		for {
			runs := reports()
			done := 0
			for _, r := range runs {
				if r["state"] == "success" {
					done++
				}
			}
			if done >= n {
				return runs
			}
			if time.Now().After(deadline) {
				t.Fatalf("want %d successful runs of orders_report, have %v", n, runs)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if _, stderr, code := s.kiln(t, "trigger", "orders_ingest", "--wait"); code != 0 {
		t.Fatalf("trigger: %s", stderr)
	}
	runs := waitReports(1)
	run := runs[0]["run_id"].(string)
	if !strings.HasPrefix(run, "dataset__") || runs[0]["run_type"] != "dataset" {
		t.Errorf("orders_report's run: %v", runs[0])
	}
	logs, _, _ := s.kiln(t, "tasks", "logs", "orders_report", "--run", run, "--task", "report")
	if !strings.Contains(logs, "lake://orders updated at ") || !strings.Contains(logs, "by orders_ingest: {\"rows\":\"1") {
		t.Errorf("report's log:\n%s", logs)
	}

	if out, stderr, code := s.kiln(t, "datasets", "emit", "lake://orders", "--extra", `{"rows": 5}`); code != 0 || !strings.Contains(out, "of lake://orders recorded") {
		t.Fatalf("datasets emit: exit %d, %q %q", code, out, stderr)
	}
	waitReports(2)
	resp := postJSON(t, s.URL+"/api/v1/datasets/events", `{"uri": "lake://orders", "extra": {"rows": 6}}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST datasets/events: %d", resp.StatusCode)
	}
	waitReports(3)
	if resp := postJSON(t, s.URL+"/api/v1/datasets/events", `{"uri": "orders"}`); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a URI without a scheme: %d, want 400", resp.StatusCode)
	}
	if _, stderr, code := s.kiln(t, "datasets", "emit", "not a uri"); code != 2 || !strings.Contains(stderr, "dataset URI") {
		t.Errorf("emit of a bad URI: exit %d, %q", code, stderr)
	}

	out, _, _ := s.kiln(t, "datasets", "list")
	for _, want := range []string{"URI", "lake://orders", "orders_ingest.ingest", "orders_report"} {
		if !strings.Contains(out, want) {
			t.Errorf("datasets list lacks %q:\n%s", want, out)
		}
	}
	out, _, code := s.kiln(t, "datasets", "show", "lake://orders")
	for _, want := range []string{"Dataset:    lake://orders", "Producers:  orders_ingest.ingest", "Events:     3",
		"orders_report  runs on all of its datasets; 0 event\\(s\\) of this one queued; waiting on lake://orders",
		`external\s+{"rows":6}`, `orders_ingest/manual__\S+/ingest#1\s+{"rows":"1\d\d"}`} {
		if code != 0 || !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("datasets show lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	if _, _, code := s.kiln(t, "datasets", "show", "lake://nothing"); code != 1 {
		t.Errorf("show of an unknown dataset: exit %d, want 1", code)
	}
}

// TestDatasetEventsSurviveAKill pauses the consumer, posts two events, kills
// kiln standalone with SIGKILL and starts it again on the same data: once
// unpaused, the consumer runs once, on both events.
func TestDatasetEventsSurviveAKill(t *testing.T) {
	dags, data := exampleDAGs(t, "orders_report.yaml"), t.TempDir()
	s := startStandalone(t, dags, data)
	if _, stderr, code := s.kiln(t, "dags", "pause", "orders_report"); code != 0 {
		t.Fatalf("pause: %s", stderr)
	}
	for _, extra := range []string{`{"n": 1}`, `{"n": 2}`} {
		if _, stderr, code := s.kiln(t, "datasets", "emit", "lake://orders", "--extra", extra); code != 0 {
			t.Fatalf("emit: %s", stderr)
		}
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s.wait(t, runTimeout)

	s = startStandalone(t, dags, data)
	if out, _, _ := s.kiln(t, "runs", "list", "orders_report", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("a paused DAG has runs: %s", out)
	}
	if _, stderr, code := s.kiln(t, "dags", "unpause", "orders_report"); code != 0 {
		t.Fatalf("unpause: %s", stderr)
	}
	out, stderr, code := s.kiln(t, "runs", "list", "orders_report", "--json")
	var runs []struct {
		RunID            string `json:"run_id"`
		TriggeringEvents []struct {
			Extra map[string]any `json:"extra"`
		} `json:"triggering_events"`
	}
	if err := json.Unmarshal([]byte(out), &runs); code != 0 || err != nil {
		t.Fatalf("runs list: %v %s", err, stderr)
	}
	if len(runs) != 1 || len(runs[0].TriggeringEvents) != 2 || runs[0].TriggeringEvents[0].Extra["n"] != 1.0 || runs[0].TriggeringEvents[1].Extra["n"] != 2.0 {
		t.Errorf("after the kill and unpausing: %+v", runs)
	}
}

func postJSON(t *testing.T, url, body string) *http.Response {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
