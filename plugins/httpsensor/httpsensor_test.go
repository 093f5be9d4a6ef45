package httpsensor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// poke runs the sensor once, and returns its log, its status output (""
// when it set none) and its error.
func poke(ctx context.Context, t *testing.T, with map[string]any) (log, status string, err error) {
	t.Helper()
	log, outputs, err := plugintest.RunStage(ctx, t, Stage{}, with, &sdk.Task{})
	return log, outputs["status"], err
}

func TestPoke(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		body    string
		with    map[string]any
		wantErr string // empty: met; else the not-yet reason
	}{
		{name: "200", status: 200},
		{name: "204", status: 204},
		{name: "503", status: 503, wantErr: "status 503 Service Unavailable, want 2xx"},
		{name: "404", status: 404, wantErr: "status 404 Not Found, want 2xx"},
		{name: "expected 404", status: 404, with: map[string]any{"expect_status": []int{404}}},
		{name: "200 not expected", status: 200, with: map[string]any{"expect_status": []int{201, 202}},
			wantErr: "status 200 OK, want one of 201, 202"},
		{name: "body contains", status: 200, body: `{"state": "ready"}`,
			with: map[string]any{"body_contains": `"ready"`}},
		{name: "body lacks", status: 200, body: `{"state": "starting"}`,
			with: map[string]any{"body_contains": `"ready"`}, wantErr: `the reply (21 bytes) does not contain "\"ready\""`},
		{name: "status first", status: 500, body: "ready",
			with: map[string]any{"body_contains": "ready"}, wantErr: "status 500"},
		{name: "HEAD", status: 200, with: map[string]any{"method": "head"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			methods := make(chan string, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				methods <- r.Method
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			t.Cleanup(srv.Close)
			with := map[string]any{"url": srv.URL + "/health"}
			for k, v := range tt.with {
				with[k] = v
			}
			log, status, err := poke(t.Context(), t, with)
			if tt.wantErr != "" {
				if !errors.Is(err, sdk.ErrNotYet) || !strings.Contains(err.Error(), tt.wantErr) ||
					!strings.Contains(err.Error(), srv.URL+"/health") {
					t.Fatalf("Run: %v, want ErrNotYet naming the URL and %q", err, tt.wantErr)
				}
				if status != "" {
					t.Errorf("status output %q before the condition is met", status)
				}
				return
			}
			if err != nil {
				t.Fatalf("Run: %v, want success", err)
			}
			if want := fmt.Sprint(tt.status); status != want {
				t.Errorf("status output %q, want %q", status, want)
			}
			if m, ok := with["method"].(string); ok {
				if got := <-methods; got != strings.ToUpper(m) {
					t.Errorf("method %s, want %s", got, strings.ToUpper(m))
				}
			}
			if !strings.Contains(log, srv.URL+"/health") {
				t.Errorf("log %q does not name the URL", log)
			}
		})
	}
}

func TestPokeUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there: the service is not up yet
	_, _, err := poke(t.Context(), t, map[string]any{"url": url})
	if !errors.Is(err, sdk.ErrNotYet) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Run: %v, want ErrNotYet saying connection refused", err)
	}
}

func TestPokeCancel(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := poke(ctx, t, map[string]any{"url": srv.URL})
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the server")
	}
	cancel()
	select {
	case err := <-done:
		// A cancelled task fails; it is not "not yet".
		if !errors.Is(err, context.Canceled) || errors.Is(err, sdk.ErrNotYet) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestPokeBadParams(t *testing.T) {
	tests := []struct {
		name    string
		with    map[string]any
		wantErr string
	}{
		{"no url", map[string]any{}, "url is required"},
		{"not http", map[string]any{"url": "ftp://127.0.0.1/x"}, "is not an http or https URL"},
		{"relative", map[string]any{"url": "/health"}, "is not an http or https URL"},
		{"bad url", map[string]any{"url": "http://127.0.0.1:x/"}, "invalid port"},
		{"unknown key", map[string]any{"url": "http://127.0.0.1/", "timeout": "1s"}, `unknown field "timeout"`},
		{"bad method", map[string]any{"url": "http://127.0.0.1/", "method": "G T"}, "invalid method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := poke(t.Context(), t, tt.with)
			if err == nil || errors.Is(err, sdk.ErrNotYet) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run: %v, want a failure containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestSchema(t *testing.T) {
	s, err := dag.CompileSchemaJSON(Schema)
	if err != nil {
		t.Fatal(err)
	}
	for with, ok := range map[string]bool{
		`{"url": "http://x"}`: true,
		`{"url": "http://x", "method": "HEAD", "expect_status": [200, 204], "body_contains": "ok"}`: true,
		`{}`: false,
		`{"url": "http://x", "expect_status": 200}`: false,
		`{"url": "http://x", "body_contains": ""}`:  false,
		`{"url": "http://x", "headers": {}}`:        false,
	} {
		var v any
		if err := json.Unmarshal([]byte(with), &v); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); (err == nil) != ok {
			t.Errorf("Validate(%s) = %v, want ok %v", with, err, ok)
		}
	}
	if i := (Stage{}).Info(); i.Name != Name || !i.Sensor {
		t.Errorf("Info() = %+v, want a sensor", i)
	}
}
