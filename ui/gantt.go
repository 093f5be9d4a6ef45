package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/kiln/store"
)

// The run page draws its tries on a Gantt chart: one row per task, time
// running left to right, and for each try a bar in two parts, the time it
// waited in the queue (lighter) and the time it ran, coloured by the try's
// state. A try still queued or running ends at now, so the chart grows
// while the page is open. layoutGantt is a pure function of the tries and
// the time, tested with tables; the template only places what it returns.

// Sizes of the chart, in SVG user units (pixels); the SVG scales to the
// page's width.
const (
	ganttW      = 960.0 // the whole chart
	ganttLabelW = 190.0 // the task names on the left
	ganttAxisH  = 22.0  // the time axis on top
	ganttRowH   = 24.0
	ganttBarH   = 14.0
	ganttPadR   = 12.0 // so that the last tick's label fits
	ganttMinBar = 1.5  // a bar never shrinks out of sight
	// ganttMaxTicks bounds the time axis' ticks.
	ganttMaxTicks = 8
	// ganttLabelChars is where a long task id is cut.
	ganttLabelChars = 26
)

// ganttInput is one row to draw: a task and its tries, by try number. A
// mapped task's row has Instances set and one span for Tries, from its
// expansion to its end (mappedSpan).
type ganttInput struct {
	TaskID    string
	Href      string // where the row's label leads
	Selected  bool
	Tries     []*store.Try
	Instances int
}

// px is a coordinate or length in the chart; templates print it with
// one decimal.
type px float64

func (p px) String() string { return strconv.FormatFloat(float64(p), 'f', 1, 64) }

// ganttChart is a laid-out Gantt chart.
type ganttChart struct {
	Width, Height px
	// PlotX is where the time axis starts (after the labels); PlotW its
	// length.
	PlotX, PlotW px
	// TickY is where the ticks' lines start, below their labels.
	TickY px
	Rows  []ganttRow
	Ticks []ganttTick
	// Start and End are the times at the axis' ends.
	Start, End time.Time
	// Empty is true when no try was queued yet: there is nothing to draw
	// but the rows.
	Empty bool
}

// ganttRow is one task.
type ganttRow struct {
	TaskID, Label, Href string
	Selected            bool
	Y, H                px // the row's top and height
	TextY               px // its label's baseline
	BarY, BarH          px // its bars' top and height
	Bars                []ganttBar
}

// ganttBar is one part of a try: Kind "queue" (waiting for a worker) or
// "run".
type ganttBar struct {
	Try   int
	Kind  string
	State string
	X, W  px
	Title string
}

// ganttTick is a mark on the time axis.
type ganttTick struct {
	X     px
	Label string
}

// layoutGantt lays out rows, in the order given, on a time axis from the
// first try's queueing to the last one's end, or now for tries that have
// not ended.
func layoutGantt(rows []ganttInput, now time.Time) ganttChart {
	g := ganttChart{
		Width:  ganttW,
		Height: px(ganttAxisH + float64(len(rows))*ganttRowH + 4),
		PlotX:  ganttLabelW,
		PlotW:  ganttW - ganttLabelW - ganttPadR,
		TickY:  ganttAxisH - 5,
		Rows:   make([]ganttRow, len(rows)),
	}
	first := true
	for _, r := range rows {
		for _, tr := range r.Tries {
			qs, qe, _, re := trySpans(tr, now)
			if qs.IsZero() {
				continue
			}
			end := qe
			if re.After(end) {
				end = re
			}
			if first || qs.Before(g.Start) {
				g.Start = qs
			}
			if first || end.After(g.End) {
				g.End = end
			}
			first = false
		}
	}
	g.Empty = first
	if g.Empty {
		g.Start, g.End = now, now.Add(time.Minute)
	}
	if g.End.Sub(g.Start) < time.Second {
		g.End = g.Start.Add(time.Second)
	}
	span := float64(g.End.Sub(g.Start))
	x := func(t time.Time) px { return g.PlotX + px(float64(t.Sub(g.Start))/span)*g.PlotW }
	for i, r := range rows {
		row := ganttRow{
			TaskID:   r.TaskID,
			Label:    cutLabel(r.TaskID, ganttLabelChars),
			Href:     r.Href,
			Selected: r.Selected,
			Y:        px(ganttAxisH + float64(i)*ganttRowH),
			H:        ganttRowH,
			BarH:     ganttBarH,
		}
		row.BarY = row.Y + (ganttRowH-ganttBarH)/2
		row.TextY = row.Y + ganttRowH/2 + 4
		for _, tr := range r.Tries {
			qs, qe, rs, re := trySpans(tr, now)
			if qs.IsZero() {
				continue
			}
			what := fmt.Sprintf("try %d", tr.Number)
			if r.Instances > 0 {
				what = instancesText(r.Instances)
			}
			title := tryTitle(what, tr, qs, qe, rs, re)
			if qe.After(qs) || rs.IsZero() {
				row.Bars = append(row.Bars, ganttBar{Try: tr.Number, Kind: "queue", State: string(tr.State),
					X: x(qs), W: max(x(qe)-x(qs), ganttMinBar), Title: title})
			}
			if !rs.IsZero() {
				row.Bars = append(row.Bars, ganttBar{Try: tr.Number, Kind: "run", State: string(tr.State),
					X: x(rs), W: max(x(re)-x(rs), ganttMinBar), Title: title})
			}
		}
		g.Rows[i] = row
	}
	if !g.Empty {
		g.Ticks = ganttTicks(g.Start, g.End, x)
	}
	return g
}

