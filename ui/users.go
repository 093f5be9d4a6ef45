package ui

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// The admin endpoints for users and API tokens. Their bodies are here
// rather than in types.go, next to the only handlers that use them; the
// CLI decodes them all the same.

// User is a user as GET /api/v1/users lists it. The password hash is never
// shown.
type User struct {
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// AddUserRequest is the body of POST /api/v1/users.
type AddUserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// UpdateUserRequest is the body of PATCH /api/v1/users/{name}: what to
// change; at least one field.
type UpdateUserRequest struct {
	Role     *string `json:"role"`
	Password *string `json:"password"`
}

// Token is an API token as GET /api/v1/tokens lists it, without its
// secret.
type Token struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
	// User is the user a login token (POST /api/v1/login) acts as, with
	// the user's role; "" for a token of its own.
	User       string     `json:"user,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

// CreateTokenRequest is the body of POST /api/v1/tokens.
type CreateTokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

// NewToken is the answer to POST /api/v1/tokens: the token's description
// and, this once, the token itself.
type NewToken struct {
	Token
	// Secret is the whole token, kiln_ID_SECRET, to send as a bearer
	// token. It is not stored and cannot be shown again.
	Secret string `json:"token"`
}

func (s *Server) listUsers(c echo.Context) error {
	users, err := s.backend.Store().Users()
	if err != nil {
		return err
	}
	out := make([]User, len(users))
	for i, u := range users {
		out[i] = User{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) addUser(c echo.Context) error {
	var req AddUserRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if err := checkCredentialFields(req.Name, req.Role); err != nil {
		return err
	}
	if err := store.CheckPasswordPolicy(req.Password); err != nil {
		return badRequest("password: %s", invalidReason(err))
	}
	u, err := s.backend.Store().AddUser(c.Request().Context(), req.Name, req.Role, req.Password, s.now())
	if err != nil {
		return authStoreError(err)
	}
	s.log.Info("user added", "user", u.Name, "role", u.Role, "by", actor(c))
	return c.JSON(http.StatusCreated, User{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt})
}

func (s *Server) updateUser(c echo.Context) error {
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	var req UpdateUserRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if req.Role != nil && !store.ValidRole(*req.Role) {
		return badRequest("role: want one of %s, got %q", strings.Join(store.Roles, ", "), *req.Role)
	}
	if req.Password != nil {
		if err := store.CheckPasswordPolicy(*req.Password); err != nil {
			return badRequest("password: %s", invalidReason(err))
		}
	}
	u, err := s.backend.Store().UpdateUser(c.Request().Context(), name, store.UserChange{Role: req.Role, Password: req.Password})
	if err != nil {
		return authStoreError(err)
	}
	s.log.Info("user changed", "user", u.Name, "role", u.Role, "password", req.Password != nil, "by", actor(c))
	return c.JSON(http.StatusOK, User{Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt})
}

func (s *Server) deleteUser(c echo.Context) error {
	name, err := pathParam(c, "name")
	if err != nil {
		return err
	}
	if err := s.backend.Store().DeleteUser(c.Request().Context(), name); err != nil {
		return authStoreError(err)
	}
	s.log.Info("user deleted", "user", name, "by", actor(c))
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listTokens(c echo.Context) error {
	tokens, err := s.backend.Store().Tokens()
	if err != nil {
		return err
	}
	out := make([]Token, len(tokens))
	for i, t := range tokens {
		out[i] = tokenBody(t)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) createToken(c echo.Context) error {
	var req CreateTokenRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if err := checkCredentialFields(req.Name, req.Role); err != nil {
		return err
	}
	t, secret, err := s.backend.Store().CreateToken(c.Request().Context(), req.Name, req.Role, s.now())
	if err != nil {
		return authStoreError(err)
	}
	s.log.Info("token created", "token", t.ID, "name", t.Name, "role", t.Role, "by", actor(c))
	return c.JSON(http.StatusCreated, NewToken{Token: tokenBody(t), Secret: secret})
}

func (s *Server) deleteToken(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if err := s.backend.Store().DeleteToken(c.Request().Context(), id); err != nil {
		return authStoreError(err)
	}
	s.log.Info("token revoked", "token", id, "by", actor(c))
	return c.NoContent(http.StatusNoContent)
}

func tokenBody(t *store.Token) Token {
	return Token{ID: t.ID, Name: t.Name, Role: t.Role, User: t.User, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
}

// checkCredentialFields answers 400 for a bad name or role of a new user
// or token, naming the field.
func checkCredentialFields(name, role string) error {
	if err := store.CheckName(name); err != nil {
		return badRequest("name: %s", invalidReason(err))
	}
	if !store.ValidRole(role) {
		return badRequest("role: want one of %s, got %q", strings.Join(store.Roles, ", "), role)
	}
	return nil
}

// invalidReason is the text of an ErrInvalid error without the sentinel's
// prefix.
func invalidReason(err error) string {
	return strings.TrimPrefix(err.Error(), store.ErrInvalid.Error()+": ")
}

// authStoreError gives the store's errors about users and tokens their
// status: 409 for a change that would leave nobody able to manage them
// (the rest classify knows).
func authStoreError(err error) error {
	switch {
	case errors.Is(err, store.ErrNoAdmin):
		return &apiError{http.StatusConflict, err.Error()}
	case errors.Is(err, store.ErrInvalid):
		return badRequest("%s", err.Error())
	}
	return err
}

// actor names who made a request, for the log.
func actor(c echo.Context) string {
	if p := principal(c); p != nil {
		return p.Name
	}
	return "local (authentication off)"
}
