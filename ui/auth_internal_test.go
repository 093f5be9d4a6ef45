package ui

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
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

func (storeOnly) Started() bool { return true }

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
	l := newLoginLimiter()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := range nameBurst {
		if _, w := l.reserve("vic", "192.0.2.1", t0); w != 0 {
			t.Fatalf("attempt %d: wait %v, want none", i+1, w)
		}
	}
	if _, w := l.reserve("vic", "192.0.2.1", t0); w != nameEvery {
		t.Errorf("attempt %d at once: wait %v, want %v", nameBurst+1, w, nameEvery)
	}
	if _, w := l.reserve("vic", "192.0.2.2", t0); w != nameEvery {
		t.Errorf("the same name from another address: wait %v, want %v", w, nameEvery)
	}
	if _, w := l.reserve("vic", "192.0.2.1", t0.Add(nameEvery)); w != 0 {
		t.Errorf("a refill later: wait %v, want none", w)
	}
	if _, w := l.reserve("otto", "192.0.2.1", t0); w != 0 {
		t.Errorf("another name waits %v", w)
	}

	// One address trying many names is bounded too.
	for i := range clientBurst {
		name := "n" + time.Duration(i).String()
		if _, w := l.reserve(name, "198.51.100.7", t0); w != 0 && i < clientBurst {
			t.Fatalf("address attempt %d: wait %v", i+1, w)
		}
	}
	if _, w := l.reserve("fresh", "198.51.100.7", t0); w != clientEvery {
		t.Errorf("address past its burst: wait %v, want %v", w, clientEvery)
	}
	// A refused attempt takes nothing from the name's bucket.
	if _, w := l.reserve("fresh", "192.0.2.9", t0); w != 0 {
		t.Errorf("fresh from elsewhere: wait %v, want none", w)
	}

	// A success resets the name and gives the address its token back.
	var last loginTicket
	for range nameBurst {
		last, _ = l.reserve("ann", "203.0.113.5", t0)
	}
	l.succeed(last, t0)
	for i := range nameBurst {
		if _, w := l.reserve("ann", "203.0.113.5", t0); w != 0 {
			t.Errorf("after a success, attempt %d: wait %v, want none", i+1, w)
		}
	}

	// The tables stay bounded.
	for i := range loginMaxKeys + 10 {
		l.reserve(time.Duration(i).String(), time.Duration(i).String(), t0)
	}
	if l.names.Len() > loginMaxKeys || l.clients.Len() > loginMaxKeys {
		t.Errorf("%d names, %d addresses tracked, want at most %d", l.names.Len(), l.clients.Len(), loginMaxKeys)
	}
}

// TestLoginBurstChecksFewPasswords: 200 wrong passwords for one account,
// sent at once, get at most a handful of password checks; the rest are
// told to wait, with Retry-After.
func TestLoginBurstChecksFewPasswords(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.AddUser(t.Context(), "vic", store.RoleAdmin, "right horse battery", time.Now()); err != nil {
		t.Fatal(err)
	}
	s := New(storeOnly{st: st}, Options{})
	// The clock stands still, so that no token comes back during the burst
	// however long a loaded machine takes to answer it.
	now := time.Now()
	s.auth.now = func() time.Time { return now }
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	// The sign-in form's CSRF cookie.
	resp, err := http.Get(srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var csrf *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == loginCookie {
			csrf = ck
		}
	}
	if csrf == nil {
		t.Fatal("no sign-in cookie")
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const n = 200
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			form := url.Values{"name": {"vic"}, "password": {fmt.Sprintf("guess %d", i)}, csrfField: {csrf.Value}}
			req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.0.%d.%d", i/250, i%250)) // not believed
			req.AddCookie(csrf)
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusUnauthorized] > nameBurst || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != n {
		t.Errorf("answers %v: want at most %d password checks (401), the rest 429", count, nameBurst)
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