// trySpans returns when a try was queued and started waiting, when it
// stopped waiting, and when it ran (rs is zero for a try that never
// started). A try that has not ended ends now.
func trySpans(tr *store.Try, now time.Time) (qs, qe, rs, re time.Time) {
	end := now
	if tr.EndDate != nil {
		end = *tr.EndDate
	} else if tr.State.Finished() {
		end = time.Time{} // ended without an end date: draw no more than is known
	}
	qs = tr.QueuedAt
	if tr.StartDate != nil {
		rs = *tr.StartDate
		if qs.IsZero() || qs.After(rs) {
			qs = rs
		}
		qe = rs
		re = end
		if re.Before(rs) {
			re = rs
		}
		return qs, qe, rs, re
	}
	qe = end
	if qe.Before(qs) {
		qe = qs
	}
	return qs, qe, time.Time{}, time.Time{}
}

// tryTitle is a bar's tooltip: "try 2 · success · waited 3.1s · ran 1m 2s",
// what being "try 2".
func tryTitle(what string, tr *store.Try, qs, qe, rs, re time.Time) string {
	parts := []string{what, string(tr.State)}
	if !qs.IsZero() {
		parts = append(parts, "waited "+durationText(qe.Sub(qs)))
	}
	if !rs.IsZero() {
		verb := "ran "
		if !tr.State.Finished() {
			verb = "running for "
		}
		parts = append(parts, verb+durationText(re.Sub(rs)))
	}
	return strings.Join(parts, " · ")
}

// ganttSteps are the tick intervals the axis may use, smallest first.
var ganttSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// ganttTicks marks the axis from start to end at the smallest step that
// needs at most ganttMaxTicks marks, each at a round UTC time.
func ganttTicks(start, end time.Time, x func(time.Time) px) []ganttTick {
	span := end.Sub(start)
	step := ganttSteps[len(ganttSteps)-1]
	for _, s := range ganttSteps {
		if span/s < ganttMaxTicks {
			step = s
			break
		}
	}
	for span/step >= ganttMaxTicks { // longer than the steps go: whole days
		step += 24 * time.Hour
	}
	t := start.UTC().Truncate(step)
	if t.Before(start) {
		t = t.Add(step)
	}
	var ticks []ganttTick
	lastDay := ""
	for ; !t.After(end); t = t.Add(step) {
		day := t.Format("Jan 2")
		var label string
		switch {
		case step >= 24*time.Hour:
			label = day
		case step < time.Minute:
			label = t.Format("15:04:05")
		default:
			label = t.Format("15:04")
		}
		if step < 24*time.Hour && lastDay != "" && day != lastDay {
			label = day + " " + label
		}
		lastDay = day
		ticks = append(ticks, ganttTick{X: x(t), Label: label})
	}
	return ticks
}

// cutLabel shortens s to n characters, ending with "…" when cut.
func cutLabel(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
