// Package timetable computes the schedule of a Kiln DAG: its ticks and the
// data intervals between them, with Apache Airflow's semantics, in the DAG's
// time zone.
//
// A schedule is a 5-field cron expression, a preset (@daily, @hourly, ...) or
// "@every DURATION". Every scheduled run covers the data interval
// [tick_i, tick_i+1) between two consecutive ticks; its logical date is
// tick_i, the interval's start, and the run is created once the interval has
// ended (End <= now), never before. The first interval starts at the first
// tick at or after start_date. No interval starts after end_date, which is
// inclusive; the last interval may end after it.
//
// Cron is read on the wall clock of the DAG's time zone, and daylight saving
// never loses or doubles a run. A fixed-time schedule, whose hour field does
// not match all 24 hours ("30 2 * * *", "0 7-8 * * *", @daily, @weekly, ...):
//
//   - fires a wall time that a spring-forward transition skips at the
//     transition instant: America/New_York 02:30 on 2026-03-08 fires at
//     03:00 EDT;
//   - fires a wall time that a fall-back transition repeats once, at its first
//     occurrence: New York 01:30 on 2026-11-01 fires at 01:30 EDT only;
//   - fires once when two wall times land on the same instant ("30 2" and
//     "0 3" on a spring-forward day).
//
// An hourly-or-more-often schedule, whose hour field matches every hour
// ("0 * * * *", "*/15 * * * *", @hourly), fires at every real instant whose
// wall time matches instead, so its intervals follow the real clock: on a
// fall-back day 01:00 EDT and 01:00 EST both fire, and a skipped wall time
// does not fire at all. With Australia/Lord_Howe's 30-minute shift,
// "0 * * * *" fires at 01:00 +10:30 then 03:00 +11:00 on the spring-forward
// day (02:00 does not exist), and at 01:00 +11:00 then 02:00 +10:30 on the
// fall-back day: both intervals last 90 minutes. "30 * * * *" fires at
// 01:30 +11:00 and again at 01:30 +10:30 on the fall-back day, since both are
// real instants.
//
// "@every D" ticks at start_date + k·D in absolute time; daylight saving does
// not move it.
//
// The package is pure: no I/O and no mutable state, so a Timetable is safe
// for concurrent use.
package timetable

import (
	"errors"
	"time"
)

// MaxBetween caps the number of intervals Between returns, so that a huge
// backfill range of a minutely schedule cannot exhaust memory. Callers that
// need more continue with Next from the last interval returned.
const MaxBetween = 100_000

// Interval is one data interval; its logical date is Start.
type Interval struct{ Start, End time.Time }

// Timetable is an immutable, parsed schedule anchored at a start date. Safe
// for concurrent use.
type Timetable struct {
	spec  string
	loc   *time.Location
	sched schedule
	start time.Time
	end   time.Time // zero: no end

	// first is the first tick at or after start; every later tick of the
	// timetable is a tick of the schedule after it.
	first time.Time
}

// New parses spec (cron, preset or @every) read in loc. start is required;
// end may be zero (no end). A nil loc means UTC.
// Errors are plain messages suitable to show after "schedule: " (no position;
// the caller adds file:line:col).
func New(spec string, loc *time.Location, start, end time.Time) (*Timetable, error) {
	s, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	if start.IsZero() {
		return nil, errors.New("start_date is required with a schedule")
	}
	if loc == nil {
		loc = time.UTC
	}
	t := &Timetable{
		spec:  trimSpec(spec),
		loc:   loc,
		sched: s,
		// In strips any monotonic clock reading, which must not take part
		// in comparisons with computed instants.
		start: start.In(loc),
	}
	if !end.IsZero() {
		t.end = end.In(loc)
	}
	if s.every > 0 {
		t.first = t.start
	} else {
		first, ok := s.after(t.start.Add(-time.Nanosecond), loc)
		if !ok {
			// parseSpec rejects schedules that never fire, so this is only
			// reachable at the end of representable time.
			return nil, errors.New("never fires after start_date")
		}
		t.first = first
	}
	return t, nil
}

