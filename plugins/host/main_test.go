package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/plugins/host"
)

// The real kiln binary, whose `kiln plugin shell` is the shell plugin, and
// the crashing test plugin; TestMain builds both.
var kilnExe, crashExe string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kiln-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	kilnExe = filepath.Join(dir, "kiln")
	crashExe = filepath.Join(dir, "crashplugin")
	for exe, pkg := range map[string]string{
		kilnExe:  "github.com/kilnhq/kiln/cmd/kiln",
		crashExe: "github.com/kilnhq/kiln/plugins/host/testdata/crashplugin",
	} {
		out, err := exec.Command("go", "build", "-o", exe, pkg).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return m.Run()
}

// command starts the plugins the tests know: shell (the real one), crash,
// and "missing", a name kiln itself does not know.
func command(name string) (*exec.Cmd, error) {
	switch name {
	case "shell":
		return exec.Command(kilnExe, "plugin", "shell"), nil
	case "crash":
		return exec.Command(crashExe), nil
	case "missing":
		return exec.Command(kilnExe, "plugin", "missing"), nil
	}
	return nil, fmt.Errorf("%w %q", host.ErrUnknownPlugin, name)
}

func newHost(t testing.TB) *host.Host {
	t.Helper()
	h := host.New(host.Config{Command: command})
	t.Cleanup(func() { h.Close() })
	return h
}

// logBuffer is a task log that tests may read while the task runs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// run runs one task and fails the test on a host error.
func run(t testing.TB, h *host.Host, plugin string, req host.Request) (host.Result, string) {
	t.Helper()
	var log logBuffer
	res, err := h.Run(context.Background(), plugin, req, &log)
	if err != nil {
		t.Fatalf("Run(%s, %v): %v", plugin, req.With, err)
	}
	return res, log.String()
}

func shellCmd(command string) host.Request {
	return host.Request{With: map[string]any{"command": command}}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processGone reports whether pid has exited; a zombie has (where PID 1
// does not reap orphans, they stay zombies).
func processGone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	i := bytes.LastIndexByte(stat, ')')
	return i >= 0 && len(stat) > i+2 && (stat[i+2] == 'Z' || stat[i+2] == 'X')
}

// intAfter returns the number logged as "key=N".
func intAfter(t testing.TB, log, key string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + key + `=(\d+)$`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no %s=N line in log %q", key, log)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// recordingHandler keeps the levels of the slog records it gets.
type recordingHandler struct {
	mu     sync.Mutex
	levels []slog.Level
}

func (r *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *recordingHandler) WithGroup(string) slog.Handler            { return r }
func (r *recordingHandler) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.levels = append(r.levels, rec.Level)
	return nil
}
