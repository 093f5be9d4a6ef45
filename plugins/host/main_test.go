package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
)

// The real kiln binary, whose `kiln plugin shell` is the shell plugin, and
// the crashing test plugin; TestMain builds both.
var kilnExe, crashExe string

func TestMain(m *testing.M) {
	plugintest.Main(m, nil, func(dir string) (err error) {
		if kilnExe, err = plugintest.Build(dir, "kiln", "github.com/kilnhq/kiln/cmd/kiln"); err != nil {
			return err
		}
		crashExe, err = plugintest.Build(dir, "crashplugin", "github.com/kilnhq/kiln/plugins/host/testdata/crashplugin")
		return err
	})
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

func newHost(t testing.TB) *host.Host { return plugintest.NewHost(t, command) }

// run runs one task and fails the test on a host error. It returns the
// result and the task's output: its log after the command line the shell
// stage logs first.
func run(t testing.TB, h *host.Host, plugin string, req host.Request) (host.Result, string) {
	t.Helper()
	var log plugintest.LogBuffer
	res, err := h.Run(context.Background(), plugin, req, &log)
	if err != nil {
		t.Fatalf("Run(%s, %v): %v", plugin, req.With, err)
	}
	return res, taskOutput(log.String())
}

// taskOutput is a shell task's log without its first line, the command
// the shell stage logs before it runs it.
func taskOutput(log string) string {
	if rest, ok := strings.CutPrefix(log, "kiln: running: "); ok {
		_, out, _ := strings.Cut(rest, "\n")
		return out
	}
	return log
}

func shellCmd(command string) host.Request {
	return host.Request{With: map[string]any{"command": command}}
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
