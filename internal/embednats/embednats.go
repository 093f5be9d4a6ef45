// Package embednats runs a NATS server with JetStream inside the Kiln
// process, for `kiln standalone` and for tests. Clients reach it over a
// real TCP listener, exactly as they would reach a separate server, so
// code under test and in production talks to NATS the same way; the
// process's own clients may connect in-process instead, speaking the same
// protocol with the same credentials, but needing no TLS.
package embednats

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/kilnhq/kiln/internal/diskfull"
)

// DefaultReadyTimeout is how long Start waits for the server to accept
// connections when Options.ReadyTimeout is zero. Recovering a large
// JetStream store can take a while, so it is generous.
const DefaultReadyTimeout = 30 * time.Second

// Options configure an embedded server.
type Options struct {
	// StoreDir is the folder holding JetStream's streams. Required.
	StoreDir string
	// Listen is the client address as host:port. Port 0 picks a free
	// port ("127.0.0.1:0"); empty means "127.0.0.1:4222".
	Listen string
	// Logger receives the server's log, at debug level for its notices;
	// nil discards it.
	Logger *slog.Logger
	// ReadyTimeout bounds the wait for the server to accept connections;
	// zero means DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Nkeys, when set, are the only clients the server lets in, each with
	// its permissions (docs/operations.md#security); nil lets anyone in.
	Nkeys []*server.NkeyUser
	// TLS, when set, is the client listener's TLS: clients must use it,
	// except those connected in-process (nats.InProcessServer(s.NATS())
	// with a nats:// URL), which need none.
	TLS *tls.Config
}

// waitReady waits for ns to accept connections, giving up early when the
// server has logged a fatal error such as a listen address in use.
func waitReady(ns *server.Server, logs *logAdapter, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ns.ReadyForConnections(20 * time.Millisecond) {
			return true
		}
		if logs.fatal() != "" || time.Now().After(deadline) {
			return false
		}
	}
}

// Server is a running embedded NATS server.
type Server struct {
	ns   *server.Server
	logs *logAdapter
}

// Start starts a server and returns once it accepts connections, or with
// an error saying why it did not (an address in use, a bad store folder).
func Start(o Options) (*Server, error) {
	if o.StoreDir == "" {
		return nil, errors.New("embedded NATS: no JetStream store folder given")
	}
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:4222"
	}
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("embedded NATS: listen address %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT // for nats-server, 0 means its default 4222
	}
	timeout := o.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}

	ns, err := server.NewServer(&server.Options{
		ServerName: "kiln-embedded",
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.StoreDir,
		NoSigs:     true,
		// The server's own HTTP monitoring stays off: Kiln serves its
		// health and metrics itself.
		HTTPPort:  0,
		Nkeys:     o.Nkeys,
		TLSConfig: o.TLS,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded NATS: %w", err)
	}
	logs := &logAdapter{log: o.Logger, diskFull: make(chan error, 1)}
	ns.SetLoggerV2(logs, false, false, false)
	ns.Start()
	if !waitReady(ns, logs, timeout) {
		ns.Shutdown()
		ns.WaitForShutdown()
		if f := logs.fatal(); f != "" {
			return nil, fmt.Errorf("embedded NATS on %s: %s", listen, f)
		}
		return nil, fmt.Errorf("embedded NATS on %s: not accepting connections after %s", listen, timeout)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		ns.WaitForShutdown()
		msg := logs.fatal()
		if msg == "" {
			msg = "JetStream did not start"
		}
		return nil, fmt.Errorf("embedded NATS: %s", msg)
	}
	return &Server{ns: ns, logs: logs}, nil
}

// ClientURL is the nats:// URL clients connect to.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// Addr is the address the server listens on for clients.
func (s *Server) Addr() net.Addr { return s.ns.Addr() }

// DiskFull receives the first write error of JetStream's store that says
// its disk is full (diskfull.Is). From then on JetStream stores nothing:
// its file store refuses every write once one has failed, until the
// server restarts, even when room is made.
func (s *Server) DiskFull() <-chan error { return s.logs.diskFull }

// NATS returns the underlying server, for what this package does not wrap.
func (s *Server) NATS() *server.Server { return s.ns }

// Shutdown stops the server and returns once it has stopped. JetStream
// data stays in the store folder for the next Start.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// logAdapter turns nats-server's printf logging into slog records,
// remembers the first fatal message, which explains a failed start, and
// tells of a full disk. The server reports its store's write errors only
// in its log, as an error with the error among the arguments.
type logAdapter struct {
	log *slog.Logger

	mu       sync.Mutex
	fatalMsg string

	diskFull     chan error // buffered; gets the first full-disk error
	diskFullOnce sync.Once
}

func (l *logAdapter) fatal() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalMsg
}

func (l *logAdapter) emit(level slog.Level, format string, v []any) {
	if l.log == nil {
		return
	}
	l.log.Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "nats")
}

func (l *logAdapter) Noticef(format string, v ...any) { l.emit(slog.LevelDebug, format, v) }
func (l *logAdapter) Warnf(format string, v ...any)   { l.emit(slog.LevelWarn, format, v) }
func (l *logAdapter) Errorf(format string, v ...any) {
	l.emit(slog.LevelError, format, v)
	for _, a := range v {
		if err, ok := a.(error); ok && diskfull.Is(err) {
			l.diskFullOnce.Do(func() { l.diskFull <- err })
		}
	}
}
func (l *logAdapter) Debugf(format string, v ...any) { l.emit(slog.LevelDebug-4, format, v) }
func (l *logAdapter) Tracef(format string, v ...any) { l.emit(slog.LevelDebug-8, format, v) }

// Fatalf records the message instead of exiting, as nats-server's own
// logger would: a failed embedded server must not end the process.
func (l *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatalMsg == "" {
		l.fatalMsg = msg
	}
	l.mu.Unlock()
	l.emit(slog.LevelError, "%s", []any{msg})
}
