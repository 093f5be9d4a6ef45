package ui_test

// Tests of authentication and authorization over real HTTP: bearer tokens
// on every API route, browser sessions, CSRF, the sign-in page, and the
// admin endpoints for users and tokens.

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// authAPI is the API of a real Kiln with authentication configured: a
// token and a user of each role.
type authAPI struct {
	k      *kilntest.Kiln
	srv    *httptest.Server
	echo   *echo.Echo
	tokens map[string]string // role -> token
}

// testUsers are the users of authAPI, by role; each one's password is
// "pw-" and their name.
var testUsers = map[string]string{store.RoleAdmin: "ada", store.RoleOperator: "otto", store.RoleViewer: "vic"}

func password(name string) string { return "pw-" + name + "-long-enough" }

func newAuthAPI(t *testing.T) *authAPI {
	t.Helper()
	k, srv := newAPI(t, lateDAG)
	st := k.Store()
	st.SetPasswordCost(bcrypt.MinCost)
	a := &authAPI{k: k, srv: srv, tokens: map[string]string{}}
	// The admin first: the first user or token must be one.
	for _, role := range []string{store.RoleAdmin, store.RoleOperator, store.RoleViewer} {
		_, tok, err := st.CreateToken(t.Context(), role+"-token", role, time.Now())
		if err != nil {
			t.Fatalf("creating the %s token: %v", role, err)
		}
		a.tokens[role] = tok
		name := testUsers[role]
		if _, err := st.AddUser(t.Context(), name, role, password(name), time.Now()); err != nil {
			t.Fatalf("adding %s: %v", name, err)
		}
	}
	e, ok := ui.New(k.Scheduler, ui.Options{}).Handler().(*echo.Echo)
	if !ok {
		t.Fatal("Handler is not an *echo.Echo")
	}
	a.echo = e
	return a
}

// authCall makes a request with extra headers and does not follow
// redirects.
func authCall(t *testing.T, method, target, body string, header http.Header) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, target, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// An event stream runs until the client leaves: its status and
		// header are the answer.
		return response{resp.StatusCode, resp.Header, nil}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

// requiredRole is the authorization policy of the API, written down
// independently of the route table: reading needs viewer; changing runs,
// DAGs and backfills needs operator; pools, users and tokens need admin
// (users and tokens even to be listed, and the backup, which holds them).
func requiredRole(method, path string) string {
	switch {
	case path == "/api/v1/logout":
		return store.RoleViewer // anyone may give back their own login
	case strings.HasPrefix(path, "/api/v1/users"), strings.HasPrefix(path, "/api/v1/tokens"), path == "/api/v1/backup":
		return store.RoleAdmin
	case method == http.MethodGet || method == http.MethodHead:
		return store.RoleViewer
	case strings.HasPrefix(path, "/api/v1/pools"):
		return store.RoleAdmin
	}
	return store.RoleOperator
}

var routeParam = regexp.MustCompile(`:(\w+)`)

// apiRoutes returns the API routes the server registers, with "nope" for
// every path parameter. /healthz and /metrics are not under /api and need
// no authentication; nor does /api/v1/login, which is how a client comes
// by a token (TestAPILogin).
func (a *authAPI) apiRoutes() []*echo.Route {
	var out []*echo.Route
	for _, r := range a.echo.Routes() {
		if strings.HasPrefix(r.Path, "/api/") && r.Path != "/api/v1/login" {
			out = append(out, r)
		}
	}
	if len(out) < 20 {
		panic("too few API routes; did the route table move?")
	}
	return out
}

func rank(role string) int { return slices.Index(store.Roles, role) }

