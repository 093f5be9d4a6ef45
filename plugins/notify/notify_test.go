package notify

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// seen is the request the test server saw.
type seen struct {
	Method, ContentType, Token, Body string
}

// webhook starts a loopback server that records each request and answers
// with status.
func webhook(t *testing.T, status int) (*httptest.Server, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Token"), string(b)}
		w.WriteHeader(status)
		io.WriteString(w, "thanks\n")
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

func run(ctx context.Context, t *testing.T, with map[string]any, env ...string) (log string, err error) {
	t.Helper()
	log, _, err = plugintest.RunStage(ctx, t, Stage{}, with, &sdk.Task{Env: env, Try: "d/r/t#1"})
	return log, err
}

var taskEnv = []string{
	"KILN_DAG_ID=etl", "KILN_RUN_ID=scheduled__2026-01-02T00:00:00Z", "KILN_TASK_ID=load",
	"KILN_TRY_NUMBER=2", "KILN_TS=2026-01-02T00:00:00Z", "KILN_OUTPUT=/nonexistent/out",
}

func TestDefaultBody(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want map[string]any
	}{
		{
			name: "task",
			env:  taskEnv,
			want: map[string]any{"dag_id": "etl", "run_id": "scheduled__2026-01-02T00:00:00Z", "task_id": "load",
				"try_number": 2.0, "logical_date": "2026-01-02T00:00:00Z"},
		},
		{
			name: "callback",
			env: append(append([]string(nil), taskEnv...), "KILN_STATE=failed", "KILN_ERROR=exit status 3",
				"KILN_LOG_URL=http://127.0.0.1:8080/logs/1", "KILN_LOGICAL_DATE=2026-01-02T01:00:00+01:00"),
			want: map[string]any{"dag_id": "etl", "run_id": "scheduled__2026-01-02T00:00:00Z", "task_id": "load",
				"try_number": 2.0, "logical_date": "2026-01-02T01:00:00+01:00",
				"state": "failed", "error": "exit status 3", "log_url": "http://127.0.0.1:8080/logs/1"},
		},
		{
			name: "no environment",
			want: map[string]any{"dag_id": "", "run_id": "", "task_id": "", "try_number": nil, "logical_date": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := webhook(t, 200)
			log, err := run(t.Context(), t, map[string]any{"url": srv.URL}, tt.env...)
			if err != nil {
				t.Fatalf("Run: %v\nlog:\n%s", err, log)
			}
			r := <-got
			if r.Method != "POST" || r.ContentType != "application/json" {
				t.Errorf("got %s with Content-Type %q, want POST application/json", r.Method, r.ContentType)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
				t.Fatalf("body %q: %v", r.Body, err)
			}
			if diff := cmp.Diff(tt.want, body); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBodyAndHeaders(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want seen
	}{
		{"body as given", map[string]any{"body": `{"text": "etl failed"}`},
			seen{"POST", "application/json", "", `{"text": "etl failed"}`}},
		{"empty body", map[string]any{"body": ""}, seen{"POST", "application/json", "", ""}},
		{"headers", map[string]any{"body": "plain", "headers": map[string]string{"content-type": "text/plain", "X-Token": "s3cret"}},
			seen{"POST", "text/plain", "s3cret", "plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := webhook(t, 204)
			tt.with["url"] = srv.URL
			log, err := run(t.Context(), t, tt.with, taskEnv...)
			if err != nil {
				t.Fatalf("Run: %v\nlog:\n%s", err, log)
			}
			if diff := cmp.Diff(tt.want, <-got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			if !strings.Contains(log, "POST "+srv.URL) || !strings.Contains(log, "204 No Content in ") {
				t.Errorf("log %q does not show the request and status", log)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	srv, _ := webhook(t, 500)
	log, err := run(t.Context(), t, map[string]any{"url": srv.URL})
	if err == nil || !strings.Contains(err.Error(), "the webhook answered 500 Internal Server Error") {
		t.Errorf("Run: %v, want a failure naming the status", err)
	}
	if !strings.Contains(log, "thanks") {
		t.Errorf("log %q does not show the reply", log)
	}

	srv, _ = webhook(t, 302)
	if _, err := run(t.Context(), t, map[string]any{"url": srv.URL}); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("Run on a 302: %v, want a failure", err)
	}

	srv, _ = webhook(t, 200)
	url := srv.URL
	srv.Close()
	if _, err := run(t.Context(), t, map[string]any{"url": url}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Run on a closed port: %v, want connection refused", err)
	}

	if _, err := run(t.Context(), t, map[string]any{}); err == nil || !strings.Contains(err.Error(), "url is required") {
		t.Errorf("Run without url: %v", err)
	}
	if _, err := run(t.Context(), t, map[string]any{"url": url, "method": "PUT"}); err == nil || !strings.Contains(err.Error(), "method") {
		t.Errorf("Run with an unknown parameter: %v", err)
	}
}

func TestCancel(t *testing.T) {
	started := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server sees the client go away only once the body is read.
		io.ReadAll(r.Body)
		close(started)
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := run(ctx, t, map[string]any{"url": srv.URL, "body": "x"})
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
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestSchema(t *testing.T) {
	s, err := dag.CompileSchemaJSON(Schema)
	if err != nil {
		t.Fatal(err)
	}
	for with, ok := range map[string]bool{
		`{"url": "http://x"}`: true,
		`{"url": "http://x", "body": "{{ .dag_id }} failed", "headers": {"A": "b"}}`: true,
		`{}`:                                    false,
		`{"url": "http://x", "body": {"a": 1}}`: false,
		`{"url": "http://x", "method": "PUT"}`:  false,
	} {
		var v any
		if err := json.Unmarshal([]byte(with), &v); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(v); (err == nil) != ok {
			t.Errorf("Validate(%s) = %v, want ok %v", with, err, ok)
		}
	}
	if i := (Stage{}).Info(); i.Name != Name || i.Sensor {
		t.Errorf("Info() = %+v", i)
	}
}
