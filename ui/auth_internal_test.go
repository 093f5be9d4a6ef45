package ui

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// storeOnly is a Backend that has only a store: enough for the routes
// that read nothing else, such as /api/v1/openapi.json.
type storeOnly struct {
	Backend
	st *store.Store
}

func (b storeOnly) Store() *store.Store { return b.st }

// TestLoopbackOnlyWithoutAuth checks that, without users or tokens, a
// request that reached the server on a non-loopback address is refused,
// and that once a token exists it is answered like any other. The
// addresses are only put in the request's context: nothing is sent.
func TestLoopbackOnlyWithoutAuth(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := New(storeOnly{st: st}, Options{}).Handler()

	get := func(local net.IP, token string) int {
		req := httptest.NewRequest("GET", "/api/v1/openapi.json", nil)
		if local != nil {
			req = req.WithContext(context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: local, Port: 8080}))
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code
	}
	remote := net.ParseIP("192.0.2.10") // TEST-NET-1: documentation only
	for _, tt := range []struct {
		local net.IP
		want  int
	}{
		{nil, http.StatusOK},
		{net.IPv4(127, 0, 0, 1), http.StatusOK},
		{net.IPv6loopback, http.StatusOK},
		{remote, http.StatusForbidden},
		{net.ParseIP("2001:db8::1"), http.StatusForbidden},
	} {
		if got := get(tt.local, ""); got != tt.want {
			t.Errorf("auth off, local address %v: %d, want %d", tt.local, got, tt.want)
		}
	}

	_, tok, err := st.CreateToken(t.Context(), "ci", store.RoleAdmin, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := get(remote, tok); got != http.StatusOK {
		t.Errorf("auth on, remote with a token: %d, want 200", got)
	}
	if got := get(remote, ""); got != http.StatusUnauthorized {
		t.Errorf("auth on, remote without a token: %d, want 401", got)
	}
}

func TestLoginLimiter(t *testing.T) {
	var l loginLimiter
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range freeLoginFailures {
		if w := l.wait("vic", t0); w != 0 {
			t.Fatalf("after %d failures: wait %v, want none", i, w)
		}
		l.fail("vic", t0)
	}
	steps := []struct {
		after time.Duration // since the last failure
		want  time.Duration
	}{
		{0, 2 * time.Second},
		{time.Second, time.Second},
		{2 * time.Second, 0},
	}
	for _, s := range steps {
		if got := l.wait("vic", t0.Add(s.after)); got != s.want {
			t.Errorf("3 failures, %v later: wait %v, want %v", s.after, got, s.want)
		}
	}
	// Each further failure doubles the wait, up to a minute.
	now := t0
	for _, want := range []time.Duration{4, 8, 16, 32, 60, 60, 60} {
		now = now.Add(time.Hour / 100) // well past any wait, well inside loginForgetAfter
		l.fail("vic", now)
		if got := l.wait("vic", now); got != want*time.Second {
			t.Errorf("after failure at %v: wait %v, want %v", now.Sub(t0), got, want*time.Second)
		}
	}
	if w := l.wait("otto", now); w != 0 {
		t.Errorf("another name waits %v", w)
	}
	if w := l.wait("vic", now.Add(loginForgetAfter)); w != 0 {
		t.Errorf("after a quiet quarter hour: wait %v, want none", w)
	}
	l.succeed("vic")
	if w := l.wait("vic", now); w != 0 {
		t.Errorf("after a success: wait %v, want none", w)
	}

	// The table stays bounded.
	for i := range loginMaxNames + 10 {
		l.fail(string(rune('a'+i%26))+time.Duration(i).String(), now)
	}
	if n := len(l.failures); n > loginMaxNames {
		t.Errorf("%d names tracked, want at most %d", n, loginMaxNames)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "/dags",
		"/":                      "/",
		"/dags/x?tab=grid#top":   "/dags/x?tab=grid#top",
		"//evil.example":         "/dags",
		"/\\evil.example":        "/dags",
		"/\x00":                  "/dags",
		"/\r\nSet-Cookie: x=1":   "/dags",
		"http://evil.example/":   "/dags",
		"evil.example":           "/dags",
		"/logout":                "/dags",
		"/login?next=//evil":     "/dags",
		"/dags/%2F%2Fevil":       "/dags/%2F%2Fevil", // a path on this server
		"javascript:alert(1)//x": "/dags",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLocalPath checks the "next" of the pause and mark forms against the
// addresses a browser reads as another site's.
func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                     "def",
		"/dags/x/graph":        "/dags/x/graph",
		"/login":               "/login", // unlike safeNext: any page here will do
		"//evil.example":       "def",
		"/\\evil.example":      "def",
		"/\t/evil.example":     "def",
		"/\n/evil.example":     "def",
		"http://evil.example/": "def",
	} {
		if got := localPath(in, "def"); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRoleNames(t *testing.T) {
	for _, r := range []Role{RoleViewer, RoleOperator, RoleAdmin} {
		if got, ok := parseRole(r.String()); !ok || got != r {
			t.Errorf("parseRole(%q) = %v, %v", r.String(), got, ok)
		}
		if !store.ValidRole(r.String()) {
			t.Errorf("store does not know role %q", r)
		}
	}
	if _, ok := parseRole("root"); ok {
		t.Error(`parseRole("root") ok`)
	}
}

func TestActionName(t *testing.T) {
	e := echo.New()
	for _, tt := range []struct{ method, path, want string }{
		{"POST", "/api/v1/dags/:dag/runs", "triggering"},
		{"POST", "/dags/:dag/trigger", "triggering"},
		{"GET", "/dags/:dag/trigger", "viewing this"},
		{"POST", "/api/v1/dags/:dag/runs/:run/clear", "clearing tasks"},
		{"PATCH", "/api/v1/dags/:dag", "pausing and unpausing DAGs"},
		{"POST", "/dags/:dag/pause", "pausing and unpausing DAGs"},
		{"PATCH", "/api/v1/dags/:dag/runs/:run", "marking runs and tasks"},
		{"PATCH", "/api/v1/dags/:dag/runs/:run/tasks/:task", "marking runs and tasks"},
		{"POST", "/dags/:dag/runs/:run/mark", "marking runs and tasks"},
		{"POST", "/api/v1/dags/:dag/backfills", "starting a backfill"},
		{"DELETE", "/api/v1/backfills/:id", "cancelling a backfill"},
		{"POST", "/backfills/:id/cancel", "cancelling a backfill"},
		{"PUT", "/api/v1/pools/:name", "managing pools"},
		{"GET", "/api/v1/users", "managing users"},
		{"DELETE", "/api/v1/tokens/:id", "managing API tokens"},
		{"POST", "/somewhere", "this"},
	} {
		c := e.NewContext(httptest.NewRequest(tt.method, "/", nil), httptest.NewRecorder())
		c.SetPath(tt.path)
		if got := actionName(c); got != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.method, tt.path, got, tt.want)
		}
	}
}
