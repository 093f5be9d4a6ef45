package ui

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/kilnhq/kiln/store"
)

// Authentication and authorization (docs/api.md#authentication-and-roles).
//
// Who may do what is a role: viewer, operator or admin. An API client
// proves who it is with an API token (Authorization: Bearer kiln_ID_SECRET),
// a browser with the session cookie it got at /login. Users, tokens and
// sessions live in the store, hashed (store/auth.go).
//
// Authentication is on as soon as one user or token exists. Until then
// nobody is asked who they are and every request may do everything, as
// on a laptop — but only requests that reach the server over a loopback
// address are answered: the server refuses to serve beyond its machine
// without authentication, even if it was told to listen there, or the last
// credential was deleted while it runs.
//
// A browser sends its cookie with every request, including the ones a
// hostile page makes it send, so a request with a session that changes
// anything must also carry the session's CSRF token: the hidden form field
// "csrf" the pages render, or the header X-CSRF-Token for a script's
// fetch. A bearer token is never sent by a browser on its own and needs
// no CSRF token.

// Role is what a principal may do. Each role may do everything the roles
// before it may.
type Role int

const (
	// RoleViewer reads everything.
	RoleViewer Role = iota + 1
	// RoleOperator also triggers, clears, pauses, backfills and cancels.
	RoleOperator
	// RoleAdmin also manages pools, users and tokens.
	RoleAdmin
)

// String is the role's name: viewer, operator or admin.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return store.RoleViewer
	case RoleOperator:
		return store.RoleOperator
	case RoleAdmin:
		return store.RoleAdmin
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// parseRole is the inverse of String.
func parseRole(s string) (Role, bool) {
	switch s {
	case store.RoleViewer:
		return RoleViewer, true
	case store.RoleOperator:
		return RoleOperator, true
	case store.RoleAdmin:
		return RoleAdmin, true
	}
	return 0, false
}

// Principal is who made a request.
type Principal struct {
	// Name is the user's name, or the token's name (a login token's is
	// its user's).
	Name string
	Role Role
	// tokenID is the API token the request was made with; "" for a
	// session cookie.
	tokenID string
	// userToken is true for a token that acts as a user (kiln login).
	userToken bool
}

// Context keys of what authentication learnt about a request.
const (
	ctxPrincipal = "kiln.principal"
	ctxCSRF      = "kiln.csrf"
	// ctxSession holds the session id of a request authenticated by its
	// cookie; it is what makes authorize ask for a CSRF token.
	ctxSession = "kiln.session"
)

// Names on the wire.
const (
	sessionCookie = "kiln_session"
	csrfField     = "csrf"
	csrfHeader    = "X-CSRF-Token"
)

// sessionTTL is how long a sign-in lasts. It does not slide: a session
// that does not renew itself costs no write per request.
const sessionTTL = 12 * time.Hour

// principal is who made the request; nil when auth is off.
func principal(c echo.Context) *Principal {
	p, _ := c.Get(ctxPrincipal).(*Principal)
	return p
}

// csrfToken is the CSRF token forms on the page must send back; empty when
// auth is off.
func csrfToken(c echo.Context) string {
	t, _ := c.Get(ctxCSRF).(string)
	return t
}

// sessionCSRF derives a session's CSRF token from its id, so that it need
// not be stored: only who holds the cookie can compute it, and the store
// keeps the id's SHA-256, from which it cannot be derived.
func sessionCSRF(sessionID string) string {
	sum := sha256.Sum256([]byte("kiln csrf\x00" + sessionID))
	return hex.EncodeToString(sum[:])
}

// authState is the server's own state for authentication.
type authState struct {
	// now is the clock; nil for time.Now.
	now    func() time.Time
	logins *loginLimiter
}

func (s *Server) now() time.Time {
	if s.auth.now != nil {
		return s.auth.now()
	}
	return time.Now()
}

// authConfigured reports whether any user or token exists.
func (s *Server) authConfigured() (bool, error) {
	return s.backend.Store().AuthConfigured()
}

// errLoopbackOnly is the answer to a request from another machine while
// authentication is not configured.
var errLoopbackOnly = forbidden("forbidden: authentication is not configured, so this server answers only requests from its own machine; create an admin with `kiln users add NAME --role admin` or a token with `kiln tokens create`")

// fromThisMachine reports whether r reached the server over a loopback
// address. A request served without a TCP listener (a test calling the
// handler, a Unix socket) counts as local.
func fromThisMachine(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr)
	if !ok {
		return true
	}
	return a.IP.IsLoopback()
}

