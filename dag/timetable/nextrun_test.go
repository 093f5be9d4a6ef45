package timetable

import (
	"testing"
	"time"
)

// NextRun is what the scheduler creates next and what `kiln dags list`,
// `kiln dags next` and the UI show as the next run: at 06:30 an hourly
// DAG's next run is created at 07:00 for logical date 06:00.
func TestNextRun(t *testing.T) {
	hourly := mustNew(t, "@hourly", "UTC", "2026-01-01T00:00:00Z", "")
	zurich := mustNew(t, "0 3 * * *", "Europe/Zurich", "2026-11-01T00:00:00+01:00", "")
	tests := []struct {
		name           string
		tt             *Timetable
		last, now      string
		catchup        bool
		wantStart, end string
	}{
		{"hourly, up to date", hourly, "2026-03-01T05:00:00Z", "2026-03-01T06:30:00Z", false, "2026-03-01T06:00:00Z", "2026-03-01T07:00:00Z"},
		{"hourly, never run", hourly, "", "2026-03-01T06:30:00Z", false, "2026-03-01T05:00:00Z", "2026-03-01T06:00:00Z"},
		{"hourly, behind without catchup", hourly, "2026-02-01T05:00:00Z", "2026-03-01T06:30:00Z", false, "2026-03-01T05:00:00Z", "2026-03-01T06:00:00Z"},
		{"hourly, behind with catchup", hourly, "2026-02-01T05:00:00Z", "2026-03-01T06:30:00Z", true, "2026-02-01T06:00:00Z", "2026-02-01T07:00:00Z"},
		{"before the first interval", hourly, "", "2025-12-31T23:10:00Z", false, "2026-01-01T00:00:00Z", "2026-01-01T01:00:00Z"},
		{"daily in Zurich, after 03:00", zurich, "2026-11-30T03:00:00+01:00", "2026-12-01T06:30:00+01:00", false, "2026-12-01T03:00:00+01:00", "2026-12-02T03:00:00+01:00"},
		{"daily in Zurich, before 03:00", zurich, "2026-11-29T03:00:00+01:00", "2026-12-01T02:30:00+01:00", false, "2026-11-30T03:00:00+01:00", "2026-12-01T03:00:00+01:00"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iv, ok := tc.tt.NextRun(mustTime(t, tc.last), tc.catchup, mustTime(t, tc.now))
			if !ok {
				t.Fatal("no next run")
			}
			if got := iv.Start.Format(time.RFC3339) + " " + iv.End.Format(time.RFC3339); got != tc.wantStart+" "+tc.end {
				t.Errorf("NextRun = %s, want %s %s", got, tc.wantStart, tc.end)
			}
		})
	}
}

// Upcoming, which `kiln dags next` starts from, is the next run of a DAG
// whose schedule is up to date.
func TestUpcoming(t *testing.T) {
	tt := mustNew(t, "@hourly", "UTC", "2026-01-01T00:00:00Z", "")
	now := mustTime(t, "2026-03-01T06:30:00Z")
	up, _ := tt.Upcoming(now)
	next, _ := tt.NextRun(mustTime(t, "2026-03-01T05:00:00Z"), false, now)
	if up != next || up.Start.Format(time.RFC3339) != "2026-03-01T06:00:00Z" {
		t.Errorf("Upcoming = %v, NextRun = %v; want both to start at 06:00", up, next)
	}
}
