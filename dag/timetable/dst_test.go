package timetable

import (
	"testing"
	"time"
)

// The 2026 transitions these tests cross, from zdump -v:
//
//	Europe/Zurich        2026-03-29 02:00 CET  -> 03:00 CEST (01:00Z)
//	                     2026-10-25 03:00 CEST -> 02:00 CET  (01:00Z)
//	America/New_York     2026-03-08 02:00 EST  -> 03:00 EDT  (07:00Z)
//	                     2026-11-01 02:00 EDT  -> 01:00 EST  (06:00Z)
//	America/Los_Angeles  2026-03-08 02:00 PST  -> 03:00 PDT  (10:00Z)
//	                     2026-11-01 02:00 PDT  -> 01:00 PST  (09:00Z)
//	Australia/Lord_Howe  2026-04-05 02:00 +11  -> 01:30 +1030 (2026-04-04 15:00Z)
//	                     2026-10-04 02:00 +1030 -> 02:30 +11  (2026-10-03 15:30Z)
func TestDST(t *testing.T) {
	tests := []struct {
		name, spec, zone, from string
		ticks                  []string // consecutive ticks from the first at or after from
	}{
		// Fixed-time schedules: a wall time in the gap fires at the
		// transition, one in the fold fires at its first occurrence.
		{"Zurich spring, 02:30 in the gap", "30 2 * * *", "Europe/Zurich", "2026-03-27T00:00:00+01:00", []string{
			"2026-03-27T02:30:00+01:00",
			"2026-03-28T02:30:00+01:00",
			"2026-03-29T03:00:00+02:00", // 01:00Z, the transition
			"2026-03-30T02:30:00+02:00",
			"2026-03-31T02:30:00+02:00",
		}},
		{"Zurich fall, 02:30 in the fold", "30 2 * * *", "Europe/Zurich", "2026-10-24T00:00:00+02:00", []string{
			"2026-10-24T02:30:00+02:00",
			"2026-10-25T02:30:00+02:00", // 00:30Z; not again at 01:30Z (02:30 CET)
			"2026-10-26T02:30:00+01:00",
		}},
		{"New York spring, 02:30 in the gap", "30 2 * * *", "America/New_York", "2026-03-06T00:00:00-05:00", []string{
			"2026-03-06T02:30:00-05:00",
			"2026-03-07T02:30:00-05:00",
			"2026-03-08T03:00:00-04:00", // 07:00Z, the transition
			"2026-03-09T02:30:00-04:00",
		}},
		{"New York fall, 01:30 in the fold", "30 1 * * *", "America/New_York", "2026-10-31T00:00:00-04:00", []string{
			"2026-10-31T01:30:00-04:00",
			"2026-11-01T01:30:00-04:00", // 05:30Z; not again at 06:30Z (01:30 EST)
			"2026-11-02T01:30:00-05:00",
		}},
		{"New York fall, started inside the repeated hour", "30 1 * * *", "America/New_York", "2026-11-01T01:15:00-05:00", []string{
			"2026-11-02T01:30:00-05:00", // 01:30 already fired at 01:30 EDT, before from
			"2026-11-03T01:30:00-05:00",
		}},
		{"New York fall, 02:30 after the fold", "30 2 * * *", "America/New_York", "2026-10-31T00:00:00-04:00", []string{
			"2026-10-31T02:30:00-04:00",
			"2026-11-01T02:30:00-05:00",
			"2026-11-02T02:30:00-05:00",
		}},
		{"New York spring, gap and 03:00 fire once", "0,30 2,3 * * *", "America/New_York", "2026-03-07T03:30:00-05:00", []string{
			"2026-03-07T03:30:00-05:00",
			"2026-03-08T03:00:00-04:00", // 02:00, 02:30 and 03:00 all land here
			"2026-03-08T03:30:00-04:00",
			"2026-03-09T02:00:00-04:00",
		}},
		{"New York fall, several times in the fold", "0,30 1,2 * * *", "America/New_York", "2026-10-31T02:30:00-04:00", []string{
			"2026-10-31T02:30:00-04:00",
			"2026-11-01T01:00:00-04:00",
			"2026-11-01T01:30:00-04:00",
			"2026-11-01T02:00:00-05:00", // 1.5 h later; the repeated hour does not fire
			"2026-11-01T02:30:00-05:00",
			"2026-11-02T01:00:00-05:00",
		}},
		{"daily preset spring", "@daily", "America/New_York", "2026-03-07T00:00:00-05:00", []string{
			"2026-03-07T00:00:00-05:00",
			"2026-03-08T00:00:00-05:00",
			"2026-03-09T00:00:00-04:00",
		}},
		{"every 2 hours is fixed-time", "0 */2 * * *", "America/New_York", "2026-03-08T00:00:00-05:00", []string{
			"2026-03-08T00:00:00-05:00",
			"2026-03-08T03:00:00-04:00", // 02:00 is in the gap
			"2026-03-08T04:00:00-04:00",
		}},
		{"every 2 hours in the fold", "0 */2 * * *", "America/New_York", "2026-11-01T00:00:00-04:00", []string{
			"2026-11-01T00:00:00-04:00",
			"2026-11-01T02:00:00-05:00", // 3 real hours
			"2026-11-01T04:00:00-05:00",
		}},

		// Hourly-or-more-often schedules: every real instant that matches.
		{"Zurich spring hourly", "0 * * * *", "Europe/Zurich", "2026-03-29T00:00:00+01:00", []string{
			"2026-03-29T00:00:00+01:00",
			"2026-03-29T01:00:00+01:00",
			"2026-03-29T03:00:00+02:00", // one real hour after 01:00 CET
			"2026-03-29T04:00:00+02:00",
		}},
		{"Zurich spring half past", "30 * * * *", "Europe/Zurich", "2026-03-29T00:00:00+01:00", []string{
			"2026-03-29T00:30:00+01:00",
			"2026-03-29T01:30:00+01:00",
			"2026-03-29T03:30:00+02:00",
			"2026-03-29T04:30:00+02:00",
		}},
		{"Zurich fall hourly", "0 * * * *", "Europe/Zurich", "2026-10-25T01:00:00+02:00", []string{
			"2026-10-25T01:00:00+02:00",
			"2026-10-25T02:00:00+02:00",
			"2026-10-25T02:00:00+01:00",
			"2026-10-25T03:00:00+01:00",
		}},
		{"Zurich fall half past", "30 * * * *", "Europe/Zurich", "2026-10-25T01:00:00+02:00", []string{
			"2026-10-25T01:30:00+02:00",
			"2026-10-25T02:30:00+02:00",
			"2026-10-25T02:30:00+01:00",
			"2026-10-25T03:30:00+01:00",
		}},
		{"New York spring hourly", "0 * * * *", "America/New_York", "2026-03-08T00:00:00-05:00", []string{
			"2026-03-08T00:00:00-05:00",
			"2026-03-08T01:00:00-05:00",
			"2026-03-08T03:00:00-04:00",
			"2026-03-08T04:00:00-04:00",
		}},
		{"New York spring half past", "30 * * * *", "America/New_York", "2026-03-08T00:00:00-05:00", []string{
			"2026-03-08T00:30:00-05:00",
			"2026-03-08T01:30:00-05:00",
			"2026-03-08T03:30:00-04:00",
		}},
		{"New York fall hourly", "0 * * * *", "America/New_York", "2026-11-01T00:00:00-04:00", []string{
			"2026-11-01T00:00:00-04:00",
			"2026-11-01T01:00:00-04:00",
			"2026-11-01T01:00:00-05:00",
			"2026-11-01T02:00:00-05:00",
			"2026-11-01T03:00:00-05:00",
		}},
		{"New York fall @hourly", "@hourly", "America/New_York", "2026-11-01T00:30:00-04:00", []string{
			"2026-11-01T01:00:00-04:00",
			"2026-11-01T01:00:00-05:00",
			"2026-11-01T02:00:00-05:00",
		}},
		{"New York fall 0-23 is hourly", "0 0-23 * * *", "America/New_York", "2026-11-01T00:30:00-04:00", []string{
			"2026-11-01T01:00:00-04:00",
			"2026-11-01T01:00:00-05:00",
			"2026-11-01T02:00:00-05:00",
		}},
		{"New York fall half past", "30 * * * *", "America/New_York", "2026-11-01T00:00:00-04:00", []string{
			"2026-11-01T00:30:00-04:00",
			"2026-11-01T01:30:00-04:00",
			"2026-11-01T01:30:00-05:00",
			"2026-11-01T02:30:00-05:00",
		}},
		{"New York fall every 30 minutes", "*/30 * * * *", "America/New_York", "2026-11-01T00:30:00-04:00", []string{
			"2026-11-01T00:30:00-04:00",
			"2026-11-01T01:00:00-04:00",
			"2026-11-01T01:30:00-04:00",
			"2026-11-01T01:00:00-05:00",
			"2026-11-01T01:30:00-05:00",
			"2026-11-01T02:00:00-05:00",
		}},
		{"New York fall hourly, from inside the repeated hour", "0 * * * *", "America/New_York", "2026-11-01T01:30:00-05:00", []string{
			"2026-11-01T02:00:00-05:00",
			"2026-11-01T03:00:00-05:00",
		}},

		// Hours of the day that are not touched by the transition.
		{"Los Angeles spring 7-8", "0 7-8 * * *", "America/Los_Angeles", "2026-03-07T00:00:00-08:00", []string{
			"2026-03-07T07:00:00-08:00",
			"2026-03-07T08:00:00-08:00",
			"2026-03-08T07:00:00-07:00", // 22 h after 08:00 PST
			"2026-03-08T08:00:00-07:00",
			"2026-03-09T07:00:00-07:00",
		}},
		{"Los Angeles fall 7-8", "0 7-8 * * *", "America/Los_Angeles", "2026-10-31T00:00:00-07:00", []string{
			"2026-10-31T07:00:00-07:00",
			"2026-10-31T08:00:00-07:00",
			"2026-11-01T07:00:00-08:00", // 24 h after 08:00 PDT
			"2026-11-01T08:00:00-08:00",
		}},
		{"Los Angeles spring 7,9", "0 7,9 * * *", "America/Los_Angeles", "2026-03-07T00:00:00-08:00", []string{
			"2026-03-07T07:00:00-08:00",
			"2026-03-07T09:00:00-08:00",
			"2026-03-08T07:00:00-07:00", // 21 h
			"2026-03-08T09:00:00-07:00",
		}},
		{"Los Angeles fall 7,9", "0 7,9 * * *", "America/Los_Angeles", "2026-10-31T00:00:00-07:00", []string{
			"2026-10-31T07:00:00-07:00",
			"2026-10-31T09:00:00-07:00",
			"2026-11-01T07:00:00-08:00", // 23 h
			"2026-11-01T09:00:00-08:00",
		}},

		// Lord Howe moves its clock by 30 minutes.
		{"Lord Howe spring, 02:15 in the gap", "15 2 * * *", "Australia/Lord_Howe", "2026-10-03T00:00:00+10:30", []string{
			"2026-10-03T02:15:00+10:30",
			"2026-10-04T02:30:00+11:00", // 2026-10-03T15:30Z, the transition
			"2026-10-05T02:15:00+11:00",
		}},
		{"Lord Howe fall, 01:45 in the fold", "45 1 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00+11:00", []string{
			"2026-04-04T01:45:00+11:00",
			"2026-04-05T01:45:00+11:00", // not again at 01:45 +10:30
			"2026-04-06T01:45:00+10:30",
		}},
		{"Lord Howe fall, 02:15 after the fold", "15 2 * * *", "Australia/Lord_Howe", "2026-04-04T00:00:00+11:00", []string{
			"2026-04-04T02:15:00+11:00",
			"2026-04-05T02:15:00+10:30",
		}},
		{"Lord Howe spring hourly", "0 * * * *", "Australia/Lord_Howe", "2026-10-04T00:00:00+10:30", []string{
			"2026-10-04T00:00:00+10:30",
			"2026-10-04T01:00:00+10:30",
			"2026-10-04T03:00:00+11:00", // 1.5 h later
			"2026-10-04T04:00:00+11:00",
		}},
		{"Lord Howe spring half past", "30 * * * *", "Australia/Lord_Howe", "2026-10-04T00:00:00+10:30", []string{
			"2026-10-04T00:30:00+10:30",
			"2026-10-04T01:30:00+10:30",
			"2026-10-04T02:30:00+11:00", // exists: the gap is [02:00, 02:30)
			"2026-10-04T03:30:00+11:00",
		}},
		{"Lord Howe fall hourly", "0 * * * *", "Australia/Lord_Howe", "2026-04-05T00:00:00+11:00", []string{
			"2026-04-05T00:00:00+11:00",
			"2026-04-05T01:00:00+11:00",
			"2026-04-05T02:00:00+10:30", // 1.5 h later
			"2026-04-05T03:00:00+10:30",
		}},
		{"Lord Howe fall half past", "30 * * * *", "Australia/Lord_Howe", "2026-04-05T00:00:00+11:00", []string{
			"2026-04-05T00:30:00+11:00",
			"2026-04-05T01:30:00+11:00",
			"2026-04-05T01:30:00+10:30", // both are real instants
			"2026-04-05T02:30:00+10:30",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := mustNew(t, tc.spec, tc.zone, "2026-01-01T00:00:00Z", "")
			checkTicks(t, tt, tc.from, tc.ticks)
		})
	}
}

