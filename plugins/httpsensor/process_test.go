package httpsensor_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/httpsensor"
)

func TestMain(m *testing.M) {
	plugintest.Main(m, map[string]func(){httpsensor.Name: httpsensor.Main}, nil)
}

// TestProcess pokes through a real plugin process, as a worker does: not
// yet while the service starts, then met.
func TestProcess(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "status: ready\n")
	}))
	t.Cleanup(srv.Close)
	h := plugintest.NewHost(t, nil)

	info, err := h.Describe(t.Context(), httpsensor.Name)
	if err != nil || info.Name != httpsensor.Name || !info.Sensor {
		t.Fatalf("Describe: %+v, %v; want a sensor", info, err)
	}
	out := filepath.Join(t.TempDir(), "output")
	req := host.Request{
		With: map[string]any{"url": srv.URL, "body_contains": "ready"},
		Env:  []string{"KILN_OUTPUT=" + out},
	}

	var log bytes.Buffer
	res, err := h.Run(context.Background(), httpsensor.Name, req, &log)
	if err != nil || res.Success || !res.PokeAgain {
		t.Fatalf("first poke: %+v, %v; want poke again", res, err)
	}
	if want := "kiln: GET " + srv.URL + ": status 503 Service Unavailable, want 2xx"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q, want a line %q", log.String(), want)
	}

	ready.Store(true)
	log.Reset()
	res, err = h.Run(context.Background(), httpsensor.Name, req, &log)
	if err != nil || !res.Success {
		t.Fatalf("second poke: %+v, %v\nlog:\n%s", res, err, log.String())
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "status=200\n" {
		t.Errorf("outputs %q, %v", b, err)
	}
}
