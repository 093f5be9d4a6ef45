package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"
)

// openAuthTest is openTest with cheap password hashes.
func openAuthTest(t *testing.T) *Store {
	t.Helper()
	s := openTest(t)
	s.SetPasswordCost(bcrypt.MinCost)
	return s
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestAuthConfigured(t *testing.T) {
	s := openAuthTest(t)
	ctx := context.Background()
	if ok, err := s.AuthConfigured(); ok || err != nil {
		t.Fatalf("fresh store: AuthConfigured = %v, %v; want false", ok, err)
	}
	if _, _, err := s.CreateToken(ctx, "ci", RoleAdmin, t0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AuthConfigured(); !ok || err != nil {
		t.Fatalf("with a token: AuthConfigured = %v, %v; want true", ok, err)
	}
}

func TestUsers(t *testing.T) {
	s := openAuthTest(t)
	ctx := context.Background()

	if _, err := s.AddUser(ctx, "vic", RoleViewer, "password1", t0); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("first user a viewer: err = %v, want ErrNoAdmin", err)
	}
	if _, err := s.AddUser(ctx, "ada", RoleAdmin, "correct horse", t0); err != nil {
		t.Fatalf("AddUser: %v", err)
	}
	if _, err := s.AddUser(ctx, "ada", RoleViewer, "correct horse", t0); !errors.Is(err, ErrConflict) {
		t.Errorf("second ada: err = %v, want ErrConflict", err)
	}
	if _, err := s.AddUser(ctx, "vic", RoleViewer, "password1", t0); err != nil {
		t.Fatalf("AddUser vic: %v", err)
	}

	for _, tt := range []struct{ name, role, password, want string }{
		{"", RoleViewer, "password1", "empty name"},
		{"bad name", RoleViewer, "password1", "bad name"},
		{"-x", RoleViewer, "password1", "-x"},
		{strings.Repeat("n", 65), RoleViewer, "password1", "longer than 64"},
		{"bob", "root", "password1", `role "root"`},
		{"bob", RoleViewer, "short", "shorter than 8"},
		{"bob", RoleViewer, strings.Repeat("p", 73), "longer than 72 bytes"},
	} {
		_, err := s.AddUser(ctx, tt.name, tt.role, tt.password, t0)
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("AddUser(%q, %q, %q) = %v, want ErrInvalid mentioning %q", tt.name, tt.role, tt.password, err, tt.want)
		}
	}

	users, err := s.Users()
	if err != nil || len(users) != 2 || users[0].Name != "ada" || users[1].Name != "vic" || users[1].Role != RoleViewer {
		t.Fatalf("Users = %v, %v", users, err)
	}

	if u, err := s.CheckPassword("ada", "correct horse"); err != nil || u.Role != RoleAdmin {
		t.Errorf("CheckPassword right = %v, %v", u, err)
	}
	for _, tt := range []struct{ name, password string }{
		{"ada", "wrong horse"}, {"ada", ""}, {"nobody", "correct horse"}, {"", ""},
	} {
		if _, err := s.CheckPassword(tt.name, tt.password); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("CheckPassword(%q, %q) = %v, want ErrBadCredentials", tt.name, tt.password, err)
		}
	}

	if err := s.DeleteUser(ctx, "ada"); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("deleting the last admin while vic remains: err = %v, want ErrNoAdmin", err)
	}
	if err := s.DeleteUser(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting nobody: err = %v, want ErrNotFound", err)
	}
	if err := s.DeleteUser(ctx, "vic"); err != nil {
		t.Fatal(err)
	}
	// The very last credential may go: that turns authentication off.
	if err := s.DeleteUser(ctx, "ada"); err != nil {
		t.Fatalf("deleting the only user: %v", err)
	}
	if ok, _ := s.AuthConfigured(); ok {
		t.Error("AuthConfigured after deleting everyone = true")
	}
}