// TestEveryRouteNeedsItsRole calls every API route without a token, with a
// bad one, and with a token of each role.
func TestEveryRouteNeedsItsRole(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	for _, r := range a.apiRoutes() {
		want := requiredRole(r.Method, r.Path)
		target := a.srv.URL + routeParam.ReplaceAllString(r.Path, "nope")
		name := r.Method + " " + r.Path
		t.Run(name, func(t *testing.T) {
			resp := authCall(t, r.Method, target, "", nil)
			resp.wantError(t, http.StatusUnauthorized, "authentication required")
			if !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("no token: WWW-Authenticate = %q, want Bearer", resp.header.Get("WWW-Authenticate"))
			}
			for _, bad := range []string{"kiln_0123456789abcdef_" + strings.Repeat("0", 64), "garbage"} {
				authCall(t, r.Method, target, "", bearer(bad)).wantError(t, http.StatusUnauthorized, "token")
			}
			authCall(t, r.Method, target, "", http.Header{"Authorization": {"Basic YWRhOnB3"}}).wantError(t, http.StatusUnauthorized, "Bearer")

			for _, role := range store.Roles {
				resp := authCall(t, r.Method, target, "", bearer(a.tokens[role]))
				if rank(role) < rank(want) {
					resp.wantError(t, http.StatusForbidden, "needs the "+want+" role", "you are "+role+"-token ("+role+")")
				} else if resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden {
					t.Errorf("%s token: %d %s, want neither 401 nor 403", role, resp.status, resp.body)
				}
			}
		})
	}
}

