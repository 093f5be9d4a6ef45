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
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/internal/buildinfo"
)

// DefaultAddr is where the server listens unless told otherwise: loopback
// only (docs/operations.md#authentication).
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
	// Metrics is what GET /metrics serves; nil answers 404 there.
	Metrics prometheus.Gatherer
	// Replication, in cluster mode, says where this server stands
	// (docs/operations.md#cluster-mode), for GET /healthz.
	Replication func() SchedulerHealth
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
	auth    authState
	metrics http.Handler // GET /metrics; nil when not enabled
	repl    func() SchedulerHealth

	// stopping is closed when Shutdown begins, so that streams that would
	// otherwise run until their client leaves (followed logs, the event
	// stream) end and let the shutdown finish.
	stopping chan struct{}
	stopOnce sync.Once

	// folders tells followed logs when their file may have grown.
	folders folderWatch
	// logPoll is how often a followed log's file is read although nothing
	// said it changed: the fallback of folders and the change feed.
	logPoll time.Duration
	// keepAlive is how often a stream with nothing new (a followed log,
	// the event stream) sends a comment, so that proxies keep the
	// connection.
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
		backend:   b,
		plugins:   opts.Plugins,
		addr:      opts.Addr,
		log:       opts.Logger,
		stopping:  make(chan struct{}),
		logPoll:   time.Second,
		keepAlive: 15 * time.Second,
		metrics:   newMetricsHandler(opts.Metrics, opts.Logger),
		repl:      opts.Replication,
		auth:      authState{logins: newLoginLimiter()},
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

// Close stops the server at once: its listeners and every connection,
// requests in flight included.
func (s *Server) Close() error {
	s.stopOnce.Do(func() { close(s.stopping) })
	return s.http.Close()
}

