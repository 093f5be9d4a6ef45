package worker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
)

// workdirOf returns the working directory a shell try printed as the
// first line of its output.
func workdirOf(t *testing.T, h *harness, k wire.TryKey) string {
	t.Helper()
	lines := strings.Split(string(logOf(t, h.events(k))), "\n")
	if len(lines) < 2 || !filepath.IsAbs(lines[1]) {
		t.Fatalf("no working directory in the log: %q", lines)
	}
	return lines[1]
}

// TestWorkdirs: each try runs in a folder of its own in the data folder,
// readable by the worker's user only, removed once the try has been
// reported (even with folders the task made read-only), or kept with
// KeepWorkdirs. Shell's workdir still sets the command's folder.
func TestWorkdirs(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t)})
	cmd := `echo "$KILN_WORKDIR"; pwd; stat -c %a .; touch here; mkdir -p ro/x; chmod 500 ro/x ro`
	k := newTry("workdir")
	fin := shellDone(h, "default", cmd, wire.Assignment{TryKey: k})
	if !fin.Success {
		t.Fatal(fin.Error)
	}
	dir := workdirOf(t, h, k)
	if want := dir + "\n" + dir + "\n700\n"; !strings.Contains(string(logOf(t, h.events(k))), want) {
		t.Errorf("log %q, want the folder as $KILN_WORKDIR and as the current one, mode 700", logOf(t, h.events(k)))
	}
	if filepath.Dir(dir) != h.dataDir() || !strings.HasPrefix(filepath.Base(dir), "kiln-try-") {
		t.Errorf("working directory %s, want a kiln-try-* folder of %s", dir, h.dataDir())
	}
	waitFor(t, func() bool {
		_, err := os.Stat(dir)
		return os.IsNotExist(err)
	})

	other := t.TempDir()
	k = newTry("shell_workdir")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "shell", With: map[string]any{"command": `echo "$KILN_WORKDIR"; pwd`, "workdir": other}})
	if fin := h.wait(k, wire.EventFinished, 20*time.Second); !fin.Success || !strings.HasSuffix(string(logOf(t, h.events(k))), "\n"+other+"\n") {
		t.Errorf("with shell's workdir %s: success %v, log %q", other, fin.Success, logOf(t, h.events(k)))
	}
}

func TestKeepWorkdirs(t *testing.T) {
	h := newHarness(t)
	h.start(Config{Runner: shellHost(t), KeepWorkdirs: true})
	k := newTry("kept")
	if fin := shellDone(h, "default", `echo "$KILN_WORKDIR"; echo left > here`, wire.Assignment{TryKey: k}); !fin.Success {
		t.Fatal(fin.Error)
	}
	if data, err := os.ReadFile(filepath.Join(workdirOf(t, h, k), "here")); err != nil || string(data) != "left\n" {
		t.Errorf("the kept working directory holds %q (%v), want what the task left", data, err)
	}
}