// identify authenticates a request by its bearer token or, failing that,
// its session cookie, and records the principal. It returns false, with
// nothing recorded, when the request has neither; and an error (401) when
// what it has does not hold.
func (s *Server) identify(c echo.Context) (bool, error) {
	r := c.Request()
	if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="kiln"`)
			return false, unauthorized("Authorization: want \"Bearer TOKEN\"")
		}
		t, err := s.backend.Store().CheckToken(r.Context(), strings.TrimSpace(tok), s.now())
		if err != nil {
			if errors.Is(err, store.ErrBadCredentials) {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="kiln", error="invalid_token"`)
				return false, unauthorized("invalid, revoked or unknown token")
			}
			return false, err
		}
		role, ok := parseRole(t.Role)
		if !ok {
			return false, fmt.Errorf("token %s has the unknown role %q", t.ID, t.Role)
		}
		p := &Principal{Name: t.Name, Role: role, tokenID: t.ID, userToken: t.User != ""}
		if p.userToken {
			p.Name = t.User
		}
		c.Set(ctxPrincipal, p)
		return true, nil
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return false, nil
	}
	ss, err := s.backend.Store().CheckSession(ck.Value, s.now())
	if err != nil {
		if errors.Is(err, store.ErrBadCredentials) {
			clearSessionCookie(c)
			return false, nil
		}
		return false, err
	}
	role, ok := parseRole(ss.Role)
	if !ok {
		return false, fmt.Errorf("user %s has the unknown role %q", ss.User, ss.Role)
	}
	c.Set(ctxPrincipal, &Principal{Name: ss.User, Role: role})
	c.Set(ctxSession, ck.Value)
	c.Set(ctxCSRF, sessionCSRF(ck.Value))
	return true, nil
}

// admit says whether a request may go on: with authentication off, when
// it comes from this machine (else errLoopbackOnly); with it on, when it
// says who makes it (identify). false with a nil error is a request that
// must first say who makes it.
func (s *Server) admit(c echo.Context) (bool, error) {
	on, err := s.authConfigured()
	if err != nil {
		return false, err
	}
	if !on {
		if !fromThisMachine(c.Request()) {
			return false, errLoopbackOnly
		}
		return true, nil
	}
	return s.identify(c)
}

