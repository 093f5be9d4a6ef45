package http

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// result is how one run of the stage went.
type result struct {
	err     error
	log     string
	outputs map[string]string
}

// run runs the stage once with the given `with` parameters, as a worker
// would: a log buffer, and an output file named by KILN_OUTPUT.
func run(ctx context.Context, t *testing.T, with any) result {
	t.Helper()
	log, outputs, err := plugintest.RunStage(ctx, t, Stage{}, with, &sdk.Task{
		Env:     []string{"PATH=/usr/bin:/bin"},
		WorkDir: t.TempDir(),
		Try:     "dag/run/task/1",
	})
	return result{err: err, log: log, outputs: outputs}
}

// serve starts a loopback HTTP server for the test.
func serve(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func TestRunStatus(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		expect  []int
		wantErr string // empty: success
	}{
		{name: "200", status: 200},
		{name: "204", status: 204},
		{name: "299", status: 299},
		{name: "404", status: 404, wantErr: "unexpected status 404 Not Found, want 2xx"},
		{name: "500", status: 500, wantErr: "unexpected status 500 Internal Server Error, want 2xx"},
		{name: "304", status: 304, wantErr: "unexpected status 304"},
		{name: "expected 404", status: 404, expect: []int{404}},
		{name: "expected one of", status: 202, expect: []int{200, 202}},
		{name: "2xx not expected", status: 201, expect: []int{200}, wantErr: "unexpected status 201 Created, want 200"},
		{name: "none of", status: 500, expect: []int{200, 202}, wantErr: "want one of 200, 202"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				fmt.Fprint(w, "reply body")
			})
			with := map[string]any{"url": srv.URL + "/x"}
			if tt.expect != nil {
				with["expect_status"] = tt.expect
			}
			res := run(t.Context(), t, with)
			if tt.wantErr == "" && res.err != nil {
				t.Fatalf("Run: %v, want success", res.err)
			}
			if tt.wantErr != "" && (res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr)) {
				t.Fatalf("Run: %v, want an error containing %q", res.err, tt.wantErr)
			}
			if got, want := res.outputs["status"], fmt.Sprint(tt.status); got != want {
				t.Errorf("status output %q, want %q", got, want)
			}
			if !strings.Contains(res.log, "GET "+srv.URL+"/x\n") {
				t.Errorf("log %q does not name the request", res.log)
			}
			if !strings.Contains(res.log, http.StatusText(tt.status)) && tt.status != 299 {
				t.Errorf("log %q does not name the status", res.log)
			}
		})
	}
}

// seen is the request the test server saw.
type seen struct {
	Method, ContentType, Token, Host string
	Body                             string
}

func recorder(t *testing.T) (*httptest.Server, <-chan seen) {
	ch := make(chan seen, 1)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		ch <- seen{r.Method, r.Header.Get("Content-Type"), r.Header.Get("X-Token"), r.Host, string(b)}
	})
	return srv, ch
}

func TestRunRequest(t *testing.T) {
	tests := []struct {
		name string
		with map[string]any
		want seen
	}{
		{
			name: "default GET",
			with: map[string]any{},
			want: seen{Method: "GET"},
		},
		{
			name: "string body as it is",
			with: map[string]any{"method": "post", "body": "a=1&b=2", "headers": map[string]string{"X-Token": "t0k"}},
			want: seen{Method: "POST", Token: "t0k", Body: "a=1&b=2"},
		},
		{
			name: "object body as JSON",
			with: map[string]any{"method": "PUT", "body": map[string]any{"b": []int{1, 2}, "a": "x"}},
			want: seen{Method: "PUT", ContentType: "application/json", Body: `{"a":"x","b":[1,2]}`},
		},
		{
			name: "array body as JSON",
			with: map[string]any{"method": "POST", "body": []any{"x", 1}},
			want: seen{Method: "POST", ContentType: "application/json", Body: `["x",1]`},
		},
		{
			name: "headers win over the JSON default",
			with: map[string]any{"method": "PATCH", "body": map[string]any{"a": 1},
				"headers": map[string]string{"content-type": "application/merge-patch+json"}},
			want: seen{Method: "PATCH", ContentType: "application/merge-patch+json", Body: `{"a":1}`},
		},
		{
			name: "Host header",
			with: map[string]any{"headers": map[string]string{"Host": "example.test"}},
			want: seen{Method: "GET", Host: "example.test"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, got := recorder(t)
			tt.with["url"] = srv.URL
			if res := run(t.Context(), t, tt.with); res.err != nil {
				t.Fatalf("Run: %v\nlog:\n%s", res.err, res.log)
			}
			r := <-got
			if tt.want.Host == "" {
				r.Host = ""
			}
			if diff := cmp.Diff(tt.want, r); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunOutputs(t *testing.T) {
	const reply = `{"data": {"id": "abc-1", "count": 3, "items": [{"name": "a"}, {"name": "b", "meta": {"k": [true]}}]}}`
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, reply)
	})
	res := run(t.Context(), t, map[string]any{
		"url": srv.URL,
		"outputs": map[string]string{
			"id":    "$.data.id",
			"count": "data.count",
			"name":  "data.items[1].name",
			"meta":  "$.data.items[1].meta",
			"flag":  "$.data.items[-1].meta.k[0]",
		},
	})
	if res.err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", res.err, res.log)
	}
	want := map[string]string{
		"status": "200",
		"id":     "abc-1",
		"count":  "3",
		"name":   "b",
		"meta":   `{"k":[true]}`,
		"flag":   "true",
	}
	if diff := cmp.Diff(want, res.outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if !strings.Contains(res.log, reply) {
		t.Errorf("log %q does not show the reply", res.log)
	}
}

func TestRunOutputErrors(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		outputs map[string]string
		wantErr string
	}{
		{"missing key", `{"data": {}}`, map[string]string{"id": "$.data.id"},
			`outputs.id: selector "$.data.id": $.data has no key "id"`},
		{"index out of range", `{"items": []}`, map[string]string{"first": "items[0]"},
			`outputs.first: selector "items[0]": index 0 is out of range`},
		{"not JSON", `<html>oops</html>`, map[string]string{"id": "$.id"},
			`the reply (Content-Type "text/html; charset=utf-8") is not JSON`},
		{"bad selector", `{}`, map[string]string{"id": "$.a[x]"},
			`invalid parameters: outputs.id: selector "$.a[x]"`},
		{"status as a key", `{}`, map[string]string{"status": "$.status"},
			`"status" is always output`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, tt.reply)
			})
			res := run(t.Context(), t, map[string]any{"url": srv.URL, "outputs": tt.outputs})
			if res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("Run: %v, want an error containing %q", res.err, tt.wantErr)
			}
		})
	}
}

