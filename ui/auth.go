package ui

import "github.com/labstack/echo/v4"

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

// Principal is who made a request.
type Principal struct {
	// Name is the user's name, or the token's name.
	Name string
	Role Role
}

// principal is who made the request; nil when auth is off.
func principal(c echo.Context) *Principal {
	p, _ := c.Get("kiln.principal").(*Principal)
	return p
}

// csrfToken is the CSRF token forms on the page must send back; empty when
// auth is off.
func csrfToken(c echo.Context) string {
	t, _ := c.Get("kiln.csrf").(string)
	return t
}

// authenticate is where API authentication plugs in (bearer tokens with
// roles). Until then every request passes.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return next
}

// authenticatePage is authenticate for browser pages (a session cookie).
func (s *Server) authenticatePage(next echo.HandlerFunc) echo.HandlerFunc {
	return next
}

// authorize refuses a request whose principal lacks the role min.
func (s *Server) authorize(min Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
}
