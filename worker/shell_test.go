package worker

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/wire"
)

// These tests run tries through the real plugin host and the real shell
// plugin, served by the kiln binary.

func shellTry(h *harness, cmd string, a wire.Assignment) wire.TryKey {
	h.t.Helper()
	if a.TryKey == (wire.TryKey{}) {
		a.TryKey = newTry("shell")
	}
	a.Plugin = "shell"
	a.With = map[string]any{"command": cmd}
	h.assign("default", a)
	return a.TryKey
}

// ranLine is the first line of a shell try's log: the command it runs.
func ranLine(command string) string { return "kiln: running: " + command + "\n" }

func TestShellTry(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t)})
	cmd := `echo "hello from $KILN_TASK_ID"; echo "rows=42" >> "$KILN_OUTPUT"; echo 'path=/tmp/a=b' >> "$KILN_OUTPUT"`
	k := shellTry(h, cmd, wire.Assignment{})
	fin := h.wait(k, wire.EventFinished, 20*time.Second)
	if !fin.Success || fin.ExitCode == nil || *fin.ExitCode != 0 {
		t.Fatalf("finished = success %v, exit %v, error %q", fin.Success, fin.ExitCode, fin.Error)
	}
	if got, want := string(logOf(t, h.events(k))), ranLine(cmd)+"hello from "+k.TaskID+"\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
	host, _ := os.Hostname()
	if rt := fin.Runtime; rt == nil || rt.Host != host || rt.KilnVersion == "" || rt.PluginVersion != "0.1.0" || len(rt.PluginSHA256) != 64 {
		t.Errorf("finished runtime = %+v, want this host, a kiln version and the plugin's version and hash", fin.Runtime)
	}
	if diff := cmp.Diff(map[string]any{"rows": "42", "path": "/tmp/a=b"}, fin.Outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}

	cmd = `echo '{"model": "m.pkl", "auc": 0.91}' > "$KILN_OUTPUT"; echo oops >&2; exit 3`
	k = shellTry(h, cmd, wire.Assignment{})
	fin = h.wait(k, wire.EventFinished, 20*time.Second)
	if fin.Success || fin.ExitCode == nil || *fin.ExitCode != 3 {
		t.Errorf("finished = success %v, exit %v, error %q; want exit code 3", fin.Success, fin.ExitCode, fin.Error)
	}
	if diff := cmp.Diff(map[string]any{"model": "m.pkl", "auc": 0.91}, fin.Outputs); diff != "" {
		t.Errorf("outputs of a failed try (-want +got):\n%s", diff)
	}
	if got := string(logOf(t, h.events(k))); !strings.HasPrefix(got, ranLine(cmd)+"oops\n") {
		t.Errorf("log = %q, want stderr in it", got)
	}

	k = shellTry(h, `head -c 70000 /dev/zero | tr '\0' a | sed 's/^/K=/' > "$KILN_OUTPUT"`, wire.Assignment{})
	fin = h.wait(k, wire.EventFinished, 20*time.Second)
	if fin.Success || !strings.Contains(fin.Error, "limited to 65536 bytes") {
		t.Errorf("oversized outputs: success %v, error %q", fin.Success, fin.Error)
	}
}

// TestShellSlots runs five `sleep 0.3` tasks on a worker with two slots.
func TestShellSlots(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t), Slots: 2})
	var keys []wire.TryKey
	for range 5 {
		keys = append(keys, shellTry(h, "sleep 0.3", wire.Assignment{}))
	}
	start := time.Now()
	for _, k := range keys {
		if fin := h.wait(k, wire.EventFinished, 20*time.Second); !fin.Success {
			t.Errorf("%s failed: %s", k, fin.Error)
		}
	}
	if got := maxConcurrent(h.events(wire.TryKey{})); got != 2 {
		t.Errorf("at most %d tries ran at once; want 2", got)
	}
	// Three rounds of 0.3 s, the first one including the plugin's launch.
	if took := time.Since(start); took < 900*time.Millisecond || took > 5*time.Second {
		t.Errorf("5 tries of 0.3 s on 2 slots took %s", took)
	}
}

func TestShellHeartbeats(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t)})
	k := shellTry(h, "sleep 1", wire.Assignment{Heartbeat: 100 * time.Millisecond})
	h.wait(k, wire.EventFinished, 20*time.Second)
	beats := 0
	for _, e := range h.events(k) {
		if e.Kind == wire.EventHeartbeat {
			beats++
		}
	}
	if beats < 7 {
		t.Errorf("%d heartbeats during a 1 s task at 100 ms, want about 10", beats)
	}
}

