package timetable

import "time"

// Cron ticks are found by walking the zone periods of the location: spans of
// real time with one UTC offset, as time.Time.ZoneBounds reports them. Inside
// a period, wall time and real time move together, so the next matching wall
// time (robfig's Next on a naive wall clock, where no DST exists) converts to
// an instant by subtracting the offset. Only at the end of a period, a
// transition, must the DST rules of the package comment be applied. This
// never relies on time.Date's choice inside gaps and folds, which Go leaves
// unspecified.

// after returns the first tick of the cron strictly after instant x, in loc.
func (s schedule) after(x time.Time, loc *time.Location) (time.Time, bool) {
	cur := x.In(loc)
	from := s.searchFrom(cur) // the next tick's wall time is after from
	for {
		w, ok := s.nextWall(from)
		if !ok {
			return time.Time{}, false
		}
		_, off := cur.Zone()
		end := zoneEnd(cur)
		tick := w.Add(-time.Duration(off) * time.Second).In(loc)
		if end.IsZero() || tick.Before(end) {
			return tick, true
		}

		// No match before the period ends at a transition. Wall times up to
		// wEnd have been searched; the clock now reads wNew.
		_, newOff := end.Zone()
		wEnd, wNew := naive(end, off), naive(end, newOff)
		switch {
		case newOff > off:
			// Spring forward: wall times in [wEnd, wNew) do not exist. A
			// fixed-time schedule runs them at the transition instant;
			// an hourly one skips them.
			if !s.frequent && w.Before(wNew) {
				return end, true
			}
			from = wNew.Add(-time.Nanosecond)
		case newOff < off && !s.frequent:
			// Fall back: wall times in [wNew, wEnd) repeat, and a fixed-time
			// schedule has fired them already.
			from = wEnd.Add(-time.Nanosecond)
		default:
			// Fall back for an hourly schedule, which fires the repeated
			// wall times again; or a transition that keeps the offset.
			from = wNew.Add(-time.Nanosecond)
		}
		cur = end
	}
}

// zoneEnd returns when the zone period holding cur ends: ZoneBounds' end,
// or zero for a period that never ends. In years past a zone's listed
// transitions, where Go computes them from the zone's rule, ZoneBounds can
// report an end at or before cur in the last hours of a year (seen with
// Europe/Berlin on 2040-12-31, Go 1.26); the period then really goes on
// into the next year, so the end is asked for again from a little later.
func zoneEnd(cur time.Time) time.Time {
	_, end := cur.ZoneBounds()
	for probe, tries := cur, 0; !end.IsZero() && !end.After(cur); tries++ {
		if tries == 48 {
			return time.Time{} // no sane end within two days: treat as none
		}
		probe = probe.Add(time.Hour)
		_, end = probe.ZoneBounds()
	}
	return end
}

// searchFrom returns the wall time after which the first tick after cur is
// to be searched: cur's own wall time, unless a fixed-time schedule has
// already fired later wall times. That happens just after a fall-back
// transition: the wall times up to where the clock was turned back fired at
// their first occurrence, before it.
func (s schedule) searchFrom(cur time.Time) time.Time {
	_, off := cur.Zone()
	from := naive(cur, off)
	if s.frequent {
		return from
	}
	if start, _ := cur.ZoneBounds(); !start.IsZero() {
		_, prevOff := start.Add(-time.Nanosecond).Zone()
		if reached := naive(start, prevOff); prevOff > off && reached.After(from) {
			return reached.Add(-time.Nanosecond)
		}
	}
	return from
}

// naive returns the wall-clock time of instant t at UTC offset off (seconds),
// as a time.Time in UTC: the form robfig runs on without seeing any DST.
func naive(t time.Time, off int) time.Time {
	return t.UTC().Add(time.Duration(off) * time.Second)
}

// maxWallRetries bounds the search for the next matching wall time: robfig
// looks about five years ahead, and any cron that fires at all (see fires)
// fires within the 400-year Gregorian cycle.
const maxWallRetries = 100

// nextWall returns the first wall time after w (naive, UTC) that the cron
// matches.
func (s schedule) nextWall(w time.Time) (time.Time, bool) {
	for range maxWallRetries {
		if next := s.cron.Next(w); !next.IsZero() {
			return next, true
		}
		// robfig gave up after searching every time before the year
		// w.Year()+6; resume a little before that, at a whole second.
		w = time.Date(w.Year()+5, time.January, 1, 0, 0, 0, 0, time.UTC).Add(-time.Second)
	}
	return time.Time{}, false
}