// Interval lengths across transitions, as a reader would check them.
func TestDSTIntervalLengths(t *testing.T) {
	tests := []struct {
		spec, zone, start string
		want              time.Duration
	}{
		{"30 2 * * *", "Europe/Zurich", "2026-03-28T02:30:00+01:00", 23*time.Hour + 30*time.Minute},
		{"30 2 * * *", "Europe/Zurich", "2026-03-29T03:00:00+02:00", 23*time.Hour + 30*time.Minute},
		{"30 2 * * *", "Europe/Zurich", "2026-10-25T02:30:00+02:00", 25 * time.Hour},
		{"30 1 * * *", "America/New_York", "2026-11-01T01:30:00-04:00", 25 * time.Hour},
		{"0 * * * *", "America/New_York", "2026-11-01T01:00:00-04:00", time.Hour},
		{"0 * * * *", "America/New_York", "2026-03-08T01:00:00-05:00", time.Hour},
		{"0 7-8 * * *", "America/Los_Angeles", "2026-03-07T08:00:00-08:00", 22 * time.Hour},
		{"0 7-8 * * *", "America/Los_Angeles", "2026-10-31T08:00:00-07:00", 24 * time.Hour},
		{"0 7,9 * * *", "America/Los_Angeles", "2026-03-07T09:00:00-08:00", 21 * time.Hour},
		{"0 7,9 * * *", "America/Los_Angeles", "2026-10-31T09:00:00-07:00", 23 * time.Hour},
		{"0 * * * *", "Australia/Lord_Howe", "2026-10-04T01:00:00+10:30", 90 * time.Minute},
		{"0 * * * *", "Australia/Lord_Howe", "2026-04-05T01:00:00+11:00", 90 * time.Minute},
		{"30 * * * *", "Australia/Lord_Howe", "2026-04-05T01:30:00+11:00", 30 * time.Minute},
		{"15 2 * * *", "Australia/Lord_Howe", "2026-10-03T02:15:00+10:30", 23*time.Hour + 45*time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.zone+" "+tc.spec+" "+tc.start, func(t *testing.T) {
			tt := mustNew(t, tc.spec, tc.zone, "2026-01-01T00:00:00Z", "")
			got, ok := tt.AtOrAfter(mustTime(t, tc.start))
			if !ok || fmtTime(got.Start) != tc.start {
				t.Fatalf("AtOrAfter(%s) = %s", tc.start, fmtInterval(got, ok))
			}
			if d := got.End.Sub(got.Start); d != tc.want {
				t.Errorf("interval %s lasts %v, want %v", fmtInterval(got, ok), d, tc.want)
			}
		})
	}
}
