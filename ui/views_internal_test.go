package ui

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

func TestReadLogLines(t *testing.T) {
	long := strings.Repeat("x", 3000)
	for _, tc := range []struct {
		name, log, want string
	}{
		{"empty", "", ""},
		{"fewer lines", "a\r\nb\n", "a\nb"},
		{"last three", "1\n2\n3\n4\n5\n", "3\n4\n5"},
		{"no final newline", "1\n2\n3\n4", "2\n3\n4"},
		{"a cut line is left out", long + "\nend\n", "end"},
		{"unless it is the only one", long, long[len(long)-100:]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "1.log")
			if err := os.WriteFile(path, []byte(tc.log), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readLogLines(path, 3, 100)
			if err != nil || got != tc.want {
				t.Errorf("readLogLines = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if got, err := readLogLines(filepath.Join(t.TempDir(), "none.log"), 3, 100); got != "" || err != nil {
		t.Errorf("missing file: %q, %v", got, err)
	}
}

func TestRunBarHeights(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	runs := []*store.Run{
		{StartDate: at(0), EndDate: at(10 * time.Minute)}, // the longest
		{StartDate: at(0), EndDate: at(5 * time.Minute)},
		{},                 // not started
		{StartDate: at(0)}, // running for 1m so far
	}
	bars := make([]gridRun, len(runs))
	runBarHeights(bars, runs, t0.Add(time.Minute))
	var got []int
	for _, b := range bars {
		got = append(got, b.BarH)
	}
	if want := []int{maxRunBar, minRunBar + (maxRunBar-minRunBar)/2, minRunBar, minRunBar + (maxRunBar-minRunBar)/10}; !slices.Equal(got, want) {
		t.Errorf("heights = %v, want %v", got, want)
	}
}

func TestLayoutCalendar(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	today := time.Date(2026, 3, 4, 15, 0, 0, 0, berlin) // a Wednesday
	runs := []store.RunDigest{
		// 23:30 UTC on the 2nd is the 3rd in Berlin.
		{LogicalDate: time.Date(2026, 3, 2, 23, 30, 0, 0, time.UTC), State: store.RunSuccess},
		{LogicalDate: time.Date(2026, 3, 3, 8, 0, 0, 0, time.UTC), State: store.RunFailed},
		{LogicalDate: time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC), State: store.RunSuccess},
		{LogicalDate: time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC), State: store.RunRunning},
	}
	v := layoutCalendar(runs, today, berlin)
	if n := len(v.Days); n != 52*7+3 {
		t.Fatalf("%d days, want 52 weeks and Monday to Wednesday", n)
	}
	if v.To != "2026-03-04" || v.From != "2025-03-03" {
		t.Errorf("from %s to %s", v.From, v.To)
	}
	states := map[string]string{}
	for _, d := range v.Days {
		states[d.Date] = d.State
	}
	for date, want := range map[string]string{"2026-03-02": "none", "2026-03-03": "failed", "2026-03-04": "running", "2026-03-01": "none"} {
		if states[date] != want {
			t.Errorf("%s = %s, want %s", date, states[date], want)
		}
	}
	last := v.Days[len(v.Days)-1]
	if last.Title != "2026-03-04 · 2 runs: 1 success, 1 queued or running" || last.Y != px(calMonthH+2*calStep) {
		t.Errorf("today = %+v", last)
	}
}

func TestChartLayout(t *testing.T) {
	for _, tc := range []struct {
		top  time.Duration
		step time.Duration
	}{
		{3 * time.Second, time.Second},
		{40 * time.Second, 10 * time.Second},
		{7 * time.Minute, 2 * time.Minute},
		{5 * time.Hour, time.Hour},
		{10 * 24 * time.Hour, 2 * 24 * time.Hour},
	} {
		if got := yStep(tc.top); got != tc.step {
			t.Errorf("yStep(%v) = %v, want %v", tc.top, got, tc.step)
		}
	}
	for d, want := range map[time.Duration]string{0: "0", 30 * time.Second: "30s", 5 * time.Minute: "5m", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 48 * time.Hour: "2d"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}

	runs := []chartRun{{RunID: "r1", State: "success"}, {RunID: "r2", State: "failed"}, {RunID: "r3", State: "running"}}
	bars := layoutBars(runs, []chartValue{{time.Minute, true}, {2 * time.Minute, true}, {}}, "ran")
	if len(bars.Bars) != 2 || bars.Bars[1].H != bars.PlotH || bars.Bars[0].H != bars.PlotH/2 {
		t.Errorf("bars = %+v (plot height %v)", bars.Bars, bars.PlotH)
	}
	if bars.Bars[1].Title != "r2 · ran 2m 0s" {
		t.Errorf("title = %q", bars.Bars[1].Title)
	}

	// Twelve tasks: the ten longest on average are drawn, longest first.
	var series []taskSeries
	for i := range 12 {
		series = append(series, taskSeries{TaskID: "t" + strconv.Itoa(i), Values: []chartValue{{time.Duration(i+1) * time.Second, true}, {}, {time.Duration(i+1) * time.Second, true}}})
	}
	lines, left := layoutLines(runs, series)
	if left != 2 || len(lines.Lines) != 10 || lines.Lines[0].TaskID != "t11" || len(lines.Lines[0].Dots) != 2 {
		t.Errorf("lines: %d drawn, first %s with %d dots, %d left out", len(lines.Lines), lines.Lines[0].TaskID, len(lines.Lines[0].Dots), left)
	}
}
