package notify_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/notify"
)

// servePlugin, set in the environment, makes the test binary serve the
// plugin instead of running tests: the host starts it as a plugin process.
const servePlugin = "KILN_TEST_SERVE_PLUGIN"

func TestMain(m *testing.M) {
	if os.Getenv(servePlugin) == notify.Name {
		notify.Main()
		return
	}
	os.Exit(m.Run())
}

// TestProcess runs a task through a real plugin process, as a worker does.
func TestProcess(t *testing.T) {
	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
	}))
	t.Cleanup(srv.Close)
	h := host.New(host.Config{Command: func(name string) (*exec.Cmd, error) {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), servePlugin+"="+name)
		return cmd, nil
	}})
	t.Cleanup(func() { h.Close() })

	info, err := h.Describe(t.Context(), notify.Name)
	if err != nil || info.Name != notify.Name || info.Sensor {
		t.Fatalf("Describe: %+v, %v", info, err)
	}
	var log bytes.Buffer
	res, err := h.Run(context.Background(), notify.Name, host.Request{
		With: map[string]any{"url": srv.URL},
		Env:  []string{"KILN_DAG_ID=etl", "KILN_TASK_ID=load", "KILN_STATE=failed"},
	}, &log)
	if err != nil || !res.Success {
		t.Fatalf("Run: %+v, %v\nlog:\n%s", res, err, log.String())
	}
	if b := <-bodies; !strings.Contains(b, `"dag_id":"etl"`) || !strings.Contains(b, `"state":"failed"`) {
		t.Errorf("body %s, want the default summary", b)
	}
	if !strings.Contains(log.String(), "POST "+srv.URL) {
		t.Errorf("log %q does not show the request", log.String())
	}
}
