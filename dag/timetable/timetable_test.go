package timetable

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// Expected instants in these tests are literal RFC 3339 strings worked out by
// hand (and their offsets checked with zdump and date), never computed by the
// code under test. Results are compared as formatted strings, which also
// checks that they are returned in the DAG's location.

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("LoadLocation(%q): %v", name, err)
	}
	return loc
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("bad literal %q: %v", s, err)
	}
	return v
}

func mustNew(t testing.TB, spec, zone, start, end string) *Timetable {
	t.Helper()
	tt, err := New(spec, mustLoc(t, zone), mustTime(t, start), mustTime(t, end))
	if err != nil {
		t.Fatalf("New(%q): %v", spec, err)
	}
	return tt
}

func fmtTime(v time.Time) string { return v.Format(time.RFC3339Nano) }

func fmtInterval(iv Interval, ok bool) string {
	if !ok {
		return "none"
	}
	return fmtTime(iv.Start) + " -> " + fmtTime(iv.End)
}

// iv writes an expected interval as the string fmtInterval gives.
func iv(start, end string) string { return start + " -> " + end }

// checkTicks asserts that, from the interval at or after from, the intervals
// start and end at consecutive entries of ticks; and that Between and
// LatestEnded agree with it.
func checkTicks(t *testing.T, tt *Timetable, from string, ticks []string) {
	t.Helper()
	var got []string
	cur, ok := tt.AtOrAfter(mustTime(t, from))
	for i := 0; ok && i < len(ticks)-1; i++ {
		if !cur.Start.Before(cur.End) {
			t.Errorf("interval %s does not have Start < End", fmtInterval(cur, ok))
		}
		got = append(got, fmtTime(cur.Start))
		if i == len(ticks)-2 {
			got = append(got, fmtTime(cur.End))
		}
		cur, ok = tt.Next(cur)
	}
	if strings.Join(got, "\n") != strings.Join(ticks, "\n") {
		t.Fatalf("ticks from %s:\n got %s\nwant %s", from, strings.Join(got, "\n     "), strings.Join(ticks, "\n     "))
	}

	between := tt.Between(mustTime(t, ticks[0]), mustTime(t, ticks[len(ticks)-2]))
	if len(between) != len(ticks)-1 {
		t.Fatalf("Between gave %d intervals, want %d", len(between), len(ticks)-1)
	}
	for i, b := range between {
		if g, w := fmtInterval(b, true), iv(ticks[i], ticks[i+1]); g != w {
			t.Errorf("Between[%d] = %s, want %s", i, g, w)
		}
	}

	for i := 1; i < len(ticks); i++ {
		end := mustTime(t, ticks[i])
		if g, w := fmtInterval(tt.LatestEnded(end)), iv(ticks[i-1], ticks[i]); g != w {
			t.Errorf("LatestEnded(%s) = %s, want %s", ticks[i], g, w)
		}
		if i >= 2 {
			g := fmtInterval(tt.LatestEnded(end.Add(-time.Nanosecond)))
			if w := iv(ticks[i-2], ticks[i-1]); g != w {
				t.Errorf("LatestEnded(%s - 1ns) = %s, want %s", ticks[i], g, w)
			}
		}
	}
}

