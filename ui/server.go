package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// DefaultAddr is where the server listens unless told otherwise: loopback
// only (SPEC 5).
const DefaultAddr = "127.0.0.1:8080"

// shutdownGrace bounds how long Start waits for requests in flight once its
// context is canceled.
const shutdownGrace = 10 * time.Second

// Options configure a Server.
type Options struct {
	// Addr is the address Start listens on; default DefaultAddr.
	Addr string
	// Logger receives request failures and server errors; default none.
	Logger *slog.Logger
	// Plugins lists the stage plugins for GET /api/v1/plugins; nil lists
	// none.
	Plugins PluginLister
}

// Server is Kiln's HTTP server. Create it with New; it is safe for
// concurrent use.
type Server struct {
	backend Backend
	plugins PluginLister
	addr    string
	log     *slog.Logger
	echo    *echo.Echo
	pages   pages
	http    *http.Server

	// stopping is closed when Shutdown begins, so that streams that would
	// otherwise run until their client leaves (followed logs) end and let
	// the shutdown finish.
	stopping chan struct{}
	stopOnce sync.Once

	// pollInterval is how often a followed log's file is checked for new
	// data.
	pollInterval time.Duration
	// keepAlive is how often a followed log with nothing new sends a
	// comment, so that proxies keep the connection.
	keepAlive time.Duration
}

// New returns a server for the API over b.
func New(b Backend, opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		backend:      b,
		plugins:      opts.Plugins,
		addr:         opts.Addr,
		log:          opts.Logger,
		stopping:     make(chan struct{}),
		pollInterval: 100 * time.Millisecond,
		keepAlive:    15 * time.Second,
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.handleError
	e.Use(s.recoverPanics)
	s.echo = e
	s.pages = mustParsePages()
	s.routes(e)
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Handler returns the server's HTTP handler, for tests and for mounting it
// in another server.
func (s *Server) Handler() http.Handler { return s.echo }

// Start listens on the configured address and serves until ctx is canceled
// or Shutdown is called. On cancellation it shuts down gracefully, waiting
// up to 10 s for requests in flight. It returns nil after a clean shutdown.
func (s *Server) Start(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.addr, err)
	}
	s.log.Info("API listening", "addr", ln.Addr().String())
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		if err := s.Shutdown(sctx); err != nil {
			s.log.Warn("API shutdown", "err", err)
		}
	})
	defer stop()
	return s.Serve(ln)
}

// Serve serves on ln until Shutdown is called, then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends followed logs and waits for
// the requests in flight to finish or ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopping) })
	return s.http.Shutdown(ctx)
}

// routes registers every endpoint; openapi.json must list the same ones
// (TestOpenAPICoversRoutes).
func (s *Server) routes(e *echo.Echo) {
	e.GET("/healthz", s.health)

	// Middleware goes on each route rather than on a group: echo answers
	// 404 instead of 405 for a wrong method under a group with middleware.
	api := func(method, path string, h echo.HandlerFunc) {
		e.Add(method, "/api/v1"+path, h, s.authenticate)
	}
	api(http.MethodGet, "/openapi.json", s.openAPI)

	api(http.MethodGet, "/dags", s.listDAGs)
	api(http.MethodGet, "/dags/:dag", s.getDAG)
	api(http.MethodPatch, "/dags/:dag", s.patchDAG)
	api(http.MethodGet, "/import-errors", s.listImportErrors)

	api(http.MethodGet, "/dags/:dag/runs", s.listRuns)
	api(http.MethodPost, "/dags/:dag/runs", s.triggerRun)
	api(http.MethodGet, "/dags/:dag/runs/:run", s.getRun)
	api(http.MethodPost, "/dags/:dag/runs/:run/clear", s.clearTasks)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks", s.listTaskInstances)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks/:task/logs", s.taskLogs)

	api(http.MethodPost, "/dags/:dag/backfills", s.createBackfill)
	api(http.MethodGet, "/backfills", s.listBackfills)
	api(http.MethodGet, "/backfills/:id", s.getBackfill)
	api(http.MethodDelete, "/backfills/:id", s.cancelBackfill)

	api(http.MethodGet, "/pools", s.listPools)
	api(http.MethodPut, "/pools/:name", s.setPool)
	api(http.MethodDelete, "/pools/:name", s.deletePool)

	api(http.MethodGet, "/plugins", s.listPlugins)

	s.pageRoutes(e)
}

// health answers /healthz: 200 when the scheduler, the store and NATS are
// up, 503 with the reason otherwise.
func (s *Server) health(c echo.Context) error {
	if err := s.backend.Health(); err != nil {
		return c.JSON(http.StatusServiceUnavailable, Health{Status: "unavailable", Error: err.Error()})
	}
	return c.JSON(http.StatusOK, Health{Status: "ok"})
}

// recoverPanics turns a panicking handler into a 500 answer.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("API handler panicked", "method", c.Request().Method, "path", c.Request().URL.Path, "panic", p)
				err = fmt.Errorf("internal error: %v", p)
			}
		}()
		return next(c)
	}
}
