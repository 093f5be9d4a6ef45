package docker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// pingTimeout bounds asking the Engine whether it is there.
const pingTimeout = 5 * time.Second

// Engine is a connection to a Docker Engine, from the environment as the
// docker CLI has it ($DOCKER_HOST, $DOCKER_CERT_PATH, $DOCKER_TLS_VERIFY,
// else the local socket), with the API version negotiated on first use.
type Engine struct {
	cli *client.Client

	mu      sync.Mutex
	version string // the Engine's, once it answered
}

// NewEngine returns an Engine for the environment's Docker host. It does
// not connect yet.
func NewEngine() (*Engine, error) {
	cli, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker: %w", err)
	}
	return &Engine{cli: cli}, nil
}

// Client returns the Engine's API client.
func (e *Engine) Client() *client.Client { return e.cli }

// Close closes the Engine's idle connections.
func (e *Engine) Close() error { return e.cli.Close() }

// Check asks the Engine whether it answers, and negotiates the API
// version. Its error names the Docker host and says what to do.
func (e *Engine) Check(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.version != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := e.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("no Docker Engine answers at %s (set $DOCKER_HOST to use another): %w", e.cli.DaemonHost(), err)
	}
	v, err := e.cli.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return fmt.Errorf("asking the Docker Engine at %s its version: %w", e.cli.DaemonHost(), err)
	}
	e.version = v.Version
	return nil
}

// Version returns the Engine's version, once Check succeeded.
func (e *Engine) Version() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.version
}

// Check reports whether a Docker Engine answers where this process would
// look for one: what `kiln plugins list` shows of the docker stage.
func Check(ctx context.Context) error {
	e, err := NewEngine()
	if err != nil {
		return err
	}
	defer e.Close()
	return e.Check(ctx)
}