// TestOpenAPIRoles checks that the OpenAPI document names, for every
// operation, the role the policy above requires.
func TestOpenAPIRoles(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	resp := authCall(t, "GET", a.srv.URL+"/api/v1/openapi.json", "", bearer(a.tokens[store.RoleViewer]))
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	resp.decode(t, &doc)
	for _, r := range a.apiRoutes() {
		path := routeParam.ReplaceAllString(r.Path, "{$1}")
		raw, ok := doc.Paths[path][strings.ToLower(r.Method)]
		if !ok {
			continue // TestOpenAPICoversRoutes reports it
		}
		var op struct {
			Role string `json:"x-kiln-role"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatal(err)
		}
		if want := requiredRole(r.Method, r.Path); op.Role != want {
			t.Errorf("%s %s: x-kiln-role = %q, want %q", r.Method, path, op.Role, want)
		}
	}
}

func TestOpenEndpoints(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	if r := authCall(t, "GET", a.srv.URL+"/healthz", "", nil); r.status != http.StatusOK {
		t.Errorf("/healthz without a token: %d %s, want 200", r.status, r.body)
	}
	if r := authCall(t, "GET", a.srv.URL+"/ui/static/kiln.css", "", nil); r.status != http.StatusOK {
		t.Errorf("stylesheet without a session: %d, want 200", r.status)
	}
}

// TestAuthOff checks the laptop case: without users or tokens nobody is
// asked, and the first admin can be added through the API; then everyone
// is.
func TestAuthOff(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	k.Store().SetPasswordCost(bcrypt.MinCost)
	if r := authCall(t, "PUT", srv.URL+"/api/v1/pools/gpu", `{"slots": 2}`, nil); r.status != http.StatusOK {
		t.Fatalf("auth off: PUT pool: %d %s", r.status, r.body)
	}
	r := authCall(t, "GET", srv.URL+"/health", "", nil)
	if r.status != http.StatusOK || strings.Contains(string(r.body), `id="whoami"`) {
		t.Errorf("auth off: GET /health = %d, want 200 with nobody signed in", r.status)
	}
	if r := authCall(t, "GET", srv.URL+"/login", "", nil); r.status != http.StatusFound || r.header.Get("Location") != "/dags" {
		t.Errorf("auth off: GET /login = %d to %q, want a redirect to /dags", r.status, r.header.Get("Location"))
	}
	// A page of another site cannot make a visitor's browser change
	// anything, token or not.
	authCall(t, "PUT", srv.URL+"/api/v1/pools/gpu", `{"slots": 3}`, http.Header{"Sec-Fetch-Site": {"cross-site"}}).
		wantError(t, http.StatusForbidden, "another site")

	authCall(t, "POST", srv.URL+"/api/v1/users", `{"name": "vic", "role": "viewer", "password": "long-enough"}`, nil).
		wantError(t, http.StatusConflict, "must have the admin role")
	if r := authCall(t, "POST", srv.URL+"/api/v1/users", `{"name": "ada", "role": "admin", "password": "long-enough"}`, nil); r.status != http.StatusCreated {
		t.Fatalf("bootstrap admin: %d %s", r.status, r.body)
	}
	authCall(t, "GET", srv.URL+"/api/v1/dags", "", nil).wantError(t, http.StatusUnauthorized, "authentication required")
	if r := authCall(t, "GET", srv.URL+"/health", "", nil); r.status != http.StatusFound {
		t.Errorf("auth on: GET /health without a session = %d, want 302", r.status)
	}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, as a browser's history would show them.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (br *browser) do(method, path, contentType, body string, header http.Header) response {
	br.t.Helper()
	req, err := http.NewRequestWithContext(br.t.Context(), method, br.base+path, strings.NewReader(body))
	if err != nil {
		br.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := br.c.Do(req)
	if err != nil {
		br.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		br.t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

func (br *browser) get(path string) response { return br.do("GET", path, "", "", nil) }

func (br *browser) postForm(path string, form url.Values) response {
	return br.do("POST", path, "application/x-www-form-urlencoded", form.Encode(), nil)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]*)"`)

// csrfOf returns the CSRF token a page's forms carry.
func csrfOf(t *testing.T, page response) string {
	t.Helper()
	m := csrfInput.FindSubmatch(page.body)
	if m == nil {
		t.Fatalf("no csrf field on the page:\n%s", page.body)
	}
	return string(m[1])
}

// login signs in from the sign-in page and returns where it led.
func (br *browser) login(name, pw, next string) response {
	br.t.Helper()
	page := br.get("/login?next=" + url.QueryEscape(next))
	if page.status != http.StatusOK {
		br.t.Fatalf("GET /login: %d %s", page.status, page.body)
	}
	return br.postForm("/login", url.Values{"csrf": {csrfOf(br.t, page)}, "name": {name}, "password": {pw}, "next": {next}})
}

// wantPageError checks an error answer to a browser: its status and that
// the page (HTML or JSON alike) mentions every substring.
func wantPageError(t *testing.T, r response, status int, substrings ...string) {
	t.Helper()
	if r.status != status {
		t.Errorf("status = %d, want %d (body %.300s)", r.status, status, r.body)
	}
	text := html.UnescapeString(string(r.body))
	for _, s := range substrings {
		if !strings.Contains(text, s) {
			t.Errorf("error page does not mention %q:\n%s", s, r.body)
		}
	}
}

func wantRedirect(t *testing.T, r response, status int, location string) {
	t.Helper()
	if r.status != status || r.header.Get("Location") != location {
		t.Errorf("got %d to %q, want %d to %q (body %.200s)", r.status, r.header.Get("Location"), status, location, r.body)
	}
}

func TestSignInAndOut(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	br := newBrowser(t, a.srv.URL)

	wantRedirect(t, br.get("/health?x=1"), http.StatusFound, "/login?next=%2Fhealth%3Fx%3D1")
	// A live update without a session gets 401, on which kiln.js reloads.
	wantPageError(t, br.do("GET", "/health", "", "", http.Header{"Kiln-Fragment": {"health-status"}}), http.StatusUnauthorized, "sign in")

	page := br.get("/login?next=/health")
	for _, want := range []string{`id="login-form"`, `name="name"`, `name="password"`, `id="login-submit"`, `name="next" value="/health"`} {
		if !strings.Contains(string(page.body), want) {
			t.Errorf("sign-in page lacks %s", want)
		}
	}
	csrf := csrfOf(t, page)

	// Without the form's CSRF token, or with another one: refused.
	for _, token := range []string{"", strings.Repeat("0", 64)} {
		r := br.postForm("/login", url.Values{"csrf": {token}, "name": {"ada"}, "password": {password("ada")}})
		if r.status != http.StatusForbidden || !strings.Contains(string(r.body), `class="banner error"`) {
			t.Errorf("sign-in with csrf %q: %d, want 403 with the form and an error banner", token, r.status)
		}
	}
	r := br.postForm("/login", url.Values{"csrf": {csrf}, "name": {"ada"}, "password": {"wrong-password"}, "next": {"/health"}})
	if r.status != http.StatusUnauthorized || !strings.Contains(string(r.body), "Wrong name or password") || !strings.Contains(string(r.body), `value="ada"`) {
		t.Errorf("wrong password: %d, want 401 with the form, the name kept and an error:\n%s", r.status, r.body)
	}

	r = br.postForm("/login", url.Values{"csrf": {csrf}, "name": {"ada"}, "password": {password("ada")}, "next": {"/health"}})
	wantRedirect(t, r, http.StatusSeeOther, "/health")
	var session *http.Cookie
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "kiln_session" {
			session = c
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Path != "/" || session.Secure {
		t.Fatalf("session cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure over plain HTTP", session)
	}

	page = br.get("/health")
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `<span id="whoami">ada</span>`) {
		t.Fatalf("signed in: GET /health = %d, want 200 naming ada:\n%s", page.status, page.body)
	}
	csrf = csrfOf(t, page)
	// Signed in, /login goes where it is told.
	wantRedirect(t, br.get("/login?next=/health"), http.StatusFound, "/health")

	// The browser's own fetches of the API use the session.
	if r := br.get("/api/v1/users"); r.status != http.StatusOK {
		t.Errorf("GET /api/v1/users with ada's session: %d %s", r.status, r.body)
	}

	// Signing out needs the CSRF token too.
	wantPageError(t, br.postForm("/logout", url.Values{}), http.StatusForbidden, "CSRF")
	wantRedirect(t, br.postForm("/logout", url.Values{"csrf": {csrf}}), http.StatusSeeOther, "/login")
	wantRedirect(t, br.get("/health"), http.StatusFound, "/login?next=%2Fhealth")

	// The old cookie, sent again, opens nothing.
	r = authCall(t, "GET", a.srv.URL+"/api/v1/dags", "", http.Header{"Cookie": {"kiln_session=" + session.Value}})
	r.wantError(t, http.StatusUnauthorized, "authentication required")
}

// TestSessionCSRFAndRoles: a session that changes anything needs its CSRF
// token, and its role.
func TestSessionCSRFAndRoles(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	signIn := func(name string) (*browser, string) {
		br := newBrowser(t, a.srv.URL)
		wantRedirect(t, br.login(name, password(name), "/health"), http.StatusSeeOther, "/health")
		return br, csrfOf(t, br.get("/health"))
	}
	otto, ottoCSRF := signIn("otto")
	const trigger = "/api/v1/dags/adhoc/runs"
	otto.do("POST", trigger, "application/json", "{}", nil).wantError(t, http.StatusForbidden, "CSRF")
	otto.do("POST", trigger, "application/json", "{}", http.Header{"X-CSRF-Token": {"forged"}}).wantError(t, http.StatusForbidden, "CSRF")
	if r := otto.do("POST", trigger, "application/json", "{}", http.Header{"X-CSRF-Token": {ottoCSRF}}); r.status != http.StatusCreated {
		t.Errorf("operator's session with its CSRF token: %d %s, want 201", r.status, r.body)
	}
	// Another session's token does not do.
	vic, vicCSRF := signIn("vic")
	otto.do("POST", trigger, "application/json", "{}", http.Header{"X-CSRF-Token": {vicCSRF}}).wantError(t, http.StatusForbidden, "CSRF")

	vic.do("POST", trigger, "application/json", "{}", http.Header{"X-CSRF-Token": {vicCSRF}}).
		wantError(t, http.StatusForbidden, "forbidden: triggering needs the operator role; you are vic (viewer)")
	vic.do("PUT", "/api/v1/pools/gpu", "application/json", `{"slots": 1}`, http.Header{"X-CSRF-Token": {vicCSRF}}).
		wantError(t, http.StatusForbidden, "managing pools needs the admin role")
	if r := vic.get("/api/v1/dags"); r.status != http.StatusOK {
		t.Errorf("viewer's session reading: %d", r.status)
	}

	// A bearer token needs no CSRF token, and beats a cookie.
	r := authCall(t, "POST", a.srv.URL+"/api/v1/dags/churn/runs", "{}", bearer(a.tokens[store.RoleOperator]))
	if r.status != http.StatusCreated {
		t.Errorf("operator token: %d %s, want 201", r.status, r.body)
	}
}

// TestEveryPageNeedsASession walks the browser pages: signed out, a page
// sends the browser to sign in (or answers 401 to a form); a viewer may
// read every page and may not send any form, which needs operator at
// least; and a form without the CSRF token is refused before anything.
func TestEveryPageNeedsASession(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	vic := newBrowser(t, a.srv.URL)
	wantRedirect(t, vic.login("vic", password("vic"), "/health"), http.StatusSeeOther, "/health")
	csrf := csrfOf(t, vic.get("/health"))
	anon := newBrowser(t, a.srv.URL)

	n := 0
	for _, r := range a.echo.Routes() {
		switch {
		case strings.HasPrefix(r.Path, "/api/"), strings.HasPrefix(r.Path, "/ui/static/"),
			r.Path == "/", r.Path == "/healthz", r.Path == "/metrics", r.Path == "/login", r.Path == "/logout":
			continue
		}
		n++
		path := routeParam.ReplaceAllString(r.Path, "nope")
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			if r.Method == http.MethodGet {
				wantRedirect(t, anon.get(path), http.StatusFound, "/login?next="+url.QueryEscape(path))
				if resp := vic.get(path); resp.status == http.StatusUnauthorized || resp.status == http.StatusForbidden {
					t.Errorf("viewer: %d, want neither 401 nor 403", resp.status)
				}
				return
			}
			if resp := anon.postForm(path, url.Values{}); resp.status != http.StatusUnauthorized {
				t.Errorf("signed out: %d, want 401", resp.status)
			}
			wantPageError(t, vic.postForm(path, url.Values{}), http.StatusForbidden, "CSRF")
			wantPageError(t, vic.postForm(path, url.Values{"csrf": {csrf}}), http.StatusForbidden, "role; you are vic (viewer)")
		})
	}
	if n == 0 {
		t.Fatal("no page routes")
	}
}