func TestTokens(t *testing.T) {
	s := openAuthTest(t)
	ctx := context.Background()
	if _, _, err := s.CreateToken(ctx, "ci", RoleOperator, t0); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("first token an operator: err = %v, want ErrNoAdmin", err)
	}
	admin, adminSecret, err := s.CreateToken(ctx, "root", RoleAdmin, t0)
	if err != nil {
		t.Fatal(err)
	}
	ci, ciSecret, err := s.CreateToken(ctx, "ci", RoleOperator, t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ciSecret, "kiln_"+ci.ID+"_") || len(ciSecret) != len("kiln_")+16+1+64 {
		t.Errorf("token = %q, want kiln_%s_ and 64 hex digits", ciSecret, ci.ID)
	}

	got, err := s.CheckToken(ctx, ciSecret, t0.Add(time.Hour))
	if err != nil || got.ID != ci.ID || got.Role != RoleOperator || got.Name != "ci" {
		t.Fatalf("CheckToken = %+v, %v", got, err)
	}
	tokens, err := s.Tokens()
	if err != nil || len(tokens) != 2 || tokens[0].ID != admin.ID || tokens[1].LastUsedAt == nil || !tokens[1].LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Tokens = %+v, %v; want root then ci, used at %v", tokens, err, t0.Add(time.Hour))
	}
	// Used again within the minute: not rewritten.
	if _, err := s.CheckToken(ctx, ciSecret, t0.Add(time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}
	if tokens, _ := s.Tokens(); !tokens[1].LastUsedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("last used = %v, want it left at %v", tokens[1].LastUsedAt, t0.Add(time.Hour))
	}

	bad := []string{
		"", "kiln_", ciSecret[:len(ciSecret)-1], ciSecret + "0", strings.Replace(ciSecret, "kiln_", "kilnx", 1),
		ciSecret[:len(ciSecret)-1] + flipHex(ciSecret[len(ciSecret)-1]),
		"kiln_" + ci.ID + "_" + strings.Repeat("g", 64),
		"kiln_" + strings.Repeat("0", 16) + "_" + strings.Repeat("0", 64),
		adminSecret[:22] + ciSecret[22:], // right id, another token's secret
	}
	for _, tok := range bad {
		if _, err := s.CheckToken(ctx, tok, t0); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("CheckToken(%q) = %v, want ErrBadCredentials", tok, err)
		}
	}

	if err := s.DeleteToken(ctx, admin.ID); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("revoking the last admin token while ci remains: %v, want ErrNoAdmin", err)
	}
	if err := s.DeleteToken(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown token: %v, want ErrNotFound", err)
	}
	if err := s.DeleteToken(ctx, ci.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckToken(ctx, ciSecret, t0); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("revoked token: %v, want ErrBadCredentials", err)
	}
}

func flipHex(c byte) string {
	if c == '0' {
		return "1"
	}
	return "0"
}

