package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/ui"
)

// hourlyDAG has run since 2026-01-01 without catchup, in Berlin time.
const hourlyDAG = `
id: hourly
schedule: "@hourly"
timezone: Europe/Berlin
start_date: 2026-01-01
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
`

// A manual run covers [logical date, logical date] unless --date names a
// logical date of the schedule (that interval) or --latest-interval is
// given (the latest ended interval) (docs/dag-format.md#manual-runs).
func TestTriggerDataIntervals(t *testing.T) {
	e := newCLIEnv(t)
	trigger := func(args ...string) ui.Run {
		t.Helper()
		stdout, stderr, code := e.run(append([]string{"trigger", "churn", "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("trigger %v: exit %d: %s", args, code, stderr)
		}
		return checkRunJSON(t, []byte(stdout))
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// churn runs at 03:00 in Berlin from 2099-01-01.
	r := trigger("--date", "2099-01-05T03:00")
	if !r.DataIntervalStart.Equal(utc("2099-01-05T02:00:00Z")) || !r.DataIntervalEnd.Equal(utc("2099-01-06T02:00:00Z")) {
		t.Errorf("--date on a tick: interval [%s, %s), want the scheduled [2099-01-05T02:00:00Z, 2099-01-06T02:00:00Z)", r.DataIntervalStart, r.DataIntervalEnd)
	}
	r = trigger("--date", "2099-01-05T04:00")
	if !r.DataIntervalStart.Equal(r.LogicalDate) || !r.DataIntervalEnd.Equal(r.LogicalDate) {
		t.Errorf("--date off the schedule: interval [%s, %s], want empty at %s", r.DataIntervalStart, r.DataIntervalEnd, r.LogicalDate)
	}
	r = trigger("--date", "2099-01-10T12:00", "--latest-interval")
	if !r.LogicalDate.Equal(utc("2099-01-10T11:00:00Z")) || !r.DataIntervalStart.Equal(utc("2099-01-09T02:00:00Z")) || !r.DataIntervalEnd.Equal(utc("2099-01-10T02:00:00Z")) {
		t.Errorf("--latest-interval at noon: logical date %s, interval [%s, %s); want 2099-01-10T11:00:00Z over [2099-01-09T02:00:00Z, 2099-01-10T02:00:00Z)", r.LogicalDate, r.DataIntervalStart, r.DataIntervalEnd)
	}

	// The text says both, in UTC with the DAG's zone beside.
	stdout, stderr, code := e.run("trigger", "churn", "--date", "2099-02-01")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"logical date   2099-01-31T23:00:00Z (2099-02-01 00:00 Europe/Berlin)",
		"data interval  [2099-01-31T23:00:00Z, 2099-01-31T23:00:00Z] (empty)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("trigger printed\n%s\nwant a line %q", stdout, want)
		}
	}
	// runs show prints the same.
	stdout, _, _ = e.run("runs", "show", "manual__2099-01-05T02:00:00Z", "--dag", "churn")
	if want := "[2099-01-05T02:00:00Z, 2099-01-06T02:00:00Z) (2099-01-05 03:00 to 2099-01-06 03:00 Europe/Berlin)"; !strings.Contains(stdout, want) {
		t.Errorf("runs show printed\n%s\nwant %q", stdout, want)
	}

	_, stderr, code = e.run("trigger", "needs", "--latest-interval")
	wantExit(t, code, stderr, 2, "no schedule")
}

// `kiln dags list` shows as the next run what `kiln dags next` shows first:
// the interval that ends next, with the time it is created.
func TestDagsListAgreesWithNext(t *testing.T) {
	e := newCLIEnv(t, hourlyDAG)
	// An hour may turn between the two commands: then ask again.
	for try := 0; ; try++ {
		var dags []ui.DAG
		stdout, stderr, code := e.run("dags", "list", "--json")
		if code != 0 {
			t.Fatalf("dags list: exit %d: %s", code, stderr)
		}
		json.Unmarshal([]byte(stdout), &dags)
		var listed *ui.Interval
		for _, d := range dags {
			if d.DAGID == "hourly" {
				listed = d.NextDataInterval
			}
		}
		stdout, stderr, code = e.run("dags", "next", "hourly", "--dags", e.k.DAGsDir(), "--n", "1", "--json")
		if code != 0 {
			t.Fatalf("dags next: exit %d: %s", code, stderr)
		}
		var next []struct {
			Start time.Time `json:"data_interval_start"`
			End   time.Time `json:"data_interval_end"`
		}
		json.Unmarshal([]byte(stdout), &next)
		if listed != nil && len(next) == 1 && listed.Start.Equal(next[0].Start) && listed.End.Equal(next[0].End) {
			if !listed.End.After(time.Now().Add(-time.Minute)) {
				t.Errorf("next run at %s has passed", listed.End)
			}
			return
		}
		if try == 1 {
			t.Fatalf("dags list next interval %+v, dags next %+v: want the same", listed, next)
		}
	}
}
