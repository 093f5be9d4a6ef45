package ui

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// The calendar tab: a square per day of the last year, weeks as columns
// (Monday on top) and the current week on the right, coloured by the
// states of the runs whose logical date falls on that day in the DAG's
// timezone — failed when any failed, else running when any is queued or
// running, else success. Drawn server-side as SVG; layoutCalendar is a
// pure function of the runs and today.

// Sizes of the calendar, in SVG user units.
const (
	calWeeks  = 53
	calCell   = 12.0
	calStep   = 15.0 // a cell and the gap after it
	calLabelW = 32.0 // the weekday labels
	calMonthH = 18.0 // the month labels
	calPadR   = 24.0 // so that the last month's label fits
)

// calendarView is the calendar tab.
type calendarView struct {
	Width, Height px
	Days          []calendarDay
	Months        []chartTick
	Weekdays      []chartTick
	From, To      string // the first and last day shown, YYYY-MM-DD
	Timezone      string
	Runs          int // runs in the year shown
}

// calendarDay is one day's square.
type calendarDay struct {
	X, Y  px
	Date  string
	State string // failed, running, success; "none" without runs
	Title string
}

// layoutCalendar lays out the 53 weeks up to today's (today is a date in
// the DAG's timezone), with runs, oldest first.
func layoutCalendar(runs []store.RunDigest, today time.Time, loc *time.Location) calendarView {
	today = time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc)
	monday := today.AddDate(0, 0, -((int(today.Weekday()) + 6) % 7))
	first := monday.AddDate(0, 0, -7*(calWeeks-1))
	type tally struct{ success, failed, running, total int }
	days := map[string]*tally{}
	for _, r := range runs {
		d := r.LogicalDate.In(loc).Format(time.DateOnly)
		t := days[d]
		if t == nil {
			t = &tally{}
			days[d] = t
		}
		t.total++
		switch r.State {
		case store.RunSuccess:
			t.success++
		case store.RunFailed:
			t.failed++
		default:
			t.running++
		}
	}
	v := calendarView{
		Width:    px(calLabelW + calWeeks*calStep + calPadR),
		Height:   px(calMonthH + 7*calStep),
		From:     first.Format(time.DateOnly),
		To:       today.Format(time.DateOnly),
		Timezone: loc.String(),
		Runs:     len(runs),
	}
	for i, name := range []string{"Mon", "Wed", "Fri"} {
		v.Weekdays = append(v.Weekdays, chartTick{X: calLabelW - 6, Y: px(calMonthH + float64(2*i)*calStep + calCell - 2), Label: name})
	}
	for w := range calWeeks {
		x := px(calLabelW + float64(w)*calStep)
		for wd := range 7 {
			day := first.AddDate(0, 0, 7*w+wd)
			if day.After(today) {
				break
			}
			if day.Day() == 1 || w == 0 && wd == 0 {
				v.Months = append(v.Months, chartTick{X: x, Y: calMonthH - 6, Label: day.Format("Jan")})
			}
			date := day.Format(time.DateOnly)
			d := calendarDay{X: x, Y: px(calMonthH + float64(wd)*calStep), Date: date, State: "none", Title: date + " · no runs"}
			if t := days[date]; t != nil {
				switch {
				case t.failed > 0:
					d.State = "failed"
				case t.running > 0:
					d.State = "running"
				default:
					d.State = "success"
				}
				d.Title = date + " · " + countText(t.total, "run") + ": " + tallyText(t.success, t.failed, t.running)
			}
			v.Days = append(v.Days, d)
		}
	}
	// A month that starts late in the first column would be drawn over
	// the label of the first: keep the later one.
	if len(v.Months) > 1 && v.Months[1].X-v.Months[0].X < 3*calStep {
		v.Months = v.Months[1:]
	}
	return v
}

func countText(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func tallyText(success, failed, running int) string {
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{success, "success"}, {failed, "failed"}, {running, "queued or running"}} {
		if p.n > 0 {
			parts = append(parts, strconv.Itoa(p.n)+" "+p.what)
		}
	}
	return strings.Join(parts, ", ")
}

func (s *Server) dagCalendarPage(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	loc := dagLoc(info.DAG)
	today := time.Now().In(loc)
	from := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, loc).AddDate(0, 0, -7*calWeeks)
	runs, err := s.backend.Store().RunsSince(info.DAG.ID, from)
	if err != nil {
		return err
	}
	return s.renderDAGTab(c, http.StatusOK, info, "calendar", layoutCalendar(runs, today, loc))
}