// ValidateSpec parses spec alone (no start date) so a loader can report a
// bad cron even when start_date is missing.
func ValidateSpec(spec string) error {
	_, err := parseSpec(spec)
	return err
}

// Spec returns the schedule as given, without surrounding blanks.
func (t *Timetable) Spec() string { return t.spec }

// Location returns the time zone the schedule is read in.
func (t *Timetable) Location() *time.Location { return t.loc }

// First returns the first interval, or false if there is none (end_date
// before the first tick).
func (t *Timetable) First() (Interval, bool) {
	return t.intervalAt(t.first)
}

// Next returns the interval after prev, whose logical date is the first tick
// at or after prev.End (prev.End itself for an interval of this timetable),
// or false past end_date. A zero prev gives the first interval.
func (t *Timetable) Next(prev Interval) (Interval, bool) {
	return t.AtOrAfter(prev.End)
}

// AtOrAfter returns the first interval whose logical date is at or after
// from (and at or after start_date), or false past end_date.
func (t *Timetable) AtOrAfter(from time.Time) (Interval, bool) {
	s, ok := t.tickAtOrAfter(from)
	if !ok {
		return Interval{}, false
	}
	return t.intervalAt(s)
}

// LatestEnded returns the most recent interval that has ended at now
// (End <= now), or false if none has. This is the one run a DAG without
// catchup gets.
func (t *Timetable) LatestEnded(now time.Time) (Interval, bool) {
	now = now.In(t.loc)
	endTick, ok := t.tickAtOrBefore(now)
	if !ok {
		return Interval{}, false
	}
	s, ok := t.tickAtOrBefore(endTick.Add(-time.Nanosecond))
	if !ok {
		return Interval{}, false // now is inside the first interval
	}
	if !t.end.IsZero() && s.After(t.end) {
		// Intervals that start after end_date do not exist; the latest one
		// starts at the last tick at or before end_date and, starting
		// earlier than s, ended before now too.
		if s, ok = t.tickAtOrBefore(t.end); !ok {
			return Interval{}, false
		}
	}
	return t.intervalAt(s)
}

// Upcoming returns the first interval that has not ended at now
// (End > now): the one whose scheduled run is created next, at its End,
// once every earlier interval has its run. It is the interval now falls
// in, or the first one when now is before it; false past end_date.
func (t *Timetable) Upcoming(now time.Time) (Interval, bool) {
	s, ok := t.tickAtOrBefore(now)
	if !ok {
		return t.First()
	}
	return t.intervalAt(s)
}

// NextRun returns the interval whose scheduled run the scheduler creates
// next, given the logical date of the latest scheduled run (zero: none
// yet) at now. With catchup it is the interval after that one, which may
// have ended already (its run is due). Without, intervals that ended
// while no run was made for them are skipped but for the latest: that
// one when it is after last (due now), else Upcoming(now). Its End is
// when the run is created, at the earliest; Start its logical date.
func (t *Timetable) NextRun(last time.Time, catchup bool, now time.Time) (Interval, bool) {
	iv, ok := t.First()
	if !last.IsZero() {
		iv, ok = t.AtOrAfter(last.Add(time.Nanosecond))
	}
	if catchup || !ok || iv.End.After(now) {
		return iv, ok
	}
	if le, ok := t.LatestEnded(now); ok && (last.IsZero() || le.Start.After(last)) {
		return le, true
	}
	return t.Upcoming(now)
}

