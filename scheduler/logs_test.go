package scheduler

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/logtimes"
	"github.com/kilnhq/kiln/internal/wire"
)

// TestLogNoteKeptFromLaterChunks: a note of Kiln's written while the worker
// still sends (a cancel, a lost heartbeat) is not overwritten by the
// worker's later chunks, which follow it; a redelivered early chunk
// changes nothing.
func TestLogNoteKeptFromLaterChunks(t *testing.T) {
	l := &logStore{dir: t.TempDir(), limit: 1 << 20}
	k := wire.TryKey{DAGID: "d", RunID: "r", TaskID: "t", Try: 1}
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	sec := 0
	write := func(off int64, s string) {
		t.Helper()
		if err := l.write(k, off, []byte(s), t0.Add(time.Duration(sec)*time.Second)); err != nil {
			t.Fatal(err)
		}
		sec++
	}
	write(0, "line 1\n")
	l.note(k, "cancelled by a clear")
	write(0, "line 1\n")              // redelivered
	write(7, "line 2\nkiln: task ca") // the worker's last chunks
	write(7, "line 2\nkiln: task ca") // redelivered
	write(27, "ncelled\n")
	got, _ := os.ReadFile(l.path(k))
	want := regexp.MustCompile(`^line 1\n\[kiln [^\]]+\] cancelled by a clear\nline 2\nkiln: task cancelled\n$`)
	if !want.Match(got) {
		t.Errorf("log = %q", got)
	}
	// Each line has the time its first byte came: the note its own, the
	// chunks after it theirs, not their redeliveries'.
	ix, err := logtimes.Open(l.path(k))
	if err != nil {
		t.Fatal(err)
	}
	var stamps []string
	for line := range strings.Lines(string(logtimes.NewStamper(ix, true).Stamp(nil, got, 0))) {
		stamps = append(stamps, line[:logtimes.Width-1])
	}
	if len(stamps) != 4 || stamps[0] != "2026-03-01T02:00:00Z" || stamps[1] == stamps[0] ||
		stamps[2] != "2026-03-01T02:00:02Z" || stamps[3] != stamps[2] {
		t.Errorf("line times = %q", stamps)
	}
	l.finished(k)
	if len(l.workerEnd) != 0 {
		t.Errorf("workerEnd not forgotten: %v", l.workerEnd)
	}
}

// TestLogNoteIdleKeepsNothing: a note on a try no worker runs (a template
// error, a dag_sensor's poke) is appended without being remembered, so the
// notes of such tries do not pile up for the life of the process.
func TestLogNoteIdleKeepsNothing(t *testing.T) {
	l := &logStore{dir: t.TempDir(), limit: 1 << 20}
	k := wire.TryKey{DAGID: "d", RunID: "r", TaskID: "t", Try: 1}
	l.noteIdle(k, "rendering the task: boom")
	l.noteIdle(k, "poke 2: not yet")
	if len(l.workerEnd) != 0 {
		t.Errorf("workerEnd = %v, want empty", l.workerEnd)
	}
	got, _ := os.ReadFile(l.path(k))
	want := regexp.MustCompile(`^\[kiln [^\]]+\] rendering the task: boom\n\[kiln [^\]]+\] poke 2: not yet\n$`)
	if !want.Match(got) {
		t.Errorf("log = %q", got)
	}
}
