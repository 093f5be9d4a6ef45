package ui

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/store"
)

// The charts tab of a DAG draws its recent runs three ways, server-side as
// SVG like the Gantt chart: how long each run took, how long each of its
// longest tasks took, and when each run landed — how long after its data
// interval ended it finished. Runs are slots left to right, oldest first;
// the y axis is a duration from 0. layoutBars and layoutLines are pure
// functions of the values, tested with tables.

// Sizes of a chart, in SVG user units; the SVG scales to the page.
const (
	chartW     = 960.0
	chartH     = 240.0
	chartLeft  = 64.0 // the y axis' labels
	chartRight = 12.0
	chartTop   = 12.0
	chartBase  = 36.0 // the x axis' labels below the plot
	// chartMaxXLabels bounds the run dates written under the x axis.
	chartMaxXLabels = 10
	// chartMaxLines is how many tasks the task-duration chart draws: the
	// longest on average.
	chartMaxLines = 10
)

// chart is a laid-out chart: axes, and bars or lines.
type chart struct {
	ID, Label string // the SVG's id and its description

	Width, Height          px
	PlotX, PlotY           px // the plot's top left corner
	PlotW, PlotH, PlotBase px // PlotBase is the y of the x axis
	YTicks                 []chartTick
	XLabels                []chartTick
	Bars                   []chartBar
	Lines                  []chartLine
	Empty                  bool // nothing to draw
}

// chartTick is a label on an axis, and where it goes.
type chartTick struct {
	X, Y  px
	Label string
}

// chartBar is one run's bar.
type chartBar struct {
	X, Y, W, H  px
	State, Href string
	Title       string
}

// chartLine is one task's durations over the runs.
type chartLine struct {
	TaskID string
	Series int // the colour: 0 to chartMaxLines-1
	Points string
	Dots   []chartBar // a dot per run the task ran in: X, Y, Title
}

// chartRun is a run as the charts see it: a slot on the x axis.
type chartRun struct {
	RunID, Href, State string
	LogicalDate        time.Time
}

// chartValue is a duration to plot for a run; ok false when it has none.
type chartValue struct {
	D  time.Duration
	OK bool
}

// niceSteps are the steps the y axis may take.
var niceSteps = []time.Duration{
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// yStep is the step of a duration axis reaching at least top with at most
// five steps.
func yStep(top time.Duration) time.Duration {
	for _, s := range niceSteps {
		if top <= 5*s {
			return s
		}
	}
	days := (top + 5*24*time.Hour - 1) / (5 * 24 * time.Hour)
	return days * 24 * time.Hour
}

// shortDuration labels the y axis: 30s, 5m, 1h30m, 2d.
func shortDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0"
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d%(24*time.Hour) == 0:
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/time.Hour)) + "h" + strconv.Itoa(int(d%time.Hour/time.Minute)) + "m"
}

// newChart lays out the axes for runs and values up to top; the runs'
// logical dates are written in UTC, as the grid writes them.
func newChart(runs []chartRun, top time.Duration) (chart, time.Duration) {
	c := chart{
		Width: chartW, Height: chartH,
		PlotX: chartLeft, PlotY: chartTop,
		PlotW: chartW - chartLeft - chartRight, PlotH: chartH - chartTop - chartBase,
	}
	c.PlotBase = c.PlotY + c.PlotH
	step := yStep(max(top, time.Second))
	axisTop := step * ((max(top, time.Second) + step - 1) / step)
	for v := time.Duration(0); v <= axisTop; v += step {
		c.YTicks = append(c.YTicks, chartTick{X: c.PlotX - 6, Y: c.y(v, axisTop), Label: shortDuration(v)})
	}
	every := max(1, (len(runs)+chartMaxXLabels-1)/chartMaxXLabels)
	for i, r := range runs {
		if i%every == 0 {
			c.XLabels = append(c.XLabels, chartTick{X: c.slotX(i, len(runs)), Y: c.PlotBase + 16, Label: r.LogicalDate.UTC().Format("01-02 15:04")})
		}
	}
	return c, axisTop
}

