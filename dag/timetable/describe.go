package timetable

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Describe returns a short English description of the schedule for the UI,
// such as "every day at 03:00", "every hour at minute 0" or "every 15m". It
// is best effort: shapes it does not know fall back to the spec itself.
func (t *Timetable) Describe() string {
	if t.sched.every > 0 {
		return "every " + formatEvery(t.sched.every)
	}
	if d, ok := describeCron(t.sched.cron); ok {
		return d
	}
	return t.spec
}

// formatEvery drops the zero units time.Duration.String leaves at the end:
// "1h30m0s" becomes "1h30m" and "24h0m0s" becomes "24h".
func formatEvery(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func describeCron(s *cron.SpecSchedule) (string, bool) {
	minutes := setBits(s.Minute, 0, 59)
	hours := setBits(s.Hour, 0, 23)
	if s.Hour&allHours == allHours {
		at, ok := describeMinutes(minutes)
		if !ok {
			return "", false
		}
		days, ok := describeDays(s, false)
		if !ok {
			return "", false
		}
		return strings.TrimSpace(at + " " + days), true
	}

	// A fixed-time schedule lists its times of day, if there are few.
	if len(minutes)*len(hours) > 6 {
		return "", false
	}
	var times []string
	for _, h := range hours {
		for _, m := range minutes {
			times = append(times, fmt.Sprintf("%02d:%02d", h, m))
		}
	}
	days, ok := describeDays(s, true)
	if !ok {
		return "", false
	}
	return days + " at " + joinList(times), true
}

// describeMinutes describes the minute field of a schedule that runs every
// hour.
func describeMinutes(minutes []int) (string, bool) {
	switch {
	case len(minutes) == 60:
		return "every minute", true
	case len(minutes) == 1:
		return "every hour at minute " + strconv.Itoa(minutes[0]), true
	}
	// An even step from minute 0, such as */15.
	step := minutes[1] - minutes[0]
	even := minutes[0] == 0 && 60%step == 0 && len(minutes) == 60/step
	for i := 1; even && i < len(minutes); i++ {
		even = minutes[i]-minutes[i-1] == step
	}
	if even {
		return fmt.Sprintf("every %d minutes", step), true
	}
	if len(minutes) <= 6 {
		return "every hour at minutes " + joinList(ints(minutes)), true
	}
	return "", false
}

// describeDays describes the date fields: for a fixed-time schedule as the
// start of the sentence ("every day", "every Monday"), otherwise as a
// qualifier ("", "on Monday").
func describeDays(s *cron.SpecSchedule, fixed bool) (string, bool) {
	months := setBits(s.Month, 1, 12)
	doms := setBits(s.Dom, 1, 31)
	dows := setBits(s.Dow, 0, 6)
	domStar, dowStar := s.Dom&starBit != 0, s.Dow&starBit != 0
	allMonths := len(months) == 12
	switch {
	case allMonths && len(doms) == 31 && len(dows) == 7:
		if fixed {
			return "every day", true
		}
		return "", true
	case allMonths && domStar:
		names := make([]string, len(dows))
		for i, d := range dows {
			names[i] = time.Weekday(d).String()
		}
		list := joinList(names)
		if len(dows) == 5 && dows[0] == 1 && dows[4] == 5 {
			if fixed {
				return "every weekday", true
			}
			return "on weekdays", true
		}
		if fixed {
			return "every " + list, true
		}
		return "on " + list, true
	case allMonths && dowStar:
		word := "day "
		if len(doms) > 1 {
			word = "days "
		}
		if fixed {
			return "every month on " + word + joinList(ints(doms)), true
		}
		return "on " + word + joinList(ints(doms)) + " of every month", true
	case len(months) == 1 && len(doms) == 1 && dowStar:
		date := fmt.Sprintf("%s %d", time.Month(months[0]), doms[0])
		if fixed {
			return "every year on " + date, true
		}
		return "on " + date + " every year", true
	}
	return "", false
}

// setBits lists the values in [lo, hi] whose bit is set.
func setBits(field uint64, lo, hi int) []int {
	var out []int
	field &^= starBit
	for field != 0 {
		v := bits.TrailingZeros64(field)
		field &= field - 1
		if v >= lo && v <= hi {
			out = append(out, v)
		}
	}
	return out
}

func ints(vs []int) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = strconv.Itoa(v)
	}
	return out
}

// joinList joins items as English does: "a", "a and b", "a, b and c".
func joinList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