// routes registers every endpoint; openapi.json must list the same ones
// (TestOpenAPICoversRoutes).
func (s *Server) routes(e *echo.Echo) {
	e.GET("/healthz", s.health)
	e.GET("/metrics", s.serveMetrics)

	// Middleware goes on each route rather than on a group: echo answers
	// 404 instead of 405 for a wrong method under a group with middleware.
	// min is the role a route needs (auth.go): viewer reads, operator
	// changes runs and DAGs, admin manages pools, users and tokens.
	api := func(method, path string, h echo.HandlerFunc, min Role) {
		e.Add(method, "/api/v1"+path, h, s.authenticate, s.authorize(min), s.whenStarted)
	}
	api(http.MethodGet, "/openapi.json", s.openAPI, RoleViewer)
	api(http.MethodGet, "/events", s.streamEvents, RoleViewer)

	api(http.MethodGet, "/dags", s.listDAGs, RoleViewer)
	api(http.MethodGet, "/dags/:dag", s.getDAG, RoleViewer)
	api(http.MethodPatch, "/dags/:dag", s.patchDAG, RoleOperator)
	api(http.MethodGet, "/import-errors", s.listImportErrors, RoleViewer)

	api(http.MethodGet, "/dags/:dag/versions", s.listDAGVersions, RoleViewer)
	api(http.MethodGet, "/dags/:dag/versions/:hash", s.getDAGVersion, RoleViewer)
	api(http.MethodGet, "/dags/:dag/runs", s.listRuns, RoleViewer)
	api(http.MethodPost, "/dags/:dag/runs", s.triggerRun, RoleOperator)
	api(http.MethodGet, "/dags/:dag/runs/:run", s.getRun, RoleViewer)
	api(http.MethodPatch, "/dags/:dag/runs/:run", s.patchRun, RoleOperator)
	api(http.MethodPost, "/dags/:dag/runs/:run/clear", s.clearTasks, RoleOperator)
	api(http.MethodGet, "/dags/:dag/runs/:run/diff", s.diffRuns, RoleViewer)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks", s.listTaskInstances, RoleViewer)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks/:task", s.getTask, RoleViewer)
	api(http.MethodPatch, "/dags/:dag/runs/:run/tasks/:task", s.patchTaskInstance, RoleOperator)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks/:task/logs", s.taskLogs, RoleViewer)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks/:task/tries", s.listTries, RoleViewer)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks/:task/tries/:n", s.getTry, RoleViewer)
	api(http.MethodGet, "/dags/:dag/runs/:run/artifacts", s.listRunArtifacts, RoleViewer)
	api(http.MethodGet, "/dags/:dag/runs/:run/tasks/:task/artifacts/:name", s.getArtifact, RoleViewer)

	api(http.MethodGet, "/cache", s.listCache, RoleViewer)
	api(http.MethodDelete, "/cache", s.clearCache, RoleOperator)
	api(http.MethodPost, "/artifacts/gc", s.collectArtifacts, RoleOperator)

	api(http.MethodPost, "/dags/:dag/backfills", s.createBackfill, RoleOperator)
	api(http.MethodGet, "/backfills", s.listBackfills, RoleViewer)
	api(http.MethodGet, "/backfills/:id", s.getBackfill, RoleViewer)
	api(http.MethodDelete, "/backfills/:id", s.cancelBackfill, RoleOperator)

	api(http.MethodGet, "/pools", s.listPools, RoleViewer)
	api(http.MethodPut, "/pools/:name", s.setPool, RoleAdmin)
	api(http.MethodDelete, "/pools/:name", s.deletePool, RoleAdmin)

	api(http.MethodGet, "/plugins", s.listPlugins, RoleViewer)

	api(http.MethodGet, "/workers", s.listWorkers, RoleViewer)
	api(http.MethodGet, "/queues", s.listQueues, RoleViewer)

	api(http.MethodGet, "/datasets", s.listDatasets, RoleViewer)
	api(http.MethodGet, "/datasets/events", s.listDatasetEvents, RoleViewer)
	api(http.MethodPost, "/datasets/events", s.emitDatasetEvent, RoleOperator)

	api(http.MethodGet, "/users", s.listUsers, RoleAdmin)
	api(http.MethodPost, "/users", s.addUser, RoleAdmin)
	api(http.MethodPatch, "/users/:name", s.updateUser, RoleAdmin)
	api(http.MethodDelete, "/users/:name", s.deleteUser, RoleAdmin)
	api(http.MethodGet, "/tokens", s.listTokens, RoleAdmin)
	api(http.MethodPost, "/tokens", s.createToken, RoleAdmin)
	api(http.MethodDelete, "/tokens/:id", s.deleteToken, RoleAdmin)

	api(http.MethodGet, "/backup", s.backup, RoleAdmin)

	// Logging in is how a request comes to be authenticated; logging out
	// needs only the token it gives back.
	e.POST("/api/v1/login", s.apiLogin)
	api(http.MethodPost, "/logout", s.apiLogout, RoleViewer)

	s.pageRoutes(e)
	s.authRoutes(e)
}

// health answers /healthz: 200 when the scheduler, the store and NATS are
// up, 503 with the reason otherwise.
func (s *Server) health(c echo.Context) error {
	h := Health{Status: "ok", Version: buildinfo.Get().Version, Scheduler: SchedulerHealth{Role: string(s.backend.Role())}}
	if s.repl != nil {
		h.Scheduler = s.repl()
	}
	if err := s.backend.Health(); err != nil {
		h.Status, h.Error = "unavailable", err.Error()
		return c.JSON(http.StatusServiceUnavailable, h)
	}
	return c.JSON(http.StatusOK, h)
}

// whenStarted answers 503 until the scheduler has loaded its DAGs and
// recovered its runs (a server starting, or a standby taking over), rather
// than answer as if a DAG did not exist.
func (s *Server) whenStarted(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !s.backend.Started() {
			c.Response().Header().Set("Retry-After", "1")
			return echo.NewHTTPError(http.StatusServiceUnavailable, "the scheduler is starting: loading DAGs and recovering runs; try again in a moment")
		}
		return next(c)
	}
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