func TestSignInNext(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	for next, want := range map[string]string{
		"":                      "/dags",
		"/dags/churn?tab=runs":  "/dags/churn?tab=runs",
		"https://evil.example/": "/dags",
		"//evil.example/":       "/dags",
		`/\evil.example/`:       "/dags",
		"/\t/evil.example/":     "/dags",
		"javascript:alert(1)":   "/dags",
		"/login":                "/dags",
		"dags":                  "/dags",
	} {
		br := newBrowser(t, a.srv.URL)
		wantRedirect(t, br.login("vic", password("vic"), next), http.StatusSeeOther, want)
	}
}

func TestSignInBackoff(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	br := newBrowser(t, a.srv.URL)
	csrf := csrfOf(t, br.get("/login"))
	try := func(pw string) response {
		return br.postForm("/login", url.Values{"csrf": {csrf}, "name": {"vic"}, "password": {pw}})
	}
	for i := range 3 {
		if r := try("wrong-password"); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i+1, r.status)
		}
	}
	// The fourth attempt comes within the first wait (2 s), and is refused
	// even with the right password.
	r := try(password("vic"))
	if r.status != http.StatusTooManyRequests || !strings.Contains(string(r.body), "Too many sign-in attempts for vic") {
		t.Errorf("fourth attempt: %d, want 429 with a message:\n%s", r.status, r.body)
	}
	// Other names are not slowed down.
	other := newBrowser(t, a.srv.URL)
	wantRedirect(t, other.login("otto", password("otto"), ""), http.StatusSeeOther, "/dags")
}

