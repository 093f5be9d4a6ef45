package timetable

import (
	"testing"
	"time"
)

// TestFarFutureYearEnds: past a zone's listed transitions, Go's ZoneBounds
// can report a period ending before the instant asked about, in the last
// hours of a year; the walk must still go on, one tick a day, at the right
// wall time. It used to loop for ever at 2040-12-31 in Europe/Berlin.
func TestFarFutureYearEnds(t *testing.T) {
	for _, zone := range []string{"Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		tt, err := New("0 3 * * *", loc, time.Date(2026, 1, 1, 0, 0, 0, 0, loc), time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		for year := 2036; year <= 2046; year++ {
			from := time.Date(year, 12, 29, 0, 0, 0, 0, loc)
			done := make(chan []Interval, 1)
			go func() { done <- tt.Between(from, from.AddDate(0, 0, 6)) }()
			var ivs []Interval
			select {
			case ivs = <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: Between over the end of %d does not return", zone, year)
			}
			if len(ivs) != 6 {
				t.Errorf("%s, end of %d: %d intervals, want 6", zone, year, len(ivs))
			}
			for _, iv := range ivs {
				if s := iv.Start.In(loc); s.Hour() != 3 || s.Minute() != 0 {
					t.Errorf("%s: interval starts at %s, want 03:00", zone, s)
				}
			}
		}
	}
}