func TestSchedules(t *testing.T) {
	tests := []struct {
		name, spec, zone, start string
		ticks                   []string // first interval is [ticks[0], ticks[1])
	}{
		{"daily", "0 3 * * *", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z", "2026-01-08T03:00:00Z"}},
		{"daily preset", "@daily", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z"}},
		{"midnight preset", "@midnight", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z"}},
		{"hourly", "0 * * * *", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-01-05T11:00:00Z", "2026-01-05T12:00:00Z", "2026-01-05T13:00:00Z"}},
		{"hourly preset", "@hourly", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-01-05T11:00:00Z", "2026-01-05T12:00:00Z"}},
		{"every 15 minutes", "*/15 * * * *", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-01-05T10:30:00Z", "2026-01-05T10:45:00Z", "2026-01-05T11:00:00Z"}},
		{"monthly across DST", "@monthly", "Europe/Zurich", "2026-01-05T10:17:00+01:00",
			[]string{"2026-02-01T00:00:00+01:00", "2026-03-01T00:00:00+01:00", "2026-04-01T00:00:00+02:00"}},
		{"monthly cron", "0 6 15 * *", "UTC", "2026-01-15T06:00:00Z",
			[]string{"2026-01-15T06:00:00Z", "2026-02-15T06:00:00Z", "2026-03-15T06:00:00Z"}},
		{"weekly", "@weekly", "UTC", "2026-01-05T10:17:00Z", // a Monday; @weekly is Sunday 00:00
			[]string{"2026-01-11T00:00:00Z", "2026-01-18T00:00:00Z", "2026-01-25T00:00:00Z"}},
		{"yearly", "@yearly", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2027-01-01T00:00:00Z", "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z"}},
		{"annually", "@annually", "America/New_York", "2026-01-05T10:17:00-05:00",
			[]string{"2027-01-01T00:00:00-05:00", "2028-01-01T00:00:00-05:00"}},
		{"weekdays by name", "0 9 * * MON-FRI", "UTC", "2026-01-09T10:17:00Z", // a Friday
			[]string{"2026-01-12T09:00:00Z", "2026-01-13T09:00:00Z", "2026-01-14T09:00:00Z"}},
		{"month names and ?", "0 0 1 JAN,JUL ?", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z", "2027-07-01T00:00:00Z"}},
		{"day-of-month OR day-of-week", "0 0 13 * FRI", "UTC", "2026-02-01T00:00:00Z",
			[]string{"2026-02-06T00:00:00Z", "2026-02-13T00:00:00Z", "2026-02-20T00:00:00Z", "2026-02-27T00:00:00Z", "2026-03-06T00:00:00Z", "2026-03-13T00:00:00Z"}},
		// robfig gives up after five years; 2100 is not a leap year.
		{"leap day past five years", "0 0 29 2 *", "UTC", "2096-03-01T00:00:00Z",
			[]string{"2104-02-29T00:00:00Z", "2108-02-29T00:00:00Z"}},
		{"every 90m at an odd start", "@every 90m", "UTC", "2026-01-05T10:17:00Z",
			[]string{"2026-01-05T10:17:00Z", "2026-01-05T11:47:00Z", "2026-01-05T13:17:00Z", "2026-01-05T14:47:00Z"}},
		{"every 24h is absolute time across DST", "@every 24h", "Europe/Zurich", "2026-03-27T10:17:00+01:00",
			[]string{"2026-03-27T10:17:00+01:00", "2026-03-28T10:17:00+01:00", "2026-03-29T11:17:00+02:00", "2026-03-30T11:17:00+02:00"}},
		{"every 45s keeps sub-second start", "@every 45s", "UTC", "2026-01-05T10:17:00.5Z",
			[]string{"2026-01-05T10:17:00.5Z", "2026-01-05T10:17:45.5Z", "2026-01-05T10:18:30.5Z"}},
		{"start exactly on a tick", "0 3 * * *", "UTC", "2026-01-06T03:00:00Z",
			[]string{"2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z"}},
		{"start a nanosecond after a tick", "0 3 * * *", "UTC", "2026-01-06T03:00:00.000000001Z",
			[]string{"2026-01-07T03:00:00Z", "2026-01-08T03:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := mustNew(t, tc.spec, tc.zone, tc.start, "")
			if g, w := fmtInterval(tt.First()), iv(tc.ticks[0], tc.ticks[1]); g != w {
				t.Errorf("First() = %s, want %s", g, w)
			}
			// Asking from long before start_date gives the first interval.
			checkTicks(t, tt, "2000-01-01T00:00:00Z", tc.ticks)
		})
	}
}

func TestAtOrAfter(t *testing.T) {
	daily := mustNew(t, "0 3 * * *", "UTC", "2026-01-05T10:17:00Z", "")
	every := mustNew(t, "@every 90m", "UTC", "2026-01-05T10:17:00Z", "")
	tests := []struct {
		name string
		tt   *Timetable
		from string
		want string
	}{
		{"before start", daily, "2025-06-01T00:00:00Z", iv("2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z")},
		{"on a tick", daily, "2026-01-09T03:00:00Z", iv("2026-01-09T03:00:00Z", "2026-01-10T03:00:00Z")},
		{"just after a tick", daily, "2026-01-09T03:00:01Z", iv("2026-01-10T03:00:00Z", "2026-01-11T03:00:00Z")},
		{"other zone", daily, "2026-01-09T04:00:00+01:00", iv("2026-01-09T03:00:00Z", "2026-01-10T03:00:00Z")},
		{"every: on start", every, "2026-01-05T10:17:00Z", iv("2026-01-05T10:17:00Z", "2026-01-05T11:47:00Z")},
		{"every: between ticks", every, "2026-01-05T11:00:00Z", iv("2026-01-05T11:47:00Z", "2026-01-05T13:17:00Z")},
		{"every: on a later tick", every, "2026-01-06T10:17:00Z", iv("2026-01-06T10:17:00Z", "2026-01-06T11:47:00Z")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g := fmtInterval(tc.tt.AtOrAfter(mustTime(t, tc.from))); g != tc.want {
				t.Errorf("AtOrAfter(%s) = %s, want %s", tc.from, g, tc.want)
			}
		})
	}
}

func TestEndDate(t *testing.T) {
	tests := []struct {
		name, spec, end string
		first           string
		all             []string // Between(2026-01-01, 2027-01-01)
		latest          string   // LatestEnded(2026-06-01)
	}{
		{
			name: "interval starting exactly at end_date exists", spec: "0 3 * * *", end: "2026-01-08T03:00:00Z",
			first: iv("2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z"),
			all: []string{
				iv("2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z"),
				iv("2026-01-07T03:00:00Z", "2026-01-08T03:00:00Z"),
				iv("2026-01-08T03:00:00Z", "2026-01-09T03:00:00Z"), // ends after end_date
			},
			latest: iv("2026-01-08T03:00:00Z", "2026-01-09T03:00:00Z"),
		},
		{
			name: "end_date between ticks", spec: "0 3 * * *", end: "2026-01-08T02:59:59Z",
			first: iv("2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z"),
			all: []string{
				iv("2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z"),
				iv("2026-01-07T03:00:00Z", "2026-01-08T03:00:00Z"),
			},
			latest: iv("2026-01-07T03:00:00Z", "2026-01-08T03:00:00Z"),
		},
		{
			name: "end_date before the first tick", spec: "0 3 * * *", end: "2026-01-06T02:59:00Z",
			first: "none", latest: "none",
		},
		{
			name: "every: end_date on a tick", spec: "@every 90m", end: "2026-01-05T11:47:00Z",
			first: iv("2026-01-05T10:17:00Z", "2026-01-05T11:47:00Z"),
			all: []string{
				iv("2026-01-05T10:17:00Z", "2026-01-05T11:47:00Z"),
				iv("2026-01-05T11:47:00Z", "2026-01-05T13:17:00Z"),
			},
			latest: iv("2026-01-05T11:47:00Z", "2026-01-05T13:17:00Z"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tt := mustNew(t, tc.spec, "UTC", "2026-01-05T10:17:00Z", tc.end)
			if g := fmtInterval(tt.First()); g != tc.first {
				t.Errorf("First() = %s, want %s", g, tc.first)
			}
			var all []string
			for _, b := range tt.Between(mustTime(t, "2026-01-01T00:00:00Z"), mustTime(t, "2027-01-01T00:00:00Z")) {
				all = append(all, fmtInterval(b, true))
			}
			if strings.Join(all, "\n") != strings.Join(tc.all, "\n") {
				t.Errorf("Between:\n got %v\nwant %v", all, tc.all)
			}
			if g := fmtInterval(tt.LatestEnded(mustTime(t, "2026-06-01T00:00:00Z"))); g != tc.latest {
				t.Errorf("LatestEnded = %s, want %s", g, tc.latest)
			}
			if len(tc.all) > 0 {
				last := mustTime(t, strings.Split(tc.all[len(tc.all)-1], " -> ")[0])
				if g := fmtInterval(tt.Next(Interval{Start: last, End: mustTime(t, strings.Split(tc.all[len(tc.all)-1], " -> ")[1])})); g != "none" {
					t.Errorf("Next(last) = %s, want none", g)
				}
				if g := fmtInterval(tt.AtOrAfter(last.Add(time.Second))); g != "none" {
					t.Errorf("AtOrAfter(past end) = %s, want none", g)
				}
			}
		})
	}
}

func TestCatchup(t *testing.T) {
	daily := mustNew(t, "0 0 * * *", "UTC", "2026-01-01T00:00:00Z", "")
	got := daily.Between(mustTime(t, "2026-01-10T00:00:00Z"), mustTime(t, "2026-01-14T23:59:59Z"))
	want := []string{
		iv("2026-01-10T00:00:00Z", "2026-01-11T00:00:00Z"),
		iv("2026-01-11T00:00:00Z", "2026-01-12T00:00:00Z"),
		iv("2026-01-12T00:00:00Z", "2026-01-13T00:00:00Z"),
		iv("2026-01-13T00:00:00Z", "2026-01-14T00:00:00Z"),
		iv("2026-01-14T00:00:00Z", "2026-01-15T00:00:00Z"),
	}
	if len(got) != 5 {
		t.Fatalf("Between over 5 days gave %d intervals, want 5", len(got))
	}
	for i := range got {
		if g := fmtInterval(got[i], true); g != want[i] {
			t.Errorf("Between[%d] = %s, want %s", i, g, want[i])
		}
	}
	// Both ends are included.
	if n := len(daily.Between(mustTime(t, "2026-01-10T00:00:00Z"), mustTime(t, "2026-01-15T00:00:00Z"))); n != 6 {
		t.Errorf("Between with to on a tick gave %d intervals, want 6", n)
	}
	if n := len(daily.Between(mustTime(t, "2026-01-15T00:00:00Z"), mustTime(t, "2026-01-10T00:00:00Z"))); n != 0 {
		t.Errorf("Between with from after to gave %d intervals, want 0", n)
	}
	if n := len(daily.Between(mustTime(t, "2025-12-01T00:00:00Z"), mustTime(t, "2025-12-31T23:59:59Z"))); n != 0 {
		t.Errorf("Between before start_date gave %d intervals, want 0", n)
	}
}

func TestLatestEnded(t *testing.T) {
	daily := mustNew(t, "0 3 * * *", "UTC", "2026-01-05T10:17:00Z", "")
	every := mustNew(t, "@every 90m", "UTC", "2026-01-05T10:17:00Z", "")
	yearly := mustNew(t, "@yearly", "Europe/Zurich", "2000-01-01T00:00:00+01:00", "")
	leap := mustNew(t, "0 0 29 2 *", "UTC", "2026-01-01T00:00:00Z", "")
	tests := []struct {
		name string
		tt   *Timetable
		now  string
		want string
	}{
		{"exactly on a tick", daily, "2026-01-10T03:00:00Z", iv("2026-01-09T03:00:00Z", "2026-01-10T03:00:00Z")},
		{"just before a tick", daily, "2026-01-10T02:59:59.999999999Z", iv("2026-01-08T03:00:00Z", "2026-01-09T03:00:00Z")},
		{"first interval just ended", daily, "2026-01-07T03:00:00Z", iv("2026-01-06T03:00:00Z", "2026-01-07T03:00:00Z")},
		{"before the first interval ended", daily, "2026-01-07T02:59:00Z", "none"},
		{"before start_date", daily, "2025-01-01T00:00:00Z", "none"},
		{"now in another zone", daily, "2026-01-10T04:00:00+01:00", iv("2026-01-09T03:00:00Z", "2026-01-10T03:00:00Z")},
		{"every: on a tick", every, "2026-01-05T13:17:00Z", iv("2026-01-05T11:47:00Z", "2026-01-05T13:17:00Z")},
		{"every: between ticks", every, "2026-01-05T13:16:59Z", iv("2026-01-05T10:17:00Z", "2026-01-05T11:47:00Z")},
		{"every: first not ended", every, "2026-01-05T11:46:59Z", "none"},
		{"yearly over a long history", yearly, "2026-06-15T12:00:00+02:00", iv("2025-01-01T00:00:00+01:00", "2026-01-01T00:00:00+01:00")},
		{"leap days", leap, "2033-01-01T00:00:00Z", iv("2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if g := fmtInterval(tc.tt.LatestEnded(mustTime(t, tc.now))); g != tc.want {
				t.Errorf("LatestEnded(%s) = %s, want %s", tc.now, g, tc.want)
			}
		})
	}
}

// A minutely schedule with six years of history must be answered without
// walking those years.
func TestLongMinutelyHistoryIsFast(t *testing.T) {
	tt := mustNew(t, "* * * * *", "Europe/Zurich", "2020-01-01T00:00:00+01:00", "")
	now := mustTime(t, "2026-06-15T12:34:56+02:00")
	begin := time.Now()
	if g, w := fmtInterval(tt.LatestEnded(now)), iv("2026-06-15T12:33:00+02:00", "2026-06-15T12:34:00+02:00"); g != w {
		t.Errorf("LatestEnded = %s, want %s", g, w)
	}
	if g, w := fmtInterval(tt.AtOrAfter(now)), iv("2026-06-15T12:35:00+02:00", "2026-06-15T12:36:00+02:00"); g != w {
		t.Errorf("AtOrAfter = %s, want %s", g, w)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("took %v; the search is walking the history", d)
	}
}

func TestBetweenCap(t *testing.T) {
	tt := mustNew(t, "* * * * *", "UTC", "2020-01-01T00:00:00Z", "")
	got := tt.Between(mustTime(t, "2019-01-01T00:00:00Z"), mustTime(t, "2026-01-01T00:00:00Z"))
	if len(got) != MaxBetween || MaxBetween != 100_000 {
		t.Fatalf("Between returned %d intervals, want the cap of 100000", len(got))
	}
	if g, w := fmtInterval(got[0], true), iv("2020-01-01T00:00:00Z", "2020-01-01T00:01:00Z"); g != w {
		t.Errorf("first = %s, want %s", g, w)
	}
	// 99 999 minutes after the start: 69 days, 10 hours and 39 minutes.
	if g, w := fmtInterval(got[len(got)-1], true), iv("2020-03-10T10:39:00Z", "2020-03-10T10:40:00Z"); g != w {
		t.Errorf("last = %s, want %s", g, w)
	}
}

func TestAccessors(t *testing.T) {
	loc := mustLoc(t, "Europe/Zurich")
	tt, err := New("  0 3 * * *\n", loc, mustTime(t, "2026-01-01T00:00:00Z"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if tt.Spec() != "0 3 * * *" {
		t.Errorf("Spec() = %q", tt.Spec())
	}
	if tt.Location() != loc {
		t.Errorf("Location() = %v", tt.Location())
	}
	utc, err := New("@daily", nil, mustTime(t, "2026-01-01T00:00:00Z"), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if utc.Location() != time.UTC {
		t.Errorf("nil location gave %v, want UTC", utc.Location())
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		spec string
		want string // a part of the message
	}{
		{"", "must not be empty"},
		{"   ", "must not be empty"},
		{"0 3 * *", "5 fields"},
		{"0 0 3 * * *", "6-field cron with seconds is not supported"},
		{"61 * * * *", `minute field "61"`},
		{"0 25 * * *", `hour field "25"`},
		{"0 0 32 * *", `day-of-month field "32"`},
		{"0 0 * FOO *", `month field "FOO"`},
		{"0 0 * * 7", `day-of-week field "7"`},
		{"0 0 * * MON-", `day-of-week field "MON-"`},
		{"*/0 * * * *", "minute field"},
		{"TZ=Europe/Berlin 0 3 * * *", "set the DAG's timezone key instead"},
		{"CRON_TZ=UTC 0 3 * * *", "set the DAG's timezone key instead"},
		{"0 0 30 2 *", "never fires"},
		{"0 0 31 4,6,9,11 *", "never fires"},
		{"0 , * * *", "never fires"},
		{"@every 0s", "must be positive"},
		{"@every -5m", "must be positive"},
		{"@every 1500ms", "whole number of seconds"},
		{"@every 500ms", "whole number of seconds"},
		{"@every", "needs a duration"},
		{"@every soon", "invalid duration"},
		{"@fortnightly", `unknown preset "@fortnightly"`},
		{"@reboot", "unknown preset"},
		{"@daily 3", "unknown preset"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			err := ValidateSpec(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ValidateSpec(%q) = %v, want an error containing %q", tc.spec, err, tc.want)
			}
			if strings.HasPrefix(err.Error(), "schedule:") {
				t.Errorf("message %q repeats the caller's prefix", err)
			}
			_, err2 := New(tc.spec, time.UTC, mustTime(t, "2026-01-01T00:00:00Z"), time.Time{})
			if err2 == nil || err2.Error() != err.Error() {
				t.Errorf("New error %v differs from ValidateSpec's %v", err2, err)
			}
		})
	}
}

func TestValidSpecs(t *testing.T) {
	for _, spec := range []string{
		"0 3 * * *", "*/15 * * * *", "0 9 * * MON-FRI", "0 0 1 JAN,jul ?", "0 0 29 2 *",
		"0 0 31 2 MON", // day fields are ORed when both are restricted: Mondays of February
		"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly",
		"@every 1s", "@every 1h30m", " @every 24h ",
	} {
		if err := ValidateSpec(spec); err != nil {
			t.Errorf("ValidateSpec(%q) = %v, want nil", spec, err)
		}
	}
	if _, err := New("@daily", time.UTC, time.Time{}, time.Time{}); err == nil || !strings.Contains(err.Error(), "start_date is required") {
		t.Errorf("New without start = %v, want start_date is required", err)
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"0 3 * * *", "every day at 03:00"},
		{"@daily", "every day at 00:00"},
		{"@hourly", "every hour at minute 0"},
		{"0 * * * *", "every hour at minute 0"},
		{"*/15 * * * *", "every 15 minutes"},
		{"* * * * *", "every minute"},
		{"0,30 * * * *", "every 30 minutes"},
		{"5,35 * * * *", "every hour at minutes 5 and 35"},
		{"0 7,9 * * *", "every day at 07:00 and 09:00"},
		{"30 7-8 * * *", "every day at 07:30 and 08:30"},
		{"0 9 * * MON-FRI", "every weekday at 09:00"},
		{"0 9 * * 1,5", "every Monday and Friday at 09:00"},
		{"@weekly", "every Sunday at 00:00"},
		{"@monthly", "every month on day 1 at 00:00"},
		{"0 6 1,15 * *", "every month on days 1 and 15 at 06:00"},
		{"@yearly", "every year on January 1 at 00:00"},
		{"*/10 * * * 1", "every 10 minutes on Monday"},
		{"0 * * * MON-FRI", "every hour at minute 0 on weekdays"},
		{"@every 15m", "every 15m"},
		{"@every 90m", "every 1h30m"},
		{"@every 24h", "every 24h"},
		{"@every 45s", "every 45s"},
		{"0 0 13 * FRI", "0 0 13 * FRI"}, // falls back to the spec
		{"0 */2 * * *", "0 */2 * * *"},   // too many times of day to list
		{"0 0 * 1 *", "0 0 * 1 *"},       // every day of January
		{"13,17,19,23,29,31,37 * * * *", "13,17,19,23,29,31,37 * * * *"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			tt := mustNew(t, tc.spec, "UTC", "2026-01-01T00:00:00Z", "")
			if g := tt.Describe(); g != tc.want {
				t.Errorf("Describe() = %q, want %q", g, tc.want)
			}
		})
	}
}

// A Timetable is shared by the scheduler's goroutines.
func TestConcurrentUse(t *testing.T) {
	tt := mustNew(t, "30 2 * * *", "Europe/Zurich", "2026-01-01T00:00:00+01:00", "")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			got := tt.Between(mustTime(t, "2026-03-28T00:00:00Z"), mustTime(t, "2026-03-30T00:00:00Z"))
			if len(got) != 2 || fmtTime(got[1].Start) != "2026-03-29T03:00:00+02:00" {
				t.Errorf("Between = %v", got)
			}
			tt.LatestEnded(mustTime(t, "2026-06-01T00:00:00Z"))
		})
	}
	wg.Wait()
}