// Between returns every interval whose logical date is in [from, to], both
// ends included, oldest first: the runs of a backfill or a catchup. It
// returns at most MaxBetween intervals, the oldest ones; continue with Next
// from the last one for more.
func (t *Timetable) Between(from, to time.Time) []Interval {
	to = to.In(t.loc)
	if !t.end.IsZero() && t.end.Before(to) {
		to = t.end
	}
	var out []Interval
	s, ok := t.tickAtOrAfter(from)
	for ok && !s.After(to) && len(out) < MaxBetween {
		var e time.Time
		if e, ok = t.tickAfter(s); ok {
			out = append(out, Interval{Start: s, End: e})
			s = e
		}
	}
	return out
}

// intervalAt returns the interval that starts at tick s, unless s is past
// end_date.
func (t *Timetable) intervalAt(s time.Time) (Interval, bool) {
	if !t.end.IsZero() && s.After(t.end) {
		return Interval{}, false
	}
	e, ok := t.tickAfter(s)
	if !ok {
		return Interval{}, false
	}
	return Interval{Start: s, End: e}, true
}

// tickAtOrAfter returns the first tick of the timetable at or after x.
func (t *Timetable) tickAtOrAfter(x time.Time) (time.Time, bool) {
	x = x.In(t.loc)
	if !x.After(t.first) {
		return t.first, true
	}
	if t.sched.every > 0 {
		k, exact := t.everyIndex(x)
		if !exact {
			k++
		}
		return t.everyTick(k), true
	}
	return t.sched.after(x.Add(-time.Nanosecond), t.loc)
}

// tickAfter returns the first tick of the timetable strictly after x.
func (t *Timetable) tickAfter(x time.Time) (time.Time, bool) {
	x = x.In(t.loc)
	if x.Before(t.first) {
		return t.first, true
	}
	if t.sched.every > 0 {
		k, _ := t.everyIndex(x)
		return t.everyTick(k + 1), true
	}
	return t.sched.after(x, t.loc)
}

// tickAtOrBefore returns the last tick of the timetable at or before x.
//
// Cron has no "previous" operation, so this searches forward from a window
// before x that doubles until it holds a tick. Starting small keeps minutely
// schedules from walking years of ticks; doubling keeps yearly schedules to a
// few dozen steps.
func (t *Timetable) tickAtOrBefore(x time.Time) (time.Time, bool) {
	x = x.In(t.loc)
	if x.Before(t.first) {
		return time.Time{}, false
	}
	if t.sched.every > 0 {
		k, _ := t.everyIndex(x)
		return t.everyTick(k), true
	}
	for w := 2 * time.Minute; ; w *= 2 {
		// Clamp to the first tick once the window reaches it; the w bound
		// stops the doubling before it overflows (x.Sub saturates).
		clamped := w >= x.Sub(t.first) || w > 1<<61
		tick, ok := t.first, true
		if !clamped {
			tick, ok = t.sched.after(x.Add(-w), t.loc)
		}
		if ok && !tick.After(x) {
			for {
				next, ok := t.sched.after(tick, t.loc)
				if !ok || next.After(x) {
					return tick, true
				}
				tick = next
			}
		}
		if clamped {
			return time.Time{}, false // unreachable: first <= x
		}
	}
}

// everyIndex returns k such that the @every tick k is the last one at or
// before x (x at or after start), and whether it equals x. It works in whole
// seconds so that no time.Duration overflows, whatever the distance.
func (t *Timetable) everyIndex(x time.Time) (k int64, exact bool) {
	secs := x.Unix() - t.start.Unix()
	nanos := x.Nanosecond() - t.start.Nanosecond()
	if nanos < 0 {
		secs--
		nanos += int(time.Second)
	}
	// every is a whole number of seconds, so the sub-second remainder never
	// crosses a tick.
	step := int64(t.sched.every / time.Second)
	k = secs / step
	return k, nanos == 0 && secs%step == 0
}

// everyTick returns start + k·every, in loc.
func (t *Timetable) everyTick(k int64) time.Time {
	step := int64(t.sched.every / time.Second)
	return time.Unix(t.start.Unix()+k*step, int64(t.start.Nanosecond())).In(t.loc)
}
