package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoginWithAuthOn follows a user who turned authentication on as the
// README says: every command says what to run, kiln login lets the CLI in
// with the user's role, and kiln logout gives the token back.
func TestLoginWithAuthOn(t *testing.T) {
	data := t.TempDir()
	config := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + config, "HOME=" + config}
	kiln := func(stdin string, args ...string) (string, string, int) {
		t.Helper()
		return runKilnEnv(t, "", env, stdin, args...)
	}
	if _, stderr, code := kiln("correct horse\n", "users", "add", "ada", "--role", "admin", "--data", data, "--password-stdin"); code != 0 {
		t.Fatalf("users add: exit %d %s", code, stderr)
	}
	s := startStandalone(t, "../../examples/dags", data, "--workers", "0")
	server := []string{"--server", s.URL}
	login := "`kiln login --server " + s.URL + "`"

	// Locked out, each command says what to run — tokens create included.
	for _, args := range [][]string{{"dags", "list"}, {"tokens", "create", "--name", "ci", "--role", "operator"}} {
		_, stderr, code := kiln("", append(args, server...)...)
		wantStderr(t, code, stderr, 1, "the server at "+s.URL+" asks who you are: run "+login, "kiln tokens create")
	}
	_, stderr, code := kiln("", "login", "--server", s.URL)
	wantStderr(t, code, stderr, 2, "--user NAME")
	_, stderr, code = kiln("wrong password\n", "login", "--server", s.URL, "--user", "ada", "--password-stdin")
	wantStderr(t, code, stderr, 1, "wrong name or password")

	stdout, stderr, code := kiln("correct horse\n", "login", "--server", s.URL, "--user", "ada", "--password-stdin")
	if code != 0 || !strings.HasPrefix(stdout, "logged in to "+s.URL+" as ada (admin); the token is saved in "+filepath.Join(config, "kiln", "logins")) {
		t.Fatalf("login: exit %d, %q %q", code, stdout, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(config, "kiln", "logins", "*.json"))
	if len(files) != 1 {
		t.Fatalf("login files = %v, want one", files)
	}
	for path, want := range map[string]os.FileMode{files[0]: 0o600, filepath.Dir(files[0]): 0o700 | os.ModeDir} {
		if st, err := os.Stat(path); err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, st.Mode(), err, want)
		}
	}

	// Logged in: the README's next step works.
	if stdout, stderr, code := kiln("", "dags", "list", "--server", s.URL); code != 0 || !strings.Contains(stdout, "ml_pipeline") {
		t.Errorf("dags list after login: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, stderr, code = kiln("", "tokens", "create", "--name", "ci", "--role", "operator", "--server", s.URL)
	ci := strings.TrimSpace(stdout)
	if code != 0 || !strings.HasPrefix(ci, "kiln_") {
		t.Fatalf("tokens create after login: exit %d, %q %q", code, stdout, stderr)
	}
	stdout, _, _ = kiln("", "tokens", "list", "--server", s.URL)
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
		f := strings.Fields(line)
		rows = append(rows, f[2]+" "+f[3])
	}
	if strings.Join(rows, ", ") != "admin ada, operator -" {
		t.Errorf("tokens list = %q, want ada's login token (role admin, user ada) and ci (operator, no user)", stdout)
	}

	// --token, then $KILN_TOKEN, win over the login; each refusal says what
	// to run.
	_, stderr, code = kiln("", "users", "list", "--server", s.URL, "--token", ci)
	wantStderr(t, code, stderr, 1, "needs the admin role; you are ci (operator)", "run "+login+" as a user who has that role")
	_, stderr, code = runKilnEnv(t, "", append(env, "KILN_TOKEN=kiln_bogus"), "", "dags", "list", "--server", s.URL)
	wantStderr(t, code, stderr, 1, "refused the token of $KILN_TOKEN", "unset KILN_TOKEN and run "+login)
	_, stderr, code = kiln("", "dags", "list", "--server", s.URL, "--token", "kiln_bogus")
	wantStderr(t, code, stderr, 1, "refused the token of --token", "leave --token out and run "+login)

	// A new password ends the login.
	if _, stderr, code := kiln("battery staple\n", "users", "set", "ada", "--password-stdin", "--server", s.URL); code != 0 {
		t.Fatalf("users set: exit %d %s", code, stderr)
	}
	_, stderr, code = kiln("", "dags", "list", "--server", s.URL)
	wantStderr(t, code, stderr, 1, "refused your login as ada", "run "+login+" again")

	if _, stderr, code := kiln("battery staple\n", "login", "--server", s.URL, "--user", "ada", "--password-stdin"); code != 0 {
		t.Fatalf("login again: exit %d %s", code, stderr)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	saved := string(b)
	stdout, stderr, code = kiln("", "logout", "--server", s.URL)
	if code != 0 || stdout != "logged out of "+s.URL+"\n" || stderr != "" {
		t.Errorf("logout: exit %d, %q %q", code, stdout, stderr)
	}
	if _, err := os.Stat(files[0]); !os.IsNotExist(err) {
		t.Errorf("the login file is still there after logout (%v)", err)
	}
	if stdout, _, code := kiln("", "logout", "--server", s.URL); code != 0 || stdout != "not logged in to "+s.URL+"\n" {
		t.Errorf("second logout: exit %d, %q", code, stdout)
	}
	// The token was revoked on the server, not only forgotten here.
	token := saved[strings.Index(saved, "kiln_"):]
	token = token[:strings.IndexByte(token, '"')]
	_, stderr, code = kiln("", "dags", "list", "--server", s.URL, "--token", token)
	wantStderr(t, code, stderr, 1, "invalid, revoked or unknown token")
}