// authenticate makes an API request say who makes it once authentication
// is configured: 401 without a valid bearer token or session cookie.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, err := s.admit(c)
		if err != nil {
			return err
		}
		if !ok {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="kiln"`)
			return unauthorized("authentication required: send Authorization: Bearer TOKEN (with the CLI: run `kiln login`, or pass a token with --token or $KILN_TOKEN)")
		}
		return next(c)
	}
}

// authenticatePage is authenticate for browser pages: a GET without a
// session goes to the sign-in page and comes back after it.
func (s *Server) authenticatePage(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, err := s.admit(c)
		if err != nil {
			return err
		}
		if ok {
			return next(c)
		}
		r := c.Request()
		// A live update gets 401, upon which kiln.js reloads the page and
		// so comes here with a plain GET: a redirect would be followed by
		// fetch and swap the sign-in form into the page.
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get(fragmentHeader) == "" {
			return c.Redirect(http.StatusFound, "/login?next="+url.QueryEscape(r.URL.RequestURI()))
		}
		return unauthorized("unauthorized: you are not signed in, or your session has ended; sign in again at /login")
	}
}

// authorize refuses a request whose principal lacks the role min, and a
// request with a session cookie that changes something without the
// session's CSRF token.
func (s *Server) authorize(min Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			unsafe := !safeMethod(r.Method)
			p := principal(c)
			if p == nil {
				// Authentication is off, and every local request may do
				// everything. A browser's request that another site made
				// it send is still refused: no token protects it then.
				if unsafe && r.Header.Get("Sec-Fetch-Site") == "cross-site" {
					return forbidden("forbidden: a request from another site may not change anything here")
				}
				return next(c)
			}
			if _, bySession := c.Get(ctxSession).(string); bySession && unsafe {
				if !validCSRF(c) {
					return forbidden("forbidden: missing or wrong CSRF token; reload the page and try again")
				}
			}
			if p.Role < min {
				return forbidden("forbidden: %s needs the %s role; you are %s (%s)", actionName(c), min, p.Name, p.Role)
			}
			return next(c)
		}
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// validCSRF reports whether the request carries its session's CSRF token,
// in the header or in a form field of the body (never the URL, where it
// would leak into logs and Referer headers).
func validCSRF(c echo.Context) bool {
	want := csrfToken(c)
	got := c.Request().Header.Get(csrfHeader)
	if got == "" && isForm(c.Request()) {
		got = c.Request().PostFormValue(csrfField)
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func isForm(r *http.Request) bool {
	ct := r.Header.Get(echo.HeaderContentType)
	return strings.HasPrefix(ct, echo.MIMEApplicationForm) || strings.HasPrefix(ct, echo.MIMEMultipartForm)
}

// actions name what a route does, for the message that refuses it: the
// first entry whose method matches and whose word is in the route's path.
// A method of "" matches any, "unsafe" any that changes something.
var actions = []struct{ method, word, name string }{
	{"", "/users", "managing users"},
	{"", "/tokens", "managing API tokens"},
	{"unsafe", "/pools", "managing pools"},
	{http.MethodDelete, "/backfills", "cancelling a backfill"},
	{"unsafe", "/cancel", "cancelling a backfill"},
	{"unsafe", "/backfill", "starting a backfill"},
	{"unsafe", "/clear", "clearing tasks"},
	{"unsafe", "/mark", "marking runs and tasks"},
	{http.MethodPatch, "/runs/", "marking runs and tasks"},
	{"unsafe", "pause", "pausing and unpausing DAGs"},
	{http.MethodPatch, "/dags/", "pausing and unpausing DAGs"},
	{"unsafe", "/trigger", "triggering"},
	{http.MethodPost, "/runs", "triggering"},
}

// actionName names what the request's route does.
func actionName(c echo.Context) string {
	method, path := c.Request().Method, c.Path()
	for _, a := range actions {
		matches := a.method == "" || a.method == method || (a.method == "unsafe" && !safeMethod(method))
		if matches && strings.Contains(path, a.word) {
			return a.name
		}
	}
	if safeMethod(method) {
		return "viewing this"
	}
	return "this"
}

// setSessionCookie gives the browser its session. HttpOnly keeps it from
// scripts; SameSite=Lax from most requests other sites make; Secure from
// plain HTTP once the server is reached over HTTPS.
func setSessionCookie(c echo.Context, id string) {
	c.SetCookie(&http.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		MaxAge:   int(sessionTTL / time.Second),
		HttpOnly: true,
		Secure:   c.Scheme() == "https",
		SameSite: http.SameSiteLaxMode,
	})
}

func clearSessionCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.Scheme() == "https", SameSite: http.SameSiteLaxMode,
	})
}

// loginLimiter bounds how many passwords can be tried: each attempt to
// sign in takes a token from the bucket of the name it signs in as and
// from the bucket of the client's address before its password is checked,
// both in one step under one lock, so a burst of parallel attempts gets no
// more checks than the buckets hold. A wrong password keeps its tokens; a
// right one resets the name's bucket and gives the address its token back.
// Buckets live in bounded LRU caches: flooding them with names evicts the
// least recently tried, while the address's bucket still bounds what one
// client can try. It is kept in memory: a restart forgets it.
type loginLimiter struct {
	mu      sync.Mutex
	names   *lru.Cache[string, *rate.Limiter]
	clients *lru.Cache[string, *rate.Limiter]
}

// Limits of loginLimiter.
const (
	nameBurst    = 3                // attempts for a name without a wait
	nameEvery    = 20 * time.Second // then one more attempt this often
	clientBurst  = 20               // attempts from one address without a wait
	clientEvery  = 3 * time.Second  // then one more this often
	loginMaxKeys = 10000            // names and addresses tracked, each
)

func newLoginLimiter() *loginLimiter {
	names, _ := lru.New[string, *rate.Limiter](loginMaxKeys)
	clients, _ := lru.New[string, *rate.Limiter](loginMaxKeys)
	return &loginLimiter{names: names, clients: clients}
}

// loginTicket is an attempt's claim on its buckets.
type loginTicket struct {
	name   string
	client *rate.Reservation
}

// reserve takes a token for an attempt to sign in as name from client, or
// reports how long the attempt must wait, taking nothing.
func (l *loginLimiter) reserve(name, client string, now time.Time) (loginTicket, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rn := bucket(l.names, name, nameEvery, nameBurst).ReserveN(now, 1)
	rc := bucket(l.clients, client, clientEvery, clientBurst).ReserveN(now, 1)
	if wait := max(rn.DelayFrom(now), rc.DelayFrom(now)); wait > 0 {
		rn.CancelAt(now)
		rc.CancelAt(now)
		return loginTicket{}, wait
	}
	return loginTicket{name: name, client: rc}, 0
}

// succeed resets the bucket of a name that signed in and gives its
// client's token back.
func (l *loginLimiter) succeed(t loginTicket, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names.Remove(t.name)
	t.client.CancelAt(now)
}

func bucket(c *lru.Cache[string, *rate.Limiter], key string, every time.Duration, burst int) *rate.Limiter {
	if lim, ok := c.Get(key); ok {
		return lim
	}
	lim := rate.NewLimiter(rate.Every(every), burst)
	c.Add(key, lim)
	return lim
}
