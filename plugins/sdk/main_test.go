package sdk_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// TestMain makes this test binary serve a test stage when the host's tests
// launch it as their plugin.
func TestMain(m *testing.M) {
	plugintest.Main(m, map[string]func(){
		"test":       func() { sdk.Main(testStage{}) },
		"bad-schema": func() { sdk.Main(badSchema{}) },
	}, nil)
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
	return plugintest.SelfCommand(name), nil
}

func newHost(t testing.TB) *host.Host { return plugintest.NewHost(t, command) }

// run runs one task of the test stage and fails the test on a host error.
func run(t testing.TB, h *host.Host, req host.Request) (host.Result, string) {
	t.Helper()
	var log plugintest.LogBuffer
	res, err := h.Run(context.Background(), "test", req, &log)
	if err != nil {
		t.Fatalf("Run(%v): %v", req.With, err)
	}
	return res, log.String()
}

func lines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	return b.String()
}
