package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/spf13/pflag"

	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/natsauth"
)

// embeddedNATSFlags are the flags of the NATS server `kiln standalone`
// embeds.
type embeddedNATSFlags struct {
	listen, tlsCert, tlsKey string
}

func (e *embeddedNATSFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&e.listen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server; beyond loopback only with --nats-tls-cert")
	fs.StringVar(&e.tlsCert, "nats-tls-cert", "", "certificate (PEM) of the embedded NATS server, with --nats-tls-key: workers joining it must then use TLS")
	fs.StringVar(&e.tlsKey, "nats-tls-key", "", "the certificate's key (PEM)")
}

// tls checks the flags before anything starts, and returns the listener's
// TLS configuration, nil without a certificate. A listener beyond loopback
// needs one (docs/operations.md#security): its clients' NKeys prove who
// they are without a secret crossing the network, but assignments, with
// their secrets, and results would cross it in clear.
func (e *embeddedNATSFlags) tls() (*tls.Config, error) {
	if (e.tlsCert == "") != (e.tlsKey == "") {
		return nil, usageError("--nats-tls-cert and --nats-tls-key go together")
	}
	loopback, err := isLoopbackAddr("--nats-listen", e.listen)
	if err != nil {
		return nil, err
	}
	if e.tlsCert == "" {
		if !loopback {
			return nil, usageError("--nats-listen %s is not a loopback address, and the embedded NATS has no TLS certificate: "+
				"Kiln refuses to send assignments, with their secrets, beyond this machine in clear.\n"+
				"Give it a certificate for the name workers connect to, --nats-tls-cert FILE --nats-tls-key FILE "+
				"(workers then connect to tls://NAME:PORT, with --nats-tls-ca if its CA is not the system's), or listen on 127.0.0.1", e.listen)
		}
		return nil, nil
	}
	c, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: e.tlsCert, KeyFile: e.tlsKey})
	if err != nil {
		return nil, usageError("--nats-tls-cert %s, --nats-tls-key %s: %v", e.tlsCert, e.tlsKey, err)
	}
	return c, nil
}

// startEmbeddedNATS starts the embedded server with JetStream in
// DATA/nats, letting in only the scheduler's and the workers' NKeys kept
// there (created at first start), and returns it with how the in-process
// clients reach it: in-process, which needs no TLS whatever the listener
// has.
func startEmbeddedNATS(e embeddedNATSFlags, tlsConfig *tls.Config, data string, logger *slog.Logger) (*embednats.Server, natsAccess, error) {
	dir := filepath.Join(data, "nats")
	creds, err := natsauth.LoadStandalone(dir)
	if err != nil {
		return nil, natsAccess{}, &exitError{code: 1, msg: err.Error()}
	}
	ns, err := embednats.Start(embednats.Options{StoreDir: dir, Listen: e.listen, Logger: logger, Nkeys: creds.Users(), TLS: tlsConfig})
	if err != nil {
		return nil, natsAccess{}, &exitError{code: 1, msg: fmt.Sprintf("starting embedded NATS: %v", err)}
	}
	inProcess := func(seed string) ([]nats.Option, error) {
		nkey, err := nats.NkeyOptionFromSeed(seed)
		if err != nil {
			return nil, fmt.Errorf("NATS credentials %s: %w", seed, err)
		}
		return []nats.Option{nats.InProcessServer(ns.NATS()), nkey}, nil
	}
	access := natsAccess{url: "nats://" + ns.Addr().String()}
	access.scheduler, err = inProcess(creds.SchedulerSeed)
	if err == nil {
		access.workers, err = inProcess(creds.WorkerSeed)
	}
	if err != nil {
		ns.Shutdown()
		return nil, natsAccess{}, &exitError{code: 1, msg: err.Error()}
	}
	join := "kiln worker --nats " + ns.ClientURL() + " --nats-nkey " + creds.WorkerSeed
	if tlsConfig != nil {
		join += " [--nats-tls-ca CA.pem]"
	}
	logger.Info("embedded NATS ready; more workers join with: "+join, "url", ns.ClientURL(), "worker_nkey", creds.WorkerSeed)
	return ns, access, nil
}
