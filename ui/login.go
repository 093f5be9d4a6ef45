package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// Signing in and out of the browser UI.
//
// The sign-in form has a CSRF token of its own, before there is a session:
// GET /login puts a random value in a cookie and in the form, and POST
// /login wants both to match (a double-submit cookie). Without it another
// site could sign a visitor in as the attacker, and see what they do.

// loginCookie carries the sign-in form's CSRF token.
const loginCookie = "kiln_login"

// maxLoginBody bounds the sign-in form; a name and a password are small.
const maxLoginBody = 64 << 10

// loginData is what login.html shows.
type loginData struct {
	Next  string // where to go after signing in
	Name  string // the name typed, kept after a failure
	Error string // why the last attempt failed
}

// authRoutes registers the sign-in and sign-out pages.
func (s *Server) authRoutes(e *echo.Echo) {
	e.GET("/login", s.loginPage)
	e.POST("/login", s.login)
	e.POST("/logout", s.logout)
}

func (s *Server) loginPage(c echo.Context) error {
	next := safeNext(c.QueryParam("next"))
	on, err := s.authConfigured()
	if err != nil {
		return err
	}
	if !on {
		// Nothing to sign in to: everyone here is admin.
		return c.Redirect(http.StatusFound, next)
	}
	if ok, err := s.identify(c); err == nil && ok {
		return c.Redirect(http.StatusFound, next)
	}
	return s.renderLogin(c, http.StatusOK, loginData{Next: next})
}

// renderLogin shows the sign-in form with a login CSRF token, the one the
// browser has already when there is one so that two open tabs both work.
func (s *Server) renderLogin(c echo.Context, status int, d loginData) error {
	token := ""
	if ck, err := c.Cookie(loginCookie); err == nil && len(ck.Value) == 64 {
		token = ck.Value
	} else {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		token = hex.EncodeToString(b)
		c.SetCookie(&http.Cookie{
			Name: loginCookie, Value: token, Path: "/login",
			HttpOnly: true, Secure: c.Scheme() == "https", SameSite: http.SameSiteLaxMode,
		})
	}
	c.Set(ctxCSRF, token)
	return s.render(c, status, "login", pageData{Title: "Sign in", Data: d})
}

func (s *Server) login(c echo.Context) error {
	r := c.Request()
	r.Body = http.MaxBytesReader(c.Response(), r.Body, maxLoginBody)
	next := safeNext(r.PostFormValue("next"))
	on, err := s.authConfigured()
	if err != nil {
		return err
	}
	if !on {
		return c.Redirect(http.StatusSeeOther, next)
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	d := loginData{Next: next, Name: name}

	ck, err := c.Cookie(loginCookie)
	if err != nil || ck.Value == "" || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue(csrfField))) != 1 {
		d.Error = "The sign-in form had expired or was not sent from this site. Please try again."
		return s.renderLogin(c, http.StatusForbidden, d)
	}
	client := peerAddress(r)
	ticket, wait := s.auth.logins.reserve(name, client, s.now())
	if wait > 0 {
		s.log.Warn("sign-in throttled", "user", name, "remote", client, "wait", wait)
		c.Response().Header().Set("Retry-After", strconv.Itoa(waitSeconds(wait)))
		d.Error = fmt.Sprintf("Too many sign-in attempts for %s or from your address. Try again in %s.", name, roundUpSeconds(wait))
		return s.renderLogin(c, http.StatusTooManyRequests, d)
	}
	u, err := s.backend.Store().CheckPassword(name, r.PostFormValue("password"))
	switch {
	case errors.Is(err, store.ErrBadCredentials):
		s.log.Warn("sign-in failed", "user", name, "remote", client)
		d.Error = "Wrong name or password."
		return s.renderLogin(c, http.StatusUnauthorized, d)
	case err != nil:
		return err
	}
	s.auth.logins.succeed(ticket, s.now())
	id, _, err := s.backend.Store().CreateSession(r.Context(), u.Name, sessionTTL, s.now())
	if err != nil {
		return err
	}
	setSessionCookie(c, id)
	c.SetCookie(&http.Cookie{Name: loginCookie, Value: "", Path: "/login", MaxAge: -1, HttpOnly: true})
	s.log.Info("signed in", "user", u.Name, "role", u.Role, "remote", client)
	return c.Redirect(http.StatusSeeOther, next)
}

// logout ends the browser's session. It needs the session's CSRF token, so
// that another site cannot sign a visitor out; a browser whose session is
// gone already is simply sent to the sign-in page.
func (s *Server) logout(c echo.Context) error {
	ck, err := c.Cookie(sessionCookie)
	if err == nil && ck.Value != "" {
		if _, err := s.backend.Store().CheckSession(ck.Value, s.now()); err == nil {
			c.Set(ctxCSRF, sessionCSRF(ck.Value))
			if !validCSRF(c) {
				return forbidden("forbidden: missing or wrong CSRF token; reload the page and try again")
			}
		}
		if err := s.backend.Store().DeleteSession(c.Request().Context(), ck.Value); err != nil {
			return err
		}
	}
	clearSessionCookie(c)
	on, err := s.authConfigured()
	if err != nil {
		return err
	}
	if !on {
		return c.Redirect(http.StatusSeeOther, "/dags")
	}
	return c.Redirect(http.StatusSeeOther, "/login")
}

// defaultNext is where signing in leads without a (usable) next.
const defaultNext = "/dags"

// safeNext returns next if it is a path on this server, and defaultNext
// otherwise, so that the sign-in page cannot send anyone elsewhere (an
// open redirect).
func safeNext(next string) string {
	if !isLocalPath(next) {
		return defaultNext
	}
	if u, _ := url.Parse(next); u.Path == "/login" || u.Path == "/logout" {
		return defaultNext
	}
	return next
}

// isLocalPath tells whether p is a path on this server that no browser
// reads as another site's address.
func isLocalPath(p string) bool {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return false
	}
	for _, r := range p {
		// Browsers read a backslash as a slash ("/\evil" is "//evil"),
		// and drop tabs and newlines from URLs.
		if r == '\\' || r < 0x20 || r == 0x7f {
			return false
		}
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == ""
}

// roundUpSeconds formats a wait as whole seconds, never "0s".
func roundUpSeconds(d time.Duration) string {
	return fmt.Sprintf("%ds", waitSeconds(d))
}

// waitSeconds is a wait in whole seconds, rounded up, at least 1.
func waitSeconds(d time.Duration) int { return max(int((d+time.Second-1)/time.Second), 1) }

// peerAddress is the address the request came from: the connection's
// peer, not a header a client can set, so that no client can pick the
// bucket its sign-in attempts are counted in.
func peerAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
