package ui

import (
	"os"
	"path/filepath"
	"slices"
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
