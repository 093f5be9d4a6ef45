package ui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// Logging in from the command line (docs/api.md#logging-in): a user's
// name and password buy an API token that acts as that user, with the
// user's role as it is whenever the token is used. `kiln login` stores it;
// `kiln logout` gives it back. Attempts are throttled as the web UI's
// sign-in is.

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	// TokenName names the token in `kiln tokens list`, such as the host
	// logged in from; "login" when empty.
	TokenName string `json:"token_name"`
}

func (s *Server) apiLogin(c echo.Context) error {
	var req LoginRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || req.Password == "" {
		return badRequest("name and password: both are required")
	}
	if req.TokenName == "" {
		req.TokenName = "login"
	}
	if err := store.CheckName(req.TokenName); err != nil {
		return badRequest("token_name: %s", invalidReason(err))
	}
	on, err := s.authConfigured()
	if err != nil {
		return err
	}
	if !on {
		return &apiError{http.StatusConflict, "authentication is not configured on this server (no user or token exists), so there is nothing to log in to: every request from its own machine may do everything"}
	}
	r := c.Request()
	client := peerAddress(r)
	ticket, wait := s.auth.logins.reserve(name, client, s.now())
	if wait > 0 {
		s.log.Warn("login throttled", "user", name, "remote", client, "wait", wait)
		c.Response().Header().Set("Retry-After", strconv.Itoa(waitSeconds(wait)))
		return &apiError{http.StatusTooManyRequests, "too many login attempts for " + name + " or from your address; try again in " + roundUpSeconds(wait)}
	}
	u, err := s.backend.Store().CheckPassword(name, req.Password)
	switch {
	case errors.Is(err, store.ErrBadCredentials):
		s.log.Warn("login failed", "user", name, "remote", client)
		return unauthorized("wrong name or password")
	case err != nil:
		return err
	}
	s.auth.logins.succeed(ticket, s.now())
	t, secret, err := s.backend.Store().CreateUserToken(r.Context(), u.Name, req.TokenName, s.now())
	if err != nil {
		return authStoreError(err)
	}
	s.log.Info("logged in", "user", u.Name, "role", t.Role, "token", t.ID, "remote", client)
	return c.JSON(http.StatusCreated, NewToken{Token: tokenBody(t), Secret: secret})
}

// apiLogout revokes the login token the request is made with. Without
// authentication there is nothing to revoke.
func (s *Server) apiLogout(c echo.Context) error {
	// No body, or an empty object: the same rules as every route's body.
	if err := decodeBody(c, &struct{}{}, true); err != nil {
		return err
	}
	p := principal(c)
	if p == nil {
		return c.NoContent(http.StatusNoContent)
	}
	if p.tokenID == "" || !p.userToken {
		return badRequest("this request is not made with a login token (from kiln login or POST /api/v1/login); revoke other tokens with DELETE /api/v1/tokens/{id}")
	}
	if err := s.backend.Store().DeleteToken(c.Request().Context(), p.tokenID); err != nil {
		return authStoreError(err)
	}
	s.log.Info("logged out", "user", p.Name, "token", p.tokenID)
	return c.NoContent(http.StatusNoContent)
}
