package ui

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/store"
)

var g0 = time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) *time.Time { t := g0.Add(d); return &t }

func try(n int, state store.TaskState, queued time.Duration, start, end *time.Time) *store.Try {
	return &store.Try{MapIndex: store.NoMapIndex, Number: n, State: state, QueuedAt: g0.Add(queued), StartDate: start, EndDate: end}
}

// bar is a ganttBar without its title, rounded to a tenth of a pixel.
type bar struct {
	Try         int
	Kind, State string
	X, W        float64
}

func bars(r ganttRow) []bar {
	var out []bar
	for _, b := range r.Bars {
		out = append(out, bar{b.Try, b.Kind, b.State, round(float64(b.X)), round(float64(b.W))})
	}
	return out
}

func round(f float64) float64 { return math.Round(f*10) / 10 }

func TestLayoutGanttBars(t *testing.T) {
	const x0, w = ganttLabelW, ganttW - ganttLabelW - ganttPadR // 190, 758
	tests := []struct {
		name  string
		tries []*store.Try
		now   time.Duration
		want  []bar
	}{{
		name:  "one try: waited 10s of 80s, then ran",
		tries: []*store.Try{try(1, store.TaskSuccess, 0, at(10*time.Second), at(80*time.Second))},
		now:   time.Hour,
		want: []bar{
			{1, "queue", "success", x0, round(w / 8)},
			{1, "run", "success", round(x0 + w/8), round(w * 7 / 8)},
		},
	}, {
		name:  "a running try ends now",
		tries: []*store.Try{try(1, store.TaskRunning, 0, at(20*time.Second), nil)},
		now:   40 * time.Second,
		want: []bar{
			{1, "queue", "running", x0, round(w / 2)},
			{1, "run", "running", round(x0 + w/2), round(w / 2)},
		},
	}, {
		name:  "a try still queued waits until now",
		tries: []*store.Try{try(1, store.TaskQueued, 0, nil, nil)},
		now:   30 * time.Second,
		want:  []bar{{1, "queue", "queued", x0, w}},
	}, {
		name: "a retry: try 1 failed, try 2 ran after the retry delay",
		tries: []*store.Try{
			try(1, store.TaskFailed, 0, at(0), at(10*time.Second)),
			try(2, store.TaskSuccess, 30*time.Second, at(30*time.Second), at(40*time.Second)),
		},
		now: time.Hour,
		// Started the moment it was queued: no wait to draw.
		want: []bar{
			{1, "run", "failed", x0, round(w / 4)},
			{2, "run", "success", round(x0 + w*3/4), round(w / 4)},
		},
	}, {
		name: "a bar too short to see is drawn 1.5 wide",
		tries: []*store.Try{
			try(1, store.TaskSuccess, 0, at(0), at(time.Millisecond)),
			try(2, store.TaskSuccess, time.Hour, at(time.Hour), at(2*time.Hour)),
		},
		now: 3 * time.Hour,
		want: []bar{
			{1, "run", "success", x0, ganttMinBar},
			{2, "run", "success", round(x0 + w/2), round(w / 2)},
		},
	}, {
		name:  "marked while queued: ended without starting",
		tries: []*store.Try{try(1, store.TaskSuccess, 0, nil, at(5*time.Second))},
		now:   time.Hour,
		want:  []bar{{1, "queue", "success", x0, w}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := layoutGantt([]ganttInput{{TaskID: "t", Tries: tc.tries}}, g0.Add(tc.now))
			if g.Empty {
				t.Fatal("Empty = true with tries")
			}
			if diff := cmp.Diff(tc.want, bars(g.Rows[0])); diff != "" {
				t.Errorf("bars (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLayoutGanttRowsAndAxis(t *testing.T) {
	rows := []ganttInput{
		{TaskID: "extract", Href: "/x?task=extract", Tries: []*store.Try{try(1, store.TaskSuccess, 0, at(5*time.Second), at(20*time.Second))}},
		{TaskID: "a_task_id_that_is_far_too_long_to_show_whole", Selected: true},
		{TaskID: "load", Tries: []*store.Try{try(1, store.TaskRunning, 20*time.Second, at(21*time.Second), nil)}},
	}
	g := layoutGantt(rows, g0.Add(70*time.Second))
	if g.Width != ganttW || g.Height != ganttAxisH+3*ganttRowH+4 {
		t.Errorf("size = %v x %v", g.Width, g.Height)
	}
	if !g.Start.Equal(g0) || !g.End.Equal(g0.Add(70*time.Second)) {
		t.Errorf("axis = %s .. %s, want the first queueing to now", g.Start, g.End)
	}
	for i, r := range g.Rows {
		if want := px(ganttAxisH + float64(i)*ganttRowH); r.Y != want {
			t.Errorf("row %d at y %v, want %v", i, r.Y, want)
		}
		if r.BarY <= r.Y || r.BarY+r.BarH >= r.Y+r.H {
			t.Errorf("row %d: bars at %v+%v outside the row %v+%v", i, r.BarY, r.BarH, r.Y, r.H)
		}
	}
	if r := g.Rows[1]; len(r.Bars) != 0 || !r.Selected || r.Label != "a_task_id_that_is_far_too…" || r.TaskID != rows[1].TaskID {
		t.Errorf("row without tries = %+v", r)
	}
	if g.Rows[0].Href != "/x?task=extract" {
		t.Errorf("href = %q", g.Rows[0].Href)
	}
	// 70 s: a tick every 10 s, at round times, the first at the start.
	var labels []string
	for i, tk := range g.Ticks {
		labels = append(labels, tk.Label)
		if want := round(ganttLabelW + float64(i)*(ganttW-ganttLabelW-ganttPadR)/7); round(float64(tk.X)) != want {
			t.Errorf("tick %s at %v, want %v", tk.Label, tk.X, want)
		}
	}
	if got := strings.Join(labels, " "); got != "12:00:00 12:00:10 12:00:20 12:00:30 12:00:40 12:00:50 12:01:00 12:01:10" {
		t.Errorf("ticks = %s", got)
	}
	if title := g.Rows[2].Bars[1].Title; title != "try 1 · running · waited 1.0s · running for 49.0s" {
		t.Errorf("title = %q", title)
	}
}

func TestGanttTicks(t *testing.T) {
	tests := []struct {
		start time.Time
		span  time.Duration
		want  string
	}{
		{g0.Add(3500 * time.Millisecond), 4 * time.Second, "12:00:04 12:00:05 12:00:06 12:00:07"},
		{g0.Add(17 * time.Minute), 50 * time.Minute, "12:20 12:30 12:40 12:50 13:00"},
		{g0.Add(8 * time.Hour), 10 * time.Hour, "20:00 22:00 Mar 11 00:00 02:00 04:00 06:00"},
		// Past the steps: whole days, as many as it takes.
		{g0, 30 * 24 * time.Hour, "Mar 14 Mar 18 Mar 22 Mar 26 Mar 30 Apr 3 Apr 7"},
	}
	for _, tc := range tests {
		ticks := ganttTicks(tc.start, tc.start.Add(tc.span), func(time.Time) px { return 0 })
		var labels []string
		for _, tk := range ticks {
			labels = append(labels, tk.Label)
		}
		if got := strings.Join(labels, " "); got != tc.want {
			t.Errorf("ticks over %s from %s = %s, want %s", tc.span, tc.start.Format(time.TimeOnly), got, tc.want)
		}
		if len(ticks) > ganttMaxTicks {
			t.Errorf("%d ticks over %s, want at most %d", len(ticks), tc.span, ganttMaxTicks)
		}
	}
}

func TestLayoutGanttEmpty(t *testing.T) {
	g := layoutGantt([]ganttInput{{TaskID: "a"}, {TaskID: "b"}}, g0)
	if !g.Empty || len(g.Ticks) != 0 || len(g.Rows) != 2 || len(g.Rows[0].Bars) != 0 {
		t.Errorf("layout of a run without tries = %+v", g)
	}
	if g := layoutGantt(nil, g0); !g.Empty || g.Height != ganttAxisH+4 {
		t.Errorf("layout of no task = %+v", g)
	}
}

func TestPxPrintsOneDecimal(t *testing.T) {
	for in, want := range map[px]string{0: "0.0", 1.25: "1.2", 190: "190.0", 12.345: "12.3"} {
		if got := in.String(); got != want {
			t.Errorf("px(%v) = %q, want %q", float64(in), got, want)
		}
	}
}
