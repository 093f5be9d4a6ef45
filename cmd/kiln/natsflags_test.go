package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// TestNATSClientFlags: the NATS credential and TLS flags of `kiln server`
// and `kiln worker` go together as docs/cli.md says, and a bad file is a
// usage error naming its flag, before anything connects.
func TestNATSClientFlags(t *testing.T) {
	dir := t.TempDir()
	seed := filepath.Join(dir, "worker.nk")
	creds := filepath.Join(dir, "worker.creds")
	writeSeedAndCreds(t, seed, creds)
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name  string
		flags natsClientFlags
		env   map[string]string
		want  int    // options returned
		err   string // substring of the usage error
	}{
		{name: "none", want: 0},
		{name: "nkey", flags: natsClientFlags{nkey: seed}, want: 1},
		{name: "creds", flags: natsClientFlags{creds: creds}, want: 1},
		{name: "user and password", flags: natsClientFlags{user: "w", password: "pw"}, want: 1},
		{name: "password from the environment", flags: natsClientFlags{user: "w"}, env: map[string]string{"KILN_NATS_PASSWORD": "pw"}, want: 1},
		{name: "nkey and user", flags: natsClientFlags{nkey: seed, user: "w"}, err: "give one"},
		{name: "creds and nkey", flags: natsClientFlags{creds: creds, nkey: seed}, err: "give one"},
		{name: "password alone", flags: natsClientFlags{password: "pw"}, err: "--nats-password needs --nats-user"},
		{name: "cert without key", flags: natsClientFlags{tlsCert: seed}, err: "--nats-tls-cert and --nats-tls-key go together"},
		{name: "missing nkey", flags: natsClientFlags{nkey: missing}, err: "--nats-nkey " + missing},
		{name: "junk nkey", flags: natsClientFlags{nkey: junk}, err: "--nats-nkey " + junk},
		{name: "a seed as creds", flags: natsClientFlags{creds: seed}, err: "--nats-creds " + seed},
		{name: "missing creds", flags: natsClientFlags{creds: missing}, err: "--nats-creds " + missing},
		{name: "junk CA", flags: natsClientFlags{tlsCA: junk}, err: "--nats-tls-ca " + junk},
		{name: "junk client cert", flags: natsClientFlags{tlsCert: junk, tlsKey: junk}, err: "--nats-tls-cert " + junk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KILN_NATS_PASSWORD", tc.env["KILN_NATS_PASSWORD"])
			opts, err := tc.flags.options()
			if tc.err != "" {
				ex, ok := err.(*exitError)
				if !ok || ex.code != 2 || !strings.Contains(ex.msg, tc.err) {
					t.Fatalf("options() = %v, want a usage error with %q", err, tc.err)
				}
				return
			}
			if err != nil || len(opts) != tc.want {
				t.Fatalf("options() = %d options, %v; want %d", len(opts), err, tc.want)
			}
			var o nats.Options
			for _, opt := range opts {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			if tc.flags.user != "" && (o.User != "w" || o.Password != "pw") {
				t.Errorf("user %q password %q, want w and pw", o.User, o.Password)
			}
		})
	}
}

// writeSeedAndCreds writes a user NKey seed file, and a credentials file
// of another user with a JWT signed by an account key.
func writeSeedAndCreds(t *testing.T, seedPath, credsPath string) {
	t.Helper()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	if err := os.WriteFile(seedPath, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	account, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	token, err := jwt.NewUserClaims(pub).Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(token, seed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(credsPath, creds, 0o600); err != nil {
		t.Fatal(err)
	}
}
