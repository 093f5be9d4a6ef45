package main

import (
	"fmt"
	"os"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/spf13/pflag"
)

// natsClientFlags are how `kiln server` and `kiln worker` prove who they
// are to NATS and check whom they talk to (docs/operations.md#security).
type natsClientFlags struct {
	creds, nkey, user, password string
	tlsCA, tlsCert, tlsKey      string
}

func (f *natsClientFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.creds, "nats-creds", os.Getenv("KILN_NATS_CREDS"), "NATS credentials file: a user JWT and its NKey seed (default $KILN_NATS_CREDS)")
	fs.StringVar(&f.nkey, "nats-nkey", os.Getenv("KILN_NATS_NKEY"), "NATS NKey seed file (default $KILN_NATS_NKEY)")
	fs.StringVar(&f.user, "nats-user", os.Getenv("KILN_NATS_USER"), "NATS user name, with --nats-password (default $KILN_NATS_USER)")
	// No default shown: --help must not print a password from the environment.
	fs.StringVar(&f.password, "nats-password", "", "NATS password (default $KILN_NATS_PASSWORD)")
	fs.StringVar(&f.tlsCA, "nats-tls-ca", os.Getenv("KILN_NATS_TLS_CA"), "CA certificates (PEM) that NATS servers' certificates must chain to, instead of the system's (default $KILN_NATS_TLS_CA)")
	fs.StringVar(&f.tlsCert, "nats-tls-cert", os.Getenv("KILN_NATS_TLS_CERT"), "client certificate (PEM) for a NATS server that asks for one, with --nats-tls-key (default $KILN_NATS_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "nats-tls-key", os.Getenv("KILN_NATS_TLS_KEY"), "the client certificate's key (PEM) (default $KILN_NATS_TLS_KEY)")
}

// options are the NATS connection options the flags ask for. Files are
// read now, so that a bad one is a usage error naming its flag rather
// than a connection that keeps failing.
func (f *natsClientFlags) options() ([]nats.Option, error) {
	password := f.password
	if password == "" {
		password = os.Getenv("KILN_NATS_PASSWORD")
	}
	given := 0
	for _, v := range []string{f.creds, f.nkey, f.user} {
		if v != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return nil, usageError("--nats-creds, --nats-nkey and --nats-user are three ways to authenticate: give one")
	case password != "" && f.user == "":
		return nil, usageError("--nats-password needs --nats-user")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return nil, usageError("--nats-tls-cert and --nats-tls-key go together")
	}
	var opts []nats.Option
	switch {
	case f.creds != "":
		if err := checkCreds(f.creds); err != nil {
			return nil, usageError("--nats-creds %s: %v", f.creds, err)
		}
		opts = append(opts, nats.UserCredentials(f.creds))
	case f.nkey != "":
		opt, err := nats.NkeyOptionFromSeed(f.nkey)
		if err != nil {
			return nil, usageError("--nats-nkey %s: %v", f.nkey, err)
		}
		opts = append(opts, opt)
	case f.user != "":
		opts = append(opts, nats.UserInfo(f.user, password))
	}
	if f.tlsCA != "" {
		opt := nats.RootCAs(f.tlsCA)
		if err := opt(&nats.Options{}); err != nil {
			return nil, usageError("--nats-tls-ca %s: %v", f.tlsCA, err)
		}
		opts = append(opts, opt)
	}
	if f.tlsCert != "" {
		opt := nats.ClientCert(f.tlsCert, f.tlsKey)
		if err := opt(&nats.Options{}); err != nil {
			return nil, usageError("--nats-tls-cert %s, --nats-tls-key %s: %v", f.tlsCert, f.tlsKey, err)
		}
		opts = append(opts, opt)
	}
	return opts, nil
}

// checkCreds checks that a credentials file holds a user JWT and a seed.
func checkCreds(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	token, err := nkeys.ParseDecoratedJWT(data)
	if err == nil {
		_, err = jwt.DecodeUserClaims(token)
	}
	if err != nil {
		return fmt.Errorf("no user JWT: %w", err)
	}
	kp, err := nkeys.ParseDecoratedUserNKey(data)
	if err != nil {
		return fmt.Errorf("no user NKey seed: %w", err)
	}
	kp.Wipe()
	return nil
}
