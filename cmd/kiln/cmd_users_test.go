package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// runCLIInput is runCLI with stdin.
func runCLIInput(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := &cobra.Command{Use: "kiln", SilenceUsage: true, SilenceErrors: true}
	addServerCommands(root)
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(t.Context())
	var ex *exitError
	switch {
	case err == nil:
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintln(&errOut, "kiln:", ex.msg)
		}
		code = ex.code
	default:
		fmt.Fprintln(&errOut, "kiln:", err)
		code = 2
	}
	return out.String(), errOut.String(), code
}

// TestUsersAndTokensOffline manages users and tokens in a data folder
// with no server, as the first admin is made.
func TestUsersAndTokensOffline(t *testing.T) {
	t.Setenv("KILN_SERVER", "http://127.0.0.1:1") // never called
	t.Setenv("KILN_TOKEN", "")
	data := t.TempDir()
	run := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return runCLIInput(t, stdin, append(args, "--data", data)...)
	}

	_, stderr, code := run("viewer-password\n", "users", "add", "vic", "--role", "viewer", "--password-stdin")
	wantExit(t, code, stderr, 1, "must have the admin role")

	stdout, stderr, code := run("correct horse\n", "users", "add", "ada", "--role", "admin", "--password-stdin")
	if code != 0 || !strings.Contains(stdout, "user ada (admin) added to "+filepath.Join(data, "kiln.db")) {
		t.Fatalf("users add: exit %d, %q %q", code, stdout, stderr)
	}
	if _, _, code := run("viewer-password", "users", "add", "vic", "--role", "viewer", "--password-stdin"); code != 0 {
		t.Fatalf("users add vic (no newline): exit %d", code)
	}
	stdout, _, _ = run("", "users", "list")
	if got := strings.Join(strings.Fields(stdout), " "); !strings.HasPrefix(got, "USER ROLE CREATED ada admin ") || !strings.Contains(got, " vic viewer ") {
		t.Errorf("users list = %q", got)
	}
	stdout, _, _ = run("", "users", "list", "--json")
	var users []ui.User
	if err := json.Unmarshal([]byte(stdout), &users); err != nil || len(users) != 2 || strings.Contains(stdout, "hash") {
		t.Errorf("users list --json = %s (%v)", stdout, err)
	}

	stdout, stderr, code = run("", "tokens", "create", "--name", "ci", "--role", "operator")
	token := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(token, "kiln_") || !strings.Contains(stderr, "not shown again") {
		t.Fatalf("tokens create: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, _, _ = run("", "tokens", "list", "--json")
	var tokens []ui.Token
	if err := json.Unmarshal([]byte(stdout), &tokens); err != nil || len(tokens) != 1 || tokens[0].Name != "ci" || strings.Contains(stdout, token[len(token)-20:]) {
		t.Fatalf("tokens list --json = %s (%v)", stdout, err)
	}
	if stdout, _, code := run("", "tokens", "revoke", tokens[0].ID); code != 0 || !strings.Contains(stdout, "revoked") {
		t.Errorf("tokens revoke: exit %d %q", code, stdout)
	}
	_, stderr, code = run("", "tokens", "revoke", tokens[0].ID)
	wantExit(t, code, stderr, 1, "not found")

	stdout, stderr, code = run("viewer-password-2\n", "users", "set", "vic", "--role", "operator", "--password-stdin")
	if code != 0 || strings.TrimSpace(stdout) != "user vic changed (role operator, new password); their sessions ended" {
		t.Errorf("users set vic: exit %d %q %q", code, stdout, stderr)
	}
	_, stderr, code = run("", "users", "set", "ada", "--role", "viewer")
	wantExit(t, code, stderr, 1, "last admin")
	_, stderr, code = run("", "users", "set", "vic")
	wantExit(t, code, stderr, 2, "nothing to change")

	_, stderr, code = run("", "users", "delete", "ada")
	wantExit(t, code, stderr, 1, "last admin")
	if stdout, _, code := run("", "users", "delete", "vic"); code != 0 || strings.TrimSpace(stdout) != "user vic deleted" {
		t.Errorf("users delete vic: exit %d %q", code, stdout)
	}

	// Bad input is a usage error, found before anything is written.
	for _, tt := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"long-enough\n", []string{"users", "add", "bob", "--role", "root", "--password-stdin"}, `--role "root"`},
		{"long-enough\n", []string{"users", "add", "bob", "--password-stdin"}, `"role" not set`},
		{"long-enough\n", []string{"users", "add", "b b", "--role", "viewer", "--password-stdin"}, "NAME"},
		{"short\n", []string{"users", "add", "bob", "--role", "viewer", "--password-stdin"}, "shorter than 8"},
		{"", []string{"users", "add", "bob", "--role", "viewer", "--password-stdin"}, "no password"},
		{"", []string{"users", "add", "bob", "--role", "viewer"}, "--password-stdin"},
		{"", []string{"tokens", "create", "--name", "x"}, `"role" not set`},
		{"", []string{"users", "list", "--server", "http://127.0.0.1:1"}, "--data"},
	} {
		_, stderr, code := run(tt.stdin, tt.args...)
		wantExit(t, code, stderr, 2, tt.want)
	}

	// The store holds no password in clear.
	st, err := store.Open(filepath.Join(data, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CheckPassword("ada", "correct horse"); err != nil {
		t.Errorf("ada's password does not check: %v", err)
	}

	// While the store is open — a server running — --data fails at once
	// with advice.
	_, stderr, code = run("", "users", "list")
	wantExit(t, code, stderr, 1, "locked", "leave out --data")
	st.Close()
}

// TestUsersAndTokensThroughAPI bootstraps a server without auth through
// its API, then manages users and tokens as its admin.
func TestUsersAndTokensThroughAPI(t *testing.T) {
	e := newCLIEnv(t)
	e.k.Store().SetPasswordCost(bcrypt.MinCost)

	// Without users or tokens the local server asks nobody: the first
	// admin token can be made through the API.
	stdout, stderr, code := e.run("tokens", "create", "--name", "root", "--role", "admin", "--json")
	var root ui.NewToken
	if code != 0 || json.Unmarshal([]byte(stdout), &root) != nil || !strings.HasPrefix(root.Secret, "kiln_"+root.ID+"_") {
		t.Fatalf("tokens create: exit %d, %q %q", code, stdout, stderr)
	}

	// Now it asks everyone.
	_, stderr, code = e.run("users", "list")
	// $KILN_SERVER names the server, so kiln login needs no --server.
	wantExit(t, code, stderr, 1, "asks who you are: run `kiln login` (", "--token")
	_, stderr, code = e.run("dags", "list")
	wantExit(t, code, stderr, 1, "asks who you are")

	t.Setenv("KILN_TOKEN", root.Secret)
	if _, stderr, code := runCLIInput(t, "viewer-password\n", "users", "add", "vic", "--role", "viewer", "--password-stdin"); code != 0 {
		t.Fatalf("users add vic: exit %d %s", code, stderr)
	}
	_, stderr, code = runCLIInput(t, "viewer-password\n", "users", "add", "vic", "--role", "viewer", "--password-stdin")
	wantExit(t, code, stderr, 1, "already exists")
	stdout, _, code = e.run("users", "list", "--json")
	if code != 0 || !strings.Contains(stdout, `"name": "vic"`) {
		t.Errorf("users list --json: exit %d %s", code, stdout)
	}

	stdout, _, code = e.run("tokens", "create", "--name", "ci", "--role", "viewer")
	viewerToken := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(viewerToken, "kiln_") {
		t.Fatalf("tokens create ci: exit %d %q", code, stdout)
	}
	stdout, _, _ = e.run("tokens", "list")
	if got := strings.Join(strings.Fields(stdout), " "); !strings.HasPrefix(got, "ID NAME ROLE USER CREATED LAST USED "+root.ID+" root admin - ") || !strings.Contains(got, " ci viewer - ") {
		t.Errorf("tokens list = %q", got)
	}

	// A viewer's token reads, and may not trigger or manage.
	if _, stderr, code := e.run("dags", "list", "--token", viewerToken); code != 0 {
		t.Errorf("dags list as a viewer: exit %d %s", code, stderr)
	}
	_, stderr, code = e.run("trigger", "churn", "--token", viewerToken)
	wantExit(t, code, stderr, 1, "triggering needs the operator role; you are ci (viewer)")
	_, stderr, code = e.run("users", "list", "--token", viewerToken)
	wantExit(t, code, stderr, 1, "needs the admin role")

	if stdout, _, code := e.run("users", "delete", "vic"); code != 0 || strings.TrimSpace(stdout) != "user vic deleted" {
		t.Errorf("users delete: exit %d %q", code, stdout)
	}
	_, stderr, code = e.run("users", "delete", "vic")
	wantExit(t, code, stderr, 1, "not found")
	_, stderr, code = e.run("tokens", "revoke", root.ID)
	wantExit(t, code, stderr, 1, "last admin")
	var ciID string
	tokens, _ := e.k.Store().Tokens()
	for _, tk := range tokens {
		if tk.Name == "ci" {
			ciID = tk.ID
		}
	}
	if stdout, _, code := e.run("tokens", "revoke", ciID); code != 0 || !strings.Contains(stdout, "revoked") {
		t.Errorf("tokens revoke: exit %d %q", code, stdout)
	}
	_, stderr, code = e.run("dags", "list", "--token", viewerToken)
	wantExit(t, code, stderr, 1, "invalid, revoked or unknown token")
}