func TestUsersAPI(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	admin := bearer(a.tokens[store.RoleAdmin])
	u := a.srv.URL + "/api/v1/users"

	r := authCall(t, "POST", u, `{"name": "bob", "role": "operator", "password": "bobs-password"}`, admin)
	if r.status != http.StatusCreated || !slices.Equal(keys(t, r.body), []string{"created_at", "name", "role"}) {
		t.Fatalf("POST user: %d %s", r.status, r.body)
	}
	r = authCall(t, "GET", u, "", admin)
	var users []ui.User
	r.decode(t, &users)
	var names []string
	for _, x := range users {
		names = append(names, x.Name+":"+x.Role)
	}
	if !slices.Equal(names, []string{"ada:admin", "bob:operator", "otto:operator", "vic:viewer"}) || strings.Contains(string(r.body), "password") {
		t.Errorf("GET users = %s", r.body)
	}

	for _, tt := range []struct{ body, want string }{
		{``, "body: empty"},
		{`{`, "body"},
		{`[]`, "want a JSON object"},
		{`{"name": "x", "role": "admin", "password": "long-enough", "extra": 1}`, `unknown field "extra"`},
		{`{"name": 1}`, "name: want a string"},
		{`{"role": "admin", "password": "long-enough"}`, "name: empty name"},
		{`{"name": "a b", "role": "admin", "password": "long-enough"}`, "name:"},
		{`{"name": "carl", "role": "root", "password": "long-enough"}`, `role: want one of viewer, operator, admin, got "root"`},
		{`{"name": "carl", "role": "viewer", "password": "short"}`, "password: password shorter than 8"},
		{`{"name": "carl", "role": "viewer", "password": "` + strings.Repeat("p", 73) + `"}`, "password: password longer than 72 bytes"},
	} {
		authCall(t, "POST", u, tt.body, admin).wantError(t, http.StatusBadRequest, tt.want)
	}
	authCall(t, "POST", u, `{"name": "bob", "role": "viewer", "password": "long-enough"}`, admin).wantError(t, http.StatusConflict, "already exists")

	authCall(t, "DELETE", u+"/nobody", "", admin).wantError(t, http.StatusNotFound, "nobody")
	if r := authCall(t, "DELETE", u+"/bob", "", admin); r.status != http.StatusNoContent {
		t.Errorf("DELETE bob: %d %s", r.status, r.body)
	}
	authCall(t, "DELETE", u+"/bob", "", admin).wantError(t, http.StatusNotFound, "bob")

	// ada and the admin token are the admins; neither may go last.
	tokens := listTokens(t, a)
	adminID := tokens[0].ID
	if r := authCall(t, "DELETE", u+"/ada", "", admin); r.status != http.StatusNoContent {
		t.Fatalf("DELETE ada while the admin token remains: %d %s", r.status, r.body)
	}
	authCall(t, "DELETE", a.srv.URL+"/api/v1/tokens/"+adminID, "", admin).wantError(t, http.StatusConflict, "last admin")
}

