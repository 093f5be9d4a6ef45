package ui_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// TestAPILogin logs in as a user through the API, uses the token it gets
// with the user's role, and logs out.
func TestAPILogin(t *testing.T) {
	t.Parallel()
	a := newAuthAPI(t)
	login := func(name, pw string) response {
		t.Helper()
		return authCall(t, "POST", a.srv.URL+"/api/v1/login", fmt.Sprintf(`{"name": %q, "password": %q, "token_name": "otto@laptop"}`, name, pw), nil)
	}
	otto := testUsers[store.RoleOperator]

	login(otto, "wrong password").wantError(t, http.StatusUnauthorized, "wrong name or password")
	login("nobody", "wrong password").wantError(t, http.StatusUnauthorized, "wrong name or password")
	login(otto, "").wantError(t, http.StatusBadRequest, "required")
	authCall(t, "POST", a.srv.URL+"/api/v1/login", fmt.Sprintf(`{"name": %q, "password": %q, "token_name": "a b"}`, otto, password(otto)), nil).
		wantError(t, http.StatusBadRequest, "token_name")

	r := login(otto, password(otto))
	var nt ui.NewToken
	r.decode(t, &nt)
	if r.status != http.StatusCreated || nt.User != otto || nt.Role != store.RoleOperator || nt.Name != "otto@laptop" || nt.Secret == "" {
		t.Fatalf("login: %d %s", r.status, r.body)
	}
	tok := bearer(nt.Secret)
	if r := authCall(t, "GET", a.srv.URL+"/api/v1/dags", "", tok); r.status != http.StatusOK {
		t.Errorf("GET /dags with the login token: %d %s", r.status, r.body)
	}
	authCall(t, "PUT", a.srv.URL+"/api/v1/pools/gpu", `{"slots": 2}`, tok).
		wantError(t, http.StatusForbidden, "managing pools needs the admin role; you are "+otto+" (operator)")
	r = authCall(t, "GET", a.srv.URL+"/api/v1/tokens", "", bearer(a.tokens[store.RoleAdmin]))
	var tokens []ui.Token
	r.decode(t, &tokens)
	found := false
	for _, tk := range tokens {
		found = found || (tk.ID == nt.ID && tk.User == otto && tk.Role == store.RoleOperator)
	}
	if !found {
		t.Errorf("GET /tokens = %s, want otto's login token with his role", r.body)
	}

	authCall(t, "POST", a.srv.URL+"/api/v1/logout", "", bearer(a.tokens[store.RoleViewer])).
		wantError(t, http.StatusBadRequest, "not made with a login token")
	if r := authCall(t, "POST", a.srv.URL+"/api/v1/logout", "", tok); r.status != http.StatusNoContent {
		t.Errorf("logout: %d %s, want 204", r.status, r.body)
	}
	authCall(t, "GET", a.srv.URL+"/api/v1/dags", "", tok).wantError(t, http.StatusUnauthorized, "invalid, revoked or unknown token")

	// Attempts are throttled per name, as the web UI's sign-in.
	vic := testUsers[store.RoleViewer]
	for {
		r := login(vic, "wrong password")
		if r.status == http.StatusTooManyRequests {
			r.wantError(t, http.StatusTooManyRequests, "too many login attempts for "+vic)
			if r.header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
			break
		}
		r.wantError(t, http.StatusUnauthorized, "wrong name or password")
	}
}

// TestAPILoginWithoutAuth: with no user or token there is nothing to log
// in to, and logging out is a no-op.
func TestAPILoginWithoutAuth(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	authCall(t, "POST", srv.URL+"/api/v1/login", `{"name": "ada", "password": "whatever-it-is"}`, nil).
		wantError(t, http.StatusConflict, "authentication is not configured")
	if r := authCall(t, "POST", srv.URL+"/api/v1/logout", "", nil); r.status != http.StatusNoContent {
		t.Errorf("logout: %d %s, want 204", r.status, r.body)
	}
}
