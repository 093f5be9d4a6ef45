package scheduler_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/scheduler"
)

// logBuffer collects a slog text log for a test to read while it grows.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines are the log lines holding every one of parts.
func (b *logBuffer) lines(parts ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			out = append(out, line)
		}
	}
	return out
}

// TestE2EServerLog follows the server log through the life of DAGs, runs,
// a backfill and a worker: one line each, at info level (warn for a file
// that broke), and none per task.
func TestE2EServerLog(t *testing.T) {
	var lb logBuffer
	logger := slog.New(slog.NewTextHandler(&lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	today := time.Now().UTC().Truncate(24 * time.Hour)
	e := start(t, map[string]string{"daily": dailyDAGFrom(30, "never")}, options{workers: 1, logger: logger})
	waitLine := func(parts ...string) {
		t.Helper()
		e.waitFor(strings.Join(parts, " "), 30*time.Second, func() bool { return len(lb.lines(parts...)) > 0 })
	}
	waitLine(`msg="DAGs loaded"`, "dags=1", "broken_files=0")

	r := e.trigger("daily", nil)
	e.waitRun(r, 30*time.Second)
	waitLine(`msg="run created"`, "dag=daily", "run="+r.RunID, "type=manual")
	waitLine(`msg="run ended"`, "dag=daily", "run="+r.RunID, "state=success", "duration=")
	waitLine(`msg="worker seen"`, "worker=w0")

	bf, err := e.s.Backfill(context.Background(), "daily", scheduler.BackfillRequest{From: today.AddDate(0, 0, -3), To: today.AddDate(0, 0, -2)})
	if err != nil {
		t.Fatal(err)
	}
	e.waitBackfill(bf.ID, 60*time.Second)
	waitLine(`msg="backfill started"`, "backfill="+bf.ID, "dag=daily", "dates=2")
	waitLine(`msg="backfill ended"`, "backfill="+bf.ID, "state=success", "success=2")

	e.writeDAG("hello", "tasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n")
	waitLine(`msg="DAG added"`, "dag=hello", "file=hello.yaml")
	e.writeDAG("hello", "tasks: [{id: b, plugin: shell, with: {command: 'true'}}]\n")
	waitLine(`msg="DAG changed"`, "dag=hello")
	e.writeDAG("hello", "tasks: [{id: b, plugin: shell, with: {comand: 'true'}}]\n")
	waitLine("level=WARN", `msg="DAG file broken"`, "file=hello.yaml", "errors=2", `first="hello.yaml:1:`, "last_good_kept=true")
	if err := os.Remove(filepath.Join(e.dagsDir, "hello.yaml")); err != nil {
		t.Fatal(err)
	}
	waitLine(`msg="DAG removed"`, "dag=hello")

	if n := len(lb.lines("worker seen")); n != 1 {
		t.Errorf("%d worker seen lines, want 1:\n%s", n, lb.lines())
	}
	if n := len(lb.lines("task=")); n != 0 {
		t.Errorf("%d lines name a task, want none:\n%s", n, lb.lines("task="))
	}
}