func listTokens(t *testing.T, a *authAPI) []ui.Token {
	t.Helper()
	r := authCall(t, "GET", a.srv.URL+"/api/v1/tokens", "", bearer(a.tokens[store.RoleAdmin]))
	if r.status != http.StatusOK {
		t.Fatalf("GET tokens: %d %s", r.status, r.body)
	}
	var out []ui.Token
	r.decode(t, &out)
	return out
}

func TestTokensAPI(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	admin := bearer(a.tokens[store.RoleAdmin])
	u := a.srv.URL + "/api/v1/tokens"

	r := authCall(t, "POST", u, `{"name": "ci", "role": "operator"}`, admin)
	if r.status != http.StatusCreated {
		t.Fatalf("POST token: %d %s", r.status, r.body)
	}
	var nt ui.NewToken
	r.decode(t, &nt)
	if nt.Name != "ci" || nt.Role != "operator" || !strings.HasPrefix(nt.Secret, "kiln_"+nt.ID+"_") || nt.LastUsedAt != nil {
		t.Fatalf("new token = %+v", nt)
	}
	if r := authCall(t, "POST", a.srv.URL+"/api/v1/dags/adhoc/runs", "{}", bearer(nt.Secret)); r.status != http.StatusCreated {
		t.Errorf("triggering with the new token: %d %s", r.status, r.body)
	}

	r = authCall(t, "GET", u, "", admin)
	if strings.Contains(string(r.body), nt.Secret[len("kiln_"+nt.ID+"_"):]) || strings.Contains(string(r.body), `"token"`) {
		t.Errorf("GET tokens shows a secret: %s", r.body)
	}
	tokens := listTokens(t, a)
	if len(tokens) != 4 || tokens[3].ID != nt.ID || tokens[3].LastUsedAt == nil {
		t.Errorf("tokens = %+v, want the 3 of the test then ci, used", tokens)
	}

	for _, tt := range []struct{ body, want string }{
		{``, "body: empty"},
		{`{"name": "x"`, "body"},
		{`{"name": "x", "role": "admin", "secret": "mine"}`, `unknown field "secret"`},
		{`{"role": "admin"}`, "name: empty name"},
		{`{"name": "x", "role": ""}`, `role: want one of`},
		{`{"name": "x", "role": 3}`, "role: want a string"},
	} {
		authCall(t, "POST", u, tt.body, admin).wantError(t, http.StatusBadRequest, tt.want)
	}

	authCall(t, "DELETE", u+"/0123456789abcdef", "", admin).wantError(t, http.StatusNotFound, "0123456789abcdef")
	if r := authCall(t, "DELETE", u+"/"+nt.ID, "", admin); r.status != http.StatusNoContent {
		t.Fatalf("revoking: %d %s", r.status, r.body)
	}
	authCall(t, "GET", a.srv.URL+"/api/v1/dags", "", bearer(nt.Secret)).wantError(t, http.StatusUnauthorized, "invalid, revoked or unknown token")
}

