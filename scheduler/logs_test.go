package scheduler

import (
	"os"
	"regexp"
	"testing"

	"github.com/kilnhq/kiln/internal/wire"
)

// TestLogNoteKeptFromLaterChunks: a note of Kiln's written while the worker
// still sends (a cancel, a lost heartbeat) is not overwritten by the
// worker's later chunks, which follow it; a redelivered early chunk
// changes nothing.
func TestLogNoteKeptFromLaterChunks(t *testing.T) {
	l := &logStore{dir: t.TempDir(), limit: 1 << 20}
	k := wire.TryKey{DAGID: "d", RunID: "r", TaskID: "t", Try: 1}
	write := func(off int64, s string) {
		t.Helper()
		if err := l.write(k, off, []byte(s)); err != nil {
			t.Fatal(err)
		}
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
