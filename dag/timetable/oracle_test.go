package timetable

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// TestDSTAgainstBruteForce checks the ticks around every 2026 transition of
// zones with unusual rules against a brute-force reading of the package's
// rules, which steps through real time minute by minute:
//
//   - an hourly-or-more-often schedule ticks at each real minute whose wall
//     time matches;
//   - a fixed-time schedule ticks, for each matching wall time W, at the first
//     real minute whose wall clock has reached W (the first occurrence of W,
//     or the end of the gap that skips it).
func TestDSTAgainstBruteForce(t *testing.T) {
	zones := []string{
		"America/New_York", "Europe/Zurich", "Australia/Lord_Howe",
		"America/Santiago",  // turns midnight into 01:00 and 00:00 back to 23:00
		"America/Havana",    // transitions at midnight
		"Europe/Dublin",     // negative DST in tzdata
		"Africa/Casablanca", // falls back in February
		"Pacific/Chatham",   // +12:45 / +13:45
		"Antarctica/Troll",  // two-hour shift
		"America/St_Johns",  // half-hour offset
	}
	specs := []string{
		"0 * * * *", "30 * * * *", "*/15 * * * *", "45 * * * *", "* * * * *",
		"@daily", "30 2 * * *", "30 1 * * *", "0 2 * * *", "15 2 * * *", "45 2 * * *",
		"0,30 0-3 * * *", "0 */2 * * *", "59 23 * * *", "30 23 * * *", "0 1 * * *",
		"0 3 * * 0", "0 0-2,23 * * *",
	}
	for _, zone := range zones {
		loc := mustLoc(t, zone)
		for _, tr := range transitions2026(loc) {
			from, to := tr.Add(-50*time.Hour), tr.Add(50*time.Hour)
			for _, spec := range specs {
				t.Run(fmt.Sprintf("%s %s %s", zone, tr.UTC().Format("2006-01-02T15:04Z"), spec), func(t *testing.T) {
					tt, err := New(spec, loc, from, time.Time{})
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, b := range tt.Between(from, to) {
						got = append(got, fmtTime(b.Start))
					}
					want := bruteForceTicks(t, spec, loc, from, to)
					if g, w := strings.Join(got, "\n"), strings.Join(want, "\n"); g != w {
						t.Errorf("ticks differ\n got %s\nwant %s", strings.ReplaceAll(g, "\n", "\n     "), strings.ReplaceAll(w, "\n", "\n     "))
					}
				})
			}
		}
	}
}

// transitions2026 lists the instants in 2026 at which loc changes offset.
func transitions2026(loc *time.Location) []time.Time {
	var out []time.Time
	end := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	for t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).In(loc); t.Before(end); {
		_, next := t.ZoneBounds()
		if next.IsZero() || !next.Before(end) {
			break
		}
		out = append(out, next)
		t = next
	}
	return out
}

// bruteForceTicks lists the ticks of spec in [from, to], as described on
// TestDSTAgainstBruteForce. It uses robfig only to parse the fields.
func bruteForceTicks(t *testing.T, spec string, loc *time.Location, from, to time.Time) []string {
	t.Helper()
	if expr, ok := presetCron(spec); ok {
		spec = expr
	}
	parsed, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	s := parsed.(*cron.SpecSchedule)
	frequent := s.Hour&(1<<24-1) == 1<<24-1

	wallOf := func(i time.Time) time.Time {
		l := i.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC)
	}
	var out []string
	add := func(i time.Time) {
		if !i.Before(from) && !i.After(to) {
			if f := fmtTime(i.In(loc)); len(out) == 0 || out[len(out)-1] != f {
				out = append(out, f)
			}
		}
	}
	// Start a day early so that fixed-time wall times already passed before
	// from are known.
	i := from.Add(-24 * time.Hour).Truncate(time.Minute)
	reached := wallOf(i) // the latest wall time seen so far
	for ; !i.After(to); i = i.Add(time.Minute) {
		w := wallOf(i)
		if frequent {
			if wallMatches(s, w) {
				add(i)
			}
			continue
		}
		for ; reached.Before(w); reached = reached.Add(time.Minute) {
			if next := reached.Add(time.Minute); wallMatches(s, next) {
				add(i)
			}
		}
	}
	return out
}

// wallMatches reports whether the cron matches wall time w, per field.
func wallMatches(s *cron.SpecSchedule, w time.Time) bool {
	has := func(field uint64, v int) bool { return field&(1<<uint(v)) != 0 }
	domOK, dowOK := has(s.Dom, w.Day()), has(s.Dow, int(w.Weekday()))
	day := domOK || dowOK
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		day = domOK && dowOK
	}
	return day && has(s.Minute, w.Minute()) && has(s.Hour, w.Hour()) && has(s.Month, int(w.Month()))
}

// Invariants over a whole year of several schedules: intervals are
// contiguous, non-empty, in the location, and all the ways of walking them
// agree.
func TestYearInvariants(t *testing.T) {
	for _, zone := range []string{"UTC", "America/New_York", "Australia/Lord_Howe", "America/Santiago"} {
		for _, spec := range []string{"*/20 * * * *", "0 * * * *", "30 2 * * *", "0 0 * * *", "0 7,9 * * 1-5", "@every 7h", "@monthly"} {
			t.Run(zone+" "+spec, func(t *testing.T) {
				loc := mustLoc(t, zone)
				from := time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
				to := time.Date(2027, 1, 1, 0, 0, 0, 0, loc)
				tt, err := New(spec, loc, from, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				all := tt.Between(from, to)
				if len(all) == 0 {
					t.Fatal("no intervals")
				}
				cur, ok := tt.First()
				for i, b := range all {
					if !ok || cur != b {
						t.Fatalf("Next walk %d = %s, Between gave %s", i, fmtInterval(cur, ok), fmtInterval(b, true))
					}
					if !b.Start.Before(b.End) || b.Start.Location() != loc || b.End.Location() != loc {
						t.Fatalf("bad interval %s", fmtInterval(b, true))
					}
					if i > 0 && all[i-1].End != b.Start {
						t.Fatalf("gap between %s and %s", fmtInterval(all[i-1], true), fmtInterval(b, true))
					}
					if g, ok := tt.LatestEnded(b.End); !ok || g != b {
						t.Fatalf("LatestEnded(%s) = %s, want %s", fmtTime(b.End), fmtInterval(g, ok), fmtInterval(b, true))
					}
					mid := b.Start.Add(b.End.Sub(b.Start) / 2)
					if g, ok := tt.AtOrAfter(mid); !ok || g.Start != b.End {
						t.Fatalf("AtOrAfter(%s) = %s, want start %s", fmtTime(mid), fmtInterval(g, ok), fmtTime(b.End))
					}
					cur, ok = tt.Next(cur)
				}
			})
		}
	}
}
