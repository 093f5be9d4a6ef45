package sdk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// pluginEnv, set in the environment of this test binary, makes it serve the
// test stage it names instead of running the tests: the host's tests launch
// it as their plugin.
const pluginEnv = "KILN_SDK_TEST_PLUGIN"

func TestMain(m *testing.M) {
	switch os.Getenv(pluginEnv) {
	case "":
		os.Exit(m.Run())
	case "test":
		sdk.Main(testStage{})
	case "bad-schema":
		sdk.Main(badSchema{})
	default:
		fmt.Fprintf(os.Stderr, "unknown %s\n", pluginEnv)
		os.Exit(2)
	}
}

// testStage does what its task's `with` says.
type testStage struct{}

func (testStage) Info() sdk.Info {
	return sdk.Info{Name: "sdktest", Version: "1.2.3", Sensor: true}
}

type testParams struct {
	Do    string `json:"do"`
	Code  int    `json:"code"`
	Lines int    `json:"lines"`
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (testStage) Run(ctx context.Context, t *sdk.Task) error {
	var p testParams
	if err := t.Decode(&p); err != nil {
		return err
	}
	switch p.Do {
	case "noop":
		return nil
	case "succeed":
		t.Logf("pid=%d", os.Getpid())
		t.Logf("try %s in %s, FOO=%q", t.Try, t.WorkDir, t.Getenv("FOO"))
		return nil
	case "fail":
		t.Logf("about to fail")
		return errors.New("the thing broke")
	case "exit":
		return sdk.ExitCode(p.Code, nil)
	case "not-yet":
		return fmt.Errorf("no file at /data/in.csv: %w", sdk.ErrNotYet)
	case "output":
		return t.SetOutput(p.Key, p.Value)
	case "lines":
		for i := range p.Lines {
			fmt.Fprintf(t.Log, "line %d\n", i)
		}
		return nil
	case "block":
		t.Logf("blocking")
		<-ctx.Done()
		msg := []byte(context.Cause(ctx).Error())
		if err := os.WriteFile(filepath.Join(t.WorkDir, "cancelled"), msg, 0o644); err != nil {
			return err
		}
		return ctx.Err()
	case "panic":
		for i := range p.Lines {
			fmt.Fprintf(t.Log, "line %d\n", i)
		}
		panic("boom: the test stage was asked to panic")
	}
	return fmt.Errorf("unknown do %q", p.Do)
}

// badSchema has a schema that is not JSON.
type badSchema struct{ testStage }

func (badSchema) Info() sdk.Info {
	return sdk.Info{Name: "bad", Schema: []byte(`{"type": "object",}`)}
}

// command starts this test binary as the plugin of the same name.
func command(name string) (*exec.Cmd, error) {
	if name != "test" {
		return nil, fmt.Errorf("%w %q", host.ErrUnknownPlugin, name)
	}
	cmd := exec.Command(os.Args[0])
	// A race in the plugin process crashes it, and so fails the test; and
	// the race detector does not hold its exit up for a second.
	cmd.Env = append(os.Environ(), pluginEnv+"="+name, "GORACE=halt_on_error=1 atexit_sleep_ms=0")
	return cmd, nil
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

// run runs one task of the test stage and fails the test on a host error.
func run(t testing.TB, h *host.Host, req host.Request) (host.Result, string) {
	t.Helper()
	var log logBuffer
	res, err := h.Run(context.Background(), "test", req, &log)
	if err != nil {
		t.Fatalf("Run(%v): %v", req.With, err)
	}
	return res, log.String()
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

func lines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}