// TestShellTimeoutKills checks that a try past its timeout ends within a
// second of the deadline and that its processes are gone.
func TestShellTimeoutKills(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t)})
	pidFile := filepath.Join(t.TempDir(), "pid")
	k := shellTry(h, `sleep 30 & echo $! > "$PIDFILE"; wait`, wire.Assignment{
		Timeout: time.Second,
		Env:     map[string]string{"PIDFILE": pidFile},
	})
	st := h.wait(k, wire.EventStarted, 20*time.Second)
	fin := h.wait(k, wire.EventFinished, 20*time.Second)
	if fin.Success || fin.Error != "timed out after 1s" {
		t.Errorf("finished = success %v, error %q; want %q", fin.Success, fin.Error, "timed out after 1s")
	}
	took := fin.Time.Sub(st.Time)
	t.Logf("started to finished: %s with a 1 s timeout", took)
	if took < time.Second || took > 2*time.Second {
		t.Errorf("finished %s after it started, want within a second of the 1 s deadline", took)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	deadline := time.Now().Add(2 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("the task's `sleep 30` (pid %d) still runs after the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether a process runs (a zombie does not).
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) STATE ...
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func TestShellCancel(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t)})
	k := shellTry(h, "echo waiting; sleep 30", wire.Assignment{})
	h.wait(k, wire.EventLog, 20*time.Second)
	start := time.Now()
	h.cancel(k, "marked failed by alice")
	fin := h.wait(k, wire.EventFinished, 5*time.Second)
	if fin.Success || fin.Error != "cancelled: marked failed by alice" {
		t.Errorf("finished = success %v, error %q", fin.Success, fin.Error)
	}
	t.Logf("cancel to finished: %s", time.Since(start))
	// Cancelled once it logged: the command, perhaps "waiting", then why
	// it ended.
	if got := string(logOf(t, h.events(k))); !strings.HasPrefix(got, ranLine("echo waiting; sleep 30")) ||
		!strings.HasSuffix(got, "kiln: task cancelled: cancelled: marked failed by alice\n") {
		t.Errorf("log = %q", got)
	}
}

// TestShellHugeLog prints 200 MB through the real plugin with a 1 MB log
// limit: the log is cut with a note, and the worker's heap stays flat.
func TestShellHugeLog(t *testing.T) {
	if testing.Short() {
		t.Skip("prints 200 MB")
	}
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t)})
	const limit, total = 1 << 20, 200_000_000
	shellTry(h, "true", wire.Assignment{}) // launch the plugin before sampling
	base, peak := sampleHeap(t)
	cmd := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' x", total)
	ran := ranLine(cmd)
	k := shellTry(h, cmd, wire.Assignment{LogLimit: limit})
	start := time.Now()
	fin := h.wait(k, wire.EventFinished, 120*time.Second)
	if !fin.Success {
		t.Fatalf("failed: %s", fin.Error)
	}
	note := fmt.Sprintf("\n[kiln: log truncated: %d bytes over the %d-byte limit were dropped]\n", len(ran)+total-limit, limit)
	if fin.LogBytes != int64(len(ran)+total) || fin.LogSent != int64(limit+len(note)) {
		t.Errorf("log bytes/sent = %d/%d, want %d/%d", fin.LogBytes, fin.LogSent, len(ran)+total, limit+len(note))
	}
	log := logOf(t, h.events(k))
	if want := ran + strings.Repeat("x", limit-len(ran)) + note; string(log) != want {
		t.Errorf("log: %d bytes ending %q, want %d bytes ending %q", len(log), tail(log), len(want), tail([]byte(want)))
	}
	grew := int64(peak()) - int64(base)
	t.Logf("200 MB of log in %s; live heap %.1f MB before, peak %.1f MB", time.Since(start).Round(time.Millisecond), mb(base), mb(base+uint64(max(grew, 0))))
	// Far below the 200 MB that went through; the slack is for the race
	// detector's shadow memory and the embedded server's buffers.
	if grew > 48<<20 {
		t.Errorf("live heap grew by %.1f MB while the task printed 200 MB", mb(uint64(grew)))
	}
}
