package notify_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/notify"
)

func TestMain(m *testing.M) {
	plugintest.Main(m, map[string]func(){notify.Name: notify.Main}, nil)
}

// TestProcess runs a task through a real plugin process, as a worker does.
func TestProcess(t *testing.T) {
	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
	}))
	t.Cleanup(srv.Close)
	h := plugintest.NewHost(t, nil)

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