// slotX is the centre of run i's slot of n.
func (c *chart) slotX(i, n int) px {
	return c.PlotX + c.PlotW*(px(i)+0.5)/px(n)
}

// y is where a value goes on an axis reaching top.
func (c *chart) y(v, top time.Duration) px {
	return c.PlotBase - c.PlotH*px(float64(v)/float64(top))
}

// layoutBars draws a bar per run, as tall as its value; a run without a
// value has no bar.
func layoutBars(runs []chartRun, values []chartValue, what string) chart {
	var top time.Duration
	for _, v := range values {
		if v.OK {
			top = max(top, v.D)
		}
	}
	c, axisTop := newChart(runs, top)
	slot := c.PlotW / px(max(len(runs), 1))
	for i, r := range runs {
		v := values[i]
		if !v.OK {
			continue
		}
		y := c.y(v.D, axisTop)
		c.Bars = append(c.Bars, chartBar{
			X: c.slotX(i, len(runs)) - slot*0.35, W: slot * 0.7,
			Y: y, H: max(c.PlotBase-y, 1),
			State: r.State, Href: r.Href,
			Title: r.RunID + " · " + what + " " + durationText(v.D),
		})
	}
	c.Empty = len(c.Bars) == 0
	return c
}

// taskSeries is one task's durations over the runs.
type taskSeries struct {
	TaskID string
	Values []chartValue
}

// layoutLines draws a line per task over the runs, for the tasks with the
// longest mean duration (at most chartMaxLines), longest first. The
// second result is how many tasks with durations were left out.
func layoutLines(runs []chartRun, series []taskSeries) (chart, int) {
	type ranked struct {
		s    taskSeries
		mean time.Duration
	}
	var all []ranked
	for _, s := range series {
		var sum time.Duration
		n := 0
		for _, v := range s.Values {
			if v.OK {
				sum += v.D
				n++
			}
		}
		if n > 0 {
			all = append(all, ranked{s, sum / time.Duration(n)})
		}
	}
	slices.SortStableFunc(all, func(a, b ranked) int { return cmp.Compare(b.mean, a.mean) })
	left := max(0, len(all)-chartMaxLines)
	all = all[:len(all)-left]
	var top time.Duration
	for _, r := range all {
		for _, v := range r.s.Values {
			if v.OK {
				top = max(top, v.D)
			}
		}
	}
	c, axisTop := newChart(runs, top)
	for k, r := range all {
		line := chartLine{TaskID: r.s.TaskID, Series: k}
		var pts []byte
		for i, v := range r.s.Values {
			if !v.OK {
				continue
			}
			x, y := c.slotX(i, len(runs)), c.y(v.D, axisTop)
			if len(pts) > 0 {
				pts = append(pts, ' ')
			}
			pts = append(append(append(pts, x.String()...), ','), y.String()...)
			line.Dots = append(line.Dots, chartBar{X: x, Y: y, Href: runs[i].Href + "?task=" + url.QueryEscape(r.s.TaskID),
				Title: r.s.TaskID + " in " + runs[i].RunID + " · " + durationText(v.D)})
		}
		line.Points = string(pts)
		c.Lines = append(c.Lines, line)
	}
	c.Empty = len(c.Lines) == 0
	return c, left
}

// runDuration is how long a run ran: start to end; none before it ended.
func runDuration(r *store.Run) chartValue {
	if r.StartDate == nil || r.EndDate == nil {
		return chartValue{}
	}
	return chartValue{max(r.EndDate.Sub(*r.StartDate), 0), true}
}

// landingTime is how long after its data interval ended a run finished;
// none before it ended.
func landingTime(r *store.Run) chartValue {
	if r.EndDate == nil {
		return chartValue{}
	}
	return chartValue{max(r.EndDate.Sub(r.DataIntervalEnd), 0), true}
}

// taskDuration is how long a task instance ran; none unless it started and
// ended.
func taskDuration(d *store.TaskDigest) chartValue {
	if d == nil || d.StartDate.IsZero() || d.EndDate.IsZero() {
		return chartValue{}
	}
	return chartValue{max(d.EndDate.Sub(d.StartDate), 0), true}
}