// TestRequesterIsThePrincipal: with auth on, a backfill is requested by
// the token's name, whatever the client claims in X-Kiln-User.
func TestRequesterIsThePrincipal(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	h := bearer(a.tokens[store.RoleOperator])
	h.Set("Content-Type", "application/json")
	h.Set(ui.UserHeader, "mallory")
	resp := authCall(t, "POST", a.srv.URL+"/api/v1/dags/late/backfills", `{"from": "2026-01-01", "to": "2026-01-02", "dry_run": true}`, h)
	if resp.status >= 300 {
		t.Fatalf("backfill: %d %s", resp.status, resp.body)
	}
	var plan ui.Backfill
	resp.decode(t, &plan)
	if plan.RequestedBy != "operator-token" {
		t.Errorf("requested_by = %q, want the token's name", plan.RequestedBy)
	}
}

// TestUpdateUserAPI: an admin changes a user's role and password; the user
// signs in with the new password and has the new role. (The store's tests
// cover the last admin.)
func TestUpdateUserAPI(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	admin := bearer(a.tokens[store.RoleAdmin])
	admin.Set("Content-Type", "application/json")
	resp := authCall(t, "PATCH", a.srv.URL+"/api/v1/users/vic", `{"role": "operator", "password": "a new password"}`, admin)
	var u ui.User
	if resp.status != 200 {
		t.Fatalf("PATCH vic: %d %s", resp.status, resp.body)
	}
	resp.decode(t, &u)
	if u.Name != "vic" || u.Role != store.RoleOperator {
		t.Errorf("PATCH vic = %+v", u)
	}
	if got, err := a.k.Store().CheckPassword("vic", "a new password"); err != nil || got.Role != store.RoleOperator {
		t.Errorf("vic after the change: %+v, %v", got, err)
	}
	for _, tt := range []struct {
		path, body string
		status     int
	}{
		{"/api/v1/users/vic", `{}`, 400},
		{"/api/v1/users/vic", `{"role": "root"}`, 400},
		{"/api/v1/users/vic", `{"password": "short"}`, 400},
		{"/api/v1/users/nobody", `{"role": "viewer"}`, 404},
	} {
		if resp := authCall(t, "PATCH", a.srv.URL+tt.path, tt.body, admin); resp.status != tt.status {
			t.Errorf("PATCH %s %s: %d %s, want %d", tt.path, tt.body, resp.status, resp.body, tt.status)
		}
	}
}
