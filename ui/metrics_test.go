package ui_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/ui"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	runs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kiln_runs_finished_total", Help: "Runs."}, []string{"state"})
	reg.MustRegister(runs)
	runs.WithLabelValues("success").Add(3)
	srv := serveAPI(t, kilntest.Start(t, kilntest.Options{NoWorker: true}), ui.Options{Metrics: reg})

	get := func(accept string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		// No credentials: /metrics is open, like /healthz.
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	tests := []struct {
		name, accept, contentType string
		want                      []string
	}{
		{"text", "", "text/plain; version=0.0.4", []string{
			"# TYPE kiln_runs_finished_total counter",
			`kiln_runs_finished_total{state="success"} 3` + "\n",
			"# TYPE go_goroutines gauge",
		}},
		{"openmetrics", "application/openmetrics-text; version=1.0.0", "application/openmetrics-text", []string{
			"# TYPE kiln_runs_finished counter",
			`kiln_runs_finished_total{state="success"} 3.0` + "\n",
			"# TYPE go_goroutines gauge",
			"# EOF",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := get(tt.accept)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %q", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tt.contentType) {
				t.Errorf("Content-Type %q, want %s", ct, tt.contentType)
			}
			for _, want := range tt.want {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%.2000s", want, body)
				}
			}
		})
	}
}

func TestMetricsNotEnabled(t *testing.T) {
	t.Parallel()
	srv := serveAPI(t, kilntest.Start(t, kilntest.Options{NoWorker: true}), ui.Options{})
	resp := call(t, http.MethodGet, srv.URL+"/metrics", "")
	if resp.status != http.StatusNotFound {
		t.Fatalf("status %d, want 404", resp.status)
	}
	var body ui.ErrorBody
	if err := json.Unmarshal(resp.body, &body); err != nil || body.Error == "" {
		t.Errorf("body %q, want a JSON error (%v)", resp.body, err)
	}
}