func TestSessions(t *testing.T) {
	s := openAuthTest(t)
	ctx := context.Background()
	if _, _, err := s.CreateSession(ctx, "ada", time.Hour, t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("session of nobody: %v, want ErrNotFound", err)
	}
	if _, err := s.AddUser(ctx, "ada", RoleAdmin, "correct horse", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(ctx, "vic", RoleViewer, "password1", t0); err != nil {
		t.Fatal(err)
	}
	old, _, err := s.CreateSession(ctx, "vic", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	id, ss, err := s.CreateSession(ctx, "vic", time.Hour, t0.Add(30*time.Minute))
	if err != nil || ss.Role != RoleViewer || !ss.ExpiresAt.Equal(t0.Add(90*time.Minute)) {
		t.Fatalf("CreateSession = %+v, %v", ss, err)
	}
	if id == old || len(id) < 43 {
		t.Errorf("session ids %q, %q: want two distinct 256-bit ids", old, id)
	}
	if got, err := s.CheckSession(id, t0.Add(89*time.Minute)); err != nil || got.User != "vic" || got.Role != RoleViewer {
		t.Errorf("CheckSession = %+v, %v", got, err)
	}
	for name, tt := range map[string]struct {
		id  string
		now time.Time
	}{
		"expired": {id, t0.Add(90 * time.Minute)},
		"unknown": {"nope", t0},
		"empty":   {"", t0},
	} {
		if _, err := s.CheckSession(tt.id, tt.now); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s session: %v, want ErrBadCredentials", name, err)
		}
	}

	// A new session sweeps the expired ones.
	if _, _, err := s.CreateSession(ctx, "ada", time.Hour, t0.Add(61*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := countKeys(t, s, bucketSessions); n != 2 {
		t.Errorf("sessions after the sweep = %d, want 2 (the expired one gone)", n)
	}

	if err := s.DeleteSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckSession(id, t0); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("signed-out session: %v, want ErrBadCredentials", err)
	}

	// Deleting a user ends their sessions.
	id, _, _ = s.CreateSession(ctx, "vic", time.Hour, t0)
	if err := s.DeleteUser(ctx, "vic"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckSession(id, t0); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("session of a deleted user: %v, want ErrBadCredentials", err)
	}
	if n := countKeys(t, s, bucketSessions); n != 1 {
		t.Errorf("sessions after deleting vic = %d, want 1 (ada's)", n)
	}
}

// TestNoSecretInFile reads the raw file after storing a password, a token
// and a session, and looks for each secret in it.
func TestNoSecretInFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s.SetPasswordCost(bcrypt.MinCost)
	ctx := context.Background()
	const password = "hunter2-correct-horse"
	if _, err := s.AddUser(ctx, "ada", RoleAdmin, password, t0); err != nil {
		t.Fatal(err)
	}
	tok, token, err := s.CreateToken(ctx, "ci", RoleAdmin, t0)
	if err != nil {
		t.Fatal(err)
	}
	session, _, err := s.CreateSession(ctx, "ada", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, _ := splitToken(token)

	// Through bbolt: the values of the three buckets.
	err = s.view(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketUsers, bucketTokens, bucketSessions} {
			err := tx.Bucket(b).ForEach(func(k, v []byte) error {
				for _, sec := range []string{password, secret, session} {
					if bytes.Contains(k, []byte(sec)) || bytes.Contains(v, []byte(sec)) {
						t.Errorf("bucket %s holds a secret in clear: %q -> %q", b, k, v)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// And the whole file, free pages included.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for what, sec := range map[string]string{"password": password, "token secret": secret, "session id": session} {
		if bytes.Contains(raw, []byte(sec)) {
			t.Errorf("the store file contains the %s", what)
		}
	}
	if !bytes.Contains(raw, []byte(tok.ID)) {
		t.Error("the token id is not in the file; is the test reading the right file?")
	}
}

func countKeys(t *testing.T, s *Store, bucket []byte) int {
	t.Helper()
	n := 0
	if err := s.view(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSetPasswordCost(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	s.SetPasswordCost(bcrypt.MinCost + 1)
	u, err := s.AddUser(ctx, "ada", RoleAdmin, "correct horse", t0)
	if err != nil {
		t.Fatal(err)
	}
	if cost, err := bcrypt.Cost(u.PasswordHash); err != nil || cost != bcrypt.MinCost+1 {
		t.Errorf("hash cost = %d, %v; want %d", cost, err, bcrypt.MinCost+1)
	}
}

func TestUpdateUser(t *testing.T) {
	s := openAuthTest(t)
	ctx := context.Background()
	ptr := func(s string) *string { return &s }
	if _, err := s.AddUser(ctx, "ada", RoleAdmin, "correct horse", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(ctx, "vic", RoleViewer, "password1", t0); err != nil {
		t.Fatal(err)
	}
	sid, _, err := s.CreateSession(ctx, "vic", time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UpdateUser(ctx, "vic", UserChange{Role: ptr(RoleOperator), Password: ptr("new password")})
	if err != nil || u.Role != RoleOperator {
		t.Fatalf("UpdateUser = %+v, %v", u, err)
	}
	if _, err := s.CheckPassword("vic", "password1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("old password: %v, want ErrBadCredentials", err)
	}
	if got, err := s.CheckPassword("vic", "new password"); err != nil || got.Role != RoleOperator {
		t.Errorf("new password: %+v, %v", got, err)
	}
	if _, err := s.CheckSession(sid, t0.Add(time.Minute)); err == nil {
		t.Error("a session from before the change still holds")
	}
	for _, tt := range []struct {
		name string
		ch   UserChange
		want error
	}{
		{"nobody", UserChange{Role: ptr(RoleAdmin)}, ErrNotFound},
		{"vic", UserChange{}, ErrInvalid},
		{"vic", UserChange{Role: ptr("root")}, ErrInvalid},
		{"vic", UserChange{Password: ptr("short")}, ErrInvalid},
		{"ada", UserChange{Role: ptr(RoleViewer)}, ErrNoAdmin},
	} {
		if _, err := s.UpdateUser(ctx, tt.name, tt.ch); !errors.Is(err, tt.want) {
			t.Errorf("UpdateUser(%s, %+v) = %v, want %v", tt.name, tt.ch, err, tt.want)
		}
	}
}

// TestUserTokens checks the tokens of kiln login: they act as their user,
// with the user's role as it is now, and go with the user and with a new
// password; they never count as another admin or credential.
func TestUserTokens(t *testing.T) {
	s := openAuthTest(t)
	ctx := context.Background()
	if _, _, err := s.CreateUserToken(ctx, "ada", "login", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("token for an unknown user: %v, want ErrNotFound", err)
	}
	if _, err := s.AddUser(ctx, "ada", RoleAdmin, "correct horse", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddUser(ctx, "bob", RoleOperator, "battery staple", t0); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := s.CreateUserToken(ctx, "bob", "bob@laptop", t0)
	if err != nil || tok.User != "bob" || tok.Role != RoleOperator {
		t.Fatalf("CreateUserToken = %+v, %v", tok, err)
	}
	if got, err := s.CheckToken(ctx, secret, t0); err != nil || got.User != "bob" || got.Role != RoleOperator {
		t.Fatalf("CheckToken = %+v, %v; want bob as operator", got, err)
	}
	admin := RoleAdmin
	if _, err := s.UpdateUser(ctx, "bob", UserChange{Role: &admin}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.CheckToken(ctx, secret, t0); err != nil || got.Role != RoleAdmin {
		t.Fatalf("after a role change: CheckToken = %+v, %v; want bob as admin", got, err)
	}
	if tokens, err := s.Tokens(); err != nil || len(tokens) != 1 || tokens[0].Role != RoleAdmin || tokens[0].User != "bob" {
		t.Errorf("Tokens = %+v, %v; want bob's token as admin", tokens, err)
	}

	// Bob's own token is not another admin: demoting ada, then bob, must
	// still leave one.
	viewer := RoleViewer
	if _, err := s.UpdateUser(ctx, "ada", UserChange{Role: &viewer}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateUser(ctx, "bob", UserChange{Role: &viewer}); !errors.Is(err, ErrNoAdmin) {
		t.Errorf("demoting the last admin user, who has a token: %v, want ErrNoAdmin", err)
	}

	pw := "a new password"
	if _, err := s.UpdateUser(ctx, "bob", UserChange{Password: &pw}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckToken(ctx, secret, t0); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("after a new password: %v, want ErrBadCredentials", err)
	}
	_, secret, err = s.CreateUserToken(ctx, "bob", "bob@laptop", t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteUser(ctx, "ada"); err != nil {
		t.Fatal(err)
	}
	// The last user goes although their own token remains, and takes it
	// along: authentication is off again.
	if err := s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatalf("deleting the last user, who has a token: %v", err)
	}
	if _, err := s.CheckToken(ctx, secret, t0); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("token of a deleted user: %v, want ErrBadCredentials", err)
	}
	if ok, err := s.AuthConfigured(); ok || err != nil {
		t.Errorf("AuthConfigured = %v, %v; want false", ok, err)
	}
}
