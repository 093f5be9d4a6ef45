package http_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
	kilnhttp "github.com/kilnhq/kiln/plugins/http"
)

func TestMain(m *testing.M) {
	plugintest.Main(m, map[string]func(){kilnhttp.Name: kilnhttp.Main}, nil)
}

// TestProcess runs a task through a real plugin process, as a worker does.
func TestProcess(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"job": {"id": 42, "name": "nightly"}}`)
	}))
	t.Cleanup(srv.Close)
	h := plugintest.NewHost(t, nil)

	info, err := h.Describe(t.Context(), kilnhttp.Name)
	if err != nil || info.Name != kilnhttp.Name || info.Sensor || !bytes.Equal(info.Schema, kilnhttp.Schema) {
		t.Fatalf("Describe: %+v, %v", info, err)
	}

	out := filepath.Join(t.TempDir(), "output")
	var log bytes.Buffer
	res, err := h.Run(context.Background(), kilnhttp.Name, host.Request{
		With: map[string]any{"url": srv.URL + "/jobs/42", "outputs": map[string]any{"name": "$.job.name"}},
		Env:  []string{"KILN_OUTPUT=" + out},
	}, &log)
	if err != nil || !res.Success {
		t.Fatalf("Run: %+v, %v\nlog:\n%s", res, err, log.String())
	}
	if !strings.Contains(log.String(), "GET "+srv.URL+"/jobs/42\n200 OK in ") {
		t.Errorf("log %q does not show the request and status", log.String())
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "status=200\nname=nightly\n" {
		t.Errorf("outputs %q, %v", b, err)
	}

	res, err = h.Run(context.Background(), kilnhttp.Name, host.Request{
		With: map[string]any{"url": srv.URL, "expect_status": []int{201}},
		Env:  []string{"KILN_OUTPUT=" + out},
	}, &log)
	if err != nil || res.Success || !strings.Contains(res.Error, "unexpected status 200 OK, want 201") {
		t.Errorf("Run: %+v, %v; want a failure naming the status", res, err)
	}
}
