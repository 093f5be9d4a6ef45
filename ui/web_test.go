package ui_test

import (
	"net/http"
	"testing"
)

// TestFragmentETag: a live update of a block that did not change is a 304
// without a body.
func TestFragmentETag(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	get := func(tag string) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", srv.URL+"/health", nil)
		req.Header.Set("Kiln-Fragment", "health-status")
		if tag != "" {
			req.Header.Set("If-None-Match", tag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := get("")
	tag := first.Header.Get("ETag")
	if first.StatusCode != 200 || tag == "" {
		t.Fatalf("first fetch: %d, ETag %q", first.StatusCode, tag)
	}
	if again := get(tag); again.StatusCode != http.StatusNotModified {
		t.Errorf("fetch with If-None-Match %s: %d, want 304", tag, again.StatusCode)
	}
	if other := get(`"stale"`); other.StatusCode != 200 {
		t.Errorf("fetch with a stale tag: %d, want 200", other.StatusCode)
	}
}
