package timetable

import (
	"testing"
	"time"
)

// LatestEnded on a minutely schedule with six years of history: the
// expanding window must find the answer in a few steps.
func BenchmarkLatestEndedMinutely(b *testing.B) {
	tt := mustNew(b, "* * * * *", "Europe/Zurich", "2020-01-01T00:00:00+01:00", "")
	now := mustTime(b, "2026-06-15T12:34:56+02:00")
	for b.Loop() {
		if _, ok := tt.LatestEnded(now); !ok {
			b.Fatal("no interval")
		}
	}
}

// LatestEnded on a yearly schedule: the window doubles up to a year.
func BenchmarkLatestEndedYearly(b *testing.B) {
	tt := mustNew(b, "@yearly", "America/New_York", "2000-01-01T00:00:00-05:00", "")
	now := mustTime(b, "2026-06-15T12:34:56-04:00")
	for b.Loop() {
		if _, ok := tt.LatestEnded(now); !ok {
			b.Fatal("no interval")
		}
	}
}

// AtOrAfter far from start_date on a minutely schedule.
func BenchmarkAtOrAfterMinutely(b *testing.B) {
	tt := mustNew(b, "* * * * *", "Europe/Zurich", "2020-01-01T00:00:00+01:00", "")
	from := mustTime(b, "2026-06-15T12:34:56+02:00")
	for b.Loop() {
		if _, ok := tt.AtOrAfter(from); !ok {
			b.Fatal("no interval")
		}
	}
}

// Between over a week of a 5-minute schedule in a DST zone (2016 intervals).
func BenchmarkBetween(b *testing.B) {
	tt := mustNew(b, "*/5 * * * *", "America/New_York", "2020-01-01T00:00:00-05:00", "")
	from := mustTime(b, "2026-03-05T00:00:00-05:00")
	to := from.Add(7 * 24 * time.Hour)
	for b.Loop() {
		if len(tt.Between(from, to)) == 0 {
			b.Fatal("no intervals")
		}
	}
}