func TestRunBadParams(t *testing.T) {
	tests := []struct {
		name    string
		with    map[string]any
		wantErr string
	}{
		{"no url", map[string]any{}, "url is required"},
		{"bad timeout", map[string]any{"url": "http://127.0.0.1/", "timeout": "soon"}, `timeout: "soon" is not a positive duration`},
		{"zero timeout", map[string]any{"url": "http://127.0.0.1/", "timeout": "0s"}, "not a positive duration"},
		{"unknown key", map[string]any{"url": "http://127.0.0.1/", "urls": "x"}, "urls"},
		{"number body", map[string]any{"url": "http://127.0.0.1/", "body": 3}, "body: want a string, an object or an array"},
		{"bad scheme", map[string]any{"url": "ftp://127.0.0.1/"}, `unsupported protocol scheme "ftp"`},
		{"bad method", map[string]any{"url": "http://127.0.0.1/", "method": "G T"}, "invalid method"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t.Context(), t, tt.with)
			if res.err == nil || !strings.Contains(res.err.Error(), tt.wantErr) {
				t.Errorf("Run: %v, want an error containing %q", res.err, tt.wantErr)
			}
		})
	}
}

func TestRunNetworkError(t *testing.T) {
	srv := serve(t, func(http.ResponseWriter, *http.Request) {})
	url := srv.URL
	srv.Close() // nothing listens there any more
	res := run(t.Context(), t, map[string]any{"url": url})
	if res.err == nil || !strings.Contains(res.err.Error(), "GET "+url+": ") ||
		!strings.Contains(res.err.Error(), "connection refused") {
		t.Errorf("Run: %v, want a connection refused error naming the request", res.err)
	}
	if _, ok := res.outputs["status"]; ok {
		t.Errorf("status output %q without a reply", res.outputs["status"])
	}
}

// hang is a handler that answers only when the request or the test ends.
func hang(started chan<- struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		w.(http.Flusher).Flush() // headers now; the body never
		if started != nil {
			started <- struct{}{}
		}
		<-r.Context().Done()
	}
}

func TestRunTimeout(t *testing.T) {
	srv := serve(t, hang(nil))
	start := time.Now()
	res := run(t.Context(), t, map[string]any{"url": srv.URL, "timeout": "100ms"})
	if res.err == nil || !strings.Contains(res.err.Error(), "timed out after 100ms") {
		t.Errorf("Run: %v, want a time-out", res.err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s with a 100ms timeout", d)
	}

	// A server that never sends its headers times out the same way.
	blocked := make(chan struct{})
	t.Cleanup(func() { close(blocked) })
	srv = serve(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-blocked:
		case <-r.Context().Done():
		}
	})
	res = run(t.Context(), t, map[string]any{"url": srv.URL, "timeout": "100ms"})
	if res.err == nil || !strings.Contains(res.err.Error(), "GET "+srv.URL+": timed out after 100ms") {
		t.Errorf("Run: %v, want a time-out", res.err)
	}
}

func TestRunCancel(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := serve(t, hang(started))
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan result, 1)
	go func() { done <- run(ctx, t, map[string]any{"url": srv.URL}) }()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the server")
	}
	cancel()
	select {
	case res := <-done:
		if !errors.Is(res.err, context.Canceled) && (res.err == nil || !strings.Contains(res.err.Error(), "canceled")) {
			t.Errorf("Run: %v, want a cancellation", res.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestRunLogsLargeBody(t *testing.T) {
	line := strings.Repeat("é", 40) + "\n" // two-byte characters: the cut must not split one
	body := strings.Repeat(line, 2*logBodyLimit/len(line))
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
	res := run(t.Context(), t, map[string]any{"url": srv.URL})
	if res.err != nil {
		t.Fatal(res.err)
	}
	if !strings.Contains(res.log, "truncated") {
		t.Errorf("log does not say the body was truncated")
	}
	if n := len(res.log); n < logBodyLimit-100 || n > logBodyLimit+500 {
		t.Errorf("log is %d bytes, want about %d", n, logBodyLimit)
	}
	if !strings.Contains(res.log, "200 OK in ") {
		t.Errorf("log does not show the status and duration:\n%.200s", res.log)
	}
}

func TestRunBinaryBody(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0xff, 0xfe, 0, 1}) })
	res := run(t.Context(), t, map[string]any{"url": srv.URL})
	if res.err != nil {
		t.Fatal(res.err)
	}
	if !strings.Contains(res.log, "not text: 4 bytes not shown") {
		t.Errorf("log %q does not say the body is binary", res.log)
	}
}
