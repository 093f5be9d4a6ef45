package logtimes

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestAppendAndStamp(t *testing.T) {
	log := filepath.Join(t.TempDir(), "1.log")
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	for _, r := range []struct {
		off int64
		at  time.Time
	}{
		{0, t0},
		{4, t0.Add(300 * time.Millisecond)}, // the same second: not kept
		{8, t0.Add(2 * time.Second)},
		{4, t0.Add(3 * time.Second)}, // sent again: the first receipt counts
		{14, t0.Add(5 * time.Second)},
	} {
		if err := Append(log, r.off, r.at); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := os.Stat(log + Suffix); err != nil || st.Size() != 3*recordSize {
		t.Fatalf("times file: %v, %v; want 3 records", st, err)
	}
	ix, err := Open(log)
	if err != nil {
		t.Fatal(err)
	}
	text := "a\nb\nccc\ndd\nee\nf"
	got := string(NewStamper(ix, true).Stamp(nil, []byte(text), 0))
	want := "2026-03-01T02:00:00Z a\n2026-03-01T02:00:00Z b\n2026-03-01T02:00:00Z ccc\n" +
		"2026-03-01T02:00:02Z dd\n2026-03-01T02:00:02Z ee\n2026-03-01T02:00:05Z f"
	if got != want {
		t.Errorf("stamped:\n%s\nwant:\n%s", got, want)
	}

	// Pieces read one after another: a line split between them is
	// stamped once; a piece read from the middle of a line has no stamp
	// at its start.
	s := NewStamper(ix, false)
	out := s.Stamp(nil, []byte("cc\nd"), 5)
	out = s.Stamp(out, []byte("d\nee"), 9)
	if want := "cc\n2026-03-01T02:00:02Z dd\n2026-03-01T02:00:02Z ee"; string(out) != want {
		t.Errorf("pieces stamped %q, want %q", out, want)
	}

	// More records arrive while a reader follows.
	if err := Append(log, 20, t0.Add(9*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := ix.Update(); err != nil {
		t.Fatal(err)
	}
	if at, ok := ix.At(25); !ok || !at.Equal(t0.Add(9*time.Second)) {
		t.Errorf("At(25) = %v, %v after Update", at, ok)
	}
}

func TestNoTimes(t *testing.T) {
	ix, err := Open(filepath.Join(t.TempDir(), "old.log"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ix.At(0); ok {
		t.Error("a log without a times file has a time")
	}
	blank := "                     " // Width spaces
	if got := string(NewStamper(ix, true).Stamp(nil, []byte("a\nb\n"), 0)); got != blank+"a\n"+blank+"b\n" {
		t.Errorf("stamped %q", got)
	}
}
