package timetable

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// schedule is a parsed spec: either a cron (presets become crons) or an
// @every duration.
type schedule struct {
	// cron has Location UTC: it is only ever run on naive wall-clock times,
	// so robfig never sees a DST transition (see after).
	cron *cron.SpecSchedule
	// frequent is set when the cron's hour field matches all 24 hours; such
	// schedules fire at every real instant that matches rather than once per
	// wall time.
	frequent bool
	every    time.Duration // > 0 for @every
}

// starBit is robfig's marker for a field written as * or ?, which switches
// day-of-month/day-of-week matching from OR to AND (see robfig's dayMatches).
const starBit = 1 << 63

// allHours has a bit for each of the 24 hours.
const allHours = 1<<24 - 1

// fieldNames name the five cron fields, in order, for error messages.
var fieldNames = [5]string{"minute", "hour", "day-of-month", "month", "day-of-week"}

// fieldOptions are the robfig parser options that parse one field alone; used
// to tell the user which field is wrong.
var fieldOptions = [5]cron.ParseOption{cron.Minute, cron.Hour, cron.Dom, cron.Month, cron.Dow}

func trimSpec(spec string) string { return strings.TrimSpace(spec) }

// presetCron maps a preset to the cron it stands for, as robfig defines it.
func presetCron(name string) (string, bool) {
	switch name {
	case "@yearly", "@annually":
		return "0 0 1 1 *", true
	case "@monthly":
		return "0 0 1 * *", true
	case "@weekly":
		return "0 0 * * 0", true
	case "@daily", "@midnight":
		return "0 0 * * *", true
	case "@hourly":
		return "0 * * * *", true
	}
	return "", false
}

func parseSpec(spec string) (schedule, error) {
	spec = trimSpec(spec)
	switch {
	case spec == "":
		return schedule{}, errors.New("must not be empty: use a 5-field cron expression, a preset such as @daily, or @every DURATION")
	case strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ="):
		// robfig would read the zone from the spec; Kiln has one place for
		// it so that start_date, templates and the schedule agree.
		return schedule{}, errors.New("a TZ= or CRON_TZ= prefix is not supported: set the DAG's timezone key instead")
	case spec == "@every" || strings.HasPrefix(spec, "@every "):
		return parseEvery(strings.TrimSpace(strings.TrimPrefix(spec, "@every")))
	case strings.HasPrefix(spec, "@"):
		expr, ok := presetCron(spec)
		if !ok {
			return schedule{}, fmt.Errorf("unknown preset %q: use @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every DURATION", spec)
		}
		return parseCron(expr)
	}
	return parseCron(spec)
}

func parseEvery(arg string) (schedule, error) {
	if arg == "" {
		return schedule{}, errors.New("@every needs a duration, such as @every 30m")
	}
	d, err := time.ParseDuration(arg)
	if err != nil {
		return schedule{}, fmt.Errorf("@every: invalid duration %q (use Go syntax such as 90s, 15m or 1h30m)", arg)
	}
	if d <= 0 {
		return schedule{}, fmt.Errorf("@every: duration must be positive, got %s", arg)
	}
	if d%time.Second != 0 {
		return schedule{}, fmt.Errorf("@every: duration must be a whole number of seconds, got %s", arg)
	}
	return schedule{every: d}, nil
}

func parseCron(expr string) (schedule, error) {
	fields := strings.Fields(expr)
	switch n := len(fields); {
	case n == 6:
		return schedule{}, errors.New("6-field cron with seconds is not supported: use 5 fields, minute hour day-of-month month day-of-week")
	case n != 5:
		return schedule{}, fmt.Errorf("cron must have 5 fields (minute hour day-of-month month day-of-week), got %d", n)
	}
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	parsed, err := parser.Parse(expr)
	if err != nil {
		return schedule{}, fieldError(fields, err)
	}
	// Copy: the schedule must be ours alone, and never apply a zone.
	spec := *parsed.(*cron.SpecSchedule)
	spec.Location = time.UTC
	if !fires(&spec) {
		return schedule{}, errors.New("never fires (no date matches its day-of-month, month and day-of-week)")
	}
	return schedule{cron: &spec, frequent: spec.Hour&allHours == allHours}, nil
}

// fieldError names the first field robfig rejects, falling back to robfig's
// message for the whole expression.
func fieldError(fields []string, whole error) error {
	for i, f := range fields {
		if _, err := cron.NewParser(fieldOptions[i]).Parse(f); err != nil {
			return fmt.Errorf("invalid cron %s field %q: %v", fieldNames[i], f, err)
		}
	}
	return fmt.Errorf("invalid cron expression: %v", whole)
}

// fires reports whether the cron matches at least one date. It is exact
// because over the 400-year Gregorian cycle every valid month/day, February
// 29 included, falls on each day of the week.
func fires(s *cron.SpecSchedule) bool {
	if s.Minute&^starBit == 0 || s.Hour&^starBit == 0 || s.Month&^starBit == 0 {
		return false // possible with an empty list such as ","
	}
	maxDay := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	validDay := false
	for m := 1; m <= 12; m++ {
		if s.Month&(1<<m) == 0 {
			continue
		}
		for d := 1; d <= maxDay[m]; d++ {
			if s.Dom&(1<<d) != 0 {
				validDay = true
			}
		}
	}
	anyDow := s.Dow&^starBit != 0
	if s.Dom&starBit != 0 || s.Dow&starBit != 0 {
		return validDay && anyDow // robfig ANDs the two day fields
	}
	return validDay || anyDow // both restricted: either may match
}
