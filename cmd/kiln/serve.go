package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/secrets"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/worker"
)

// processFlags are the flags of `kiln standalone` and `kiln server`.
type processFlags struct {
	dags             string
	data             string
	addr             string
	heartbeatTimeout time.Duration
	logLevel         string
	plugins          string
	secrets          string
	flags            *pflag.FlagSet
}

func (f *processFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dags, "dags", "dags", "folder of DAG files")
	cmd.Flags().StringVar(&f.data, "data", ".kiln", "folder for the store, logs and (standalone) NATS data")
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:8080", "address of the web UI and API")
	cmd.Flags().DurationVar(&f.heartbeatTimeout, "heartbeat-timeout", 30*time.Second, "fail a running try whose worker sent no heartbeat for this long")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.secrets, "secrets", os.Getenv("KILN_SECRETS"), "folder of secret files, one per secret named like the file (default $KILN_SECRETS); KILN_SECRET_NAME in the environment wins")
	addPluginsFlag(cmd, &f.plugins)
	f.flags = cmd.Flags()
}

func newStandaloneCmd() *cobra.Command {
	var (
		f          processFlags
		natsListen string
		workers    int
		slots      int
	)
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run everything in one process: embedded NATS, scheduler, workers, web UI and API",
		Long: `Run everything in one process: an embedded NATS server with JetStream
(reachable at --nats-listen so that more kiln workers can join), the
scheduler, --workers in-process workers that talk to NATS like remote ones,
and the web UI and API at --addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 0 || slots < 1 {
				return usageError("--workers must be >= 0 and --slots >= 1")
			}
			logger, err := workerLogger(f.logLevel)
			if err != nil {
				return err
			}
			ctx, stop := gracefulContext()
			defer stop()
			ns, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(f.data, "nats"), Listen: natsListen, Logger: logger})
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("starting embedded NATS: %v", err)}
			}
			defer ns.Shutdown()
			logger.Info("embedded NATS ready", "url", ns.ClientURL())
			return serve(ctx, logger, f, ns.ClientURL(), workers, slots)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&natsListen, "nats-listen", "127.0.0.1:4222", "address of the embedded NATS server")
	cmd.Flags().IntVar(&workers, "workers", 1, "in-process workers (0 for none)")
	cmd.Flags().IntVar(&slots, "slots", 4, "task slots of each in-process worker")
	return cmd
}

func newServerCmd() *cobra.Command {
	var (
		f       processFlags
		natsURL string
	)
	cmd := &cobra.Command{
		Use:   "server --nats URL",
		Short: "Run the scheduler, web UI and API against an existing NATS cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if natsURL == "" {
				return usageError("--nats is required")
			}
			logger, err := workerLogger(f.logLevel)
			if err != nil {
				return err
			}
			ctx, stop := gracefulContext()
			defer stop()
			return serve(ctx, logger, f, natsURL, 0, 0)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&natsURL, "nats", os.Getenv("KILN_NATS"), "NATS URL (default $KILN_NATS)")
	return cmd
}

// serve runs the scheduler, the API and nWorkers in-process workers until
// ctx ends.
func serve(ctx context.Context, logger *slog.Logger, f processFlags, natsURL string, nWorkers, slots int) error {
	loopback, err := isLoopbackAddr(f.addr)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if st, err := os.Stat(f.dags); err != nil || !st.IsDir() {
		return usageError("DAGs folder %s: not a folder (create it, or pass --dags)", f.dags)
	}
	reg, err := discoverPlugins(ctx, f.flags, f.plugins, logger)
	if err != nil {
		return err
	}
	logPluginProblems(logger, reg)
	nc, err := connectNATS(natsURL, "kiln-server")
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer nc.Close()
	st, err := store.Open(filepath.Join(f.data, "kiln.db"))
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer st.Close()
	if err := checkAddr(f.addr, f.data, st); err != nil {
		return err
	}
	if !loopback {
		logger.Warn("serving the API beyond this machine over plain HTTP: put a TLS-terminating proxy in front, so that tokens and passwords do not cross the network in clear", "addr", f.addr)
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	sched, err := scheduler.New(scheduler.Config{
		Metrics:          metrics,
		Store:            st,
		NATS:             nc,
		Folder:           dag.NewFolder(loadOptions(reg), f.dags),
		DataDir:          f.data,
		Logger:           logger,
		HeartbeatTimeout: f.heartbeatTimeout,
		Secrets:          secrets.Source{Dir: f.secrets},
	})
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("listening on %s: %v", f.addr, err)}
	}
	api := ui.New(sched, ui.Options{Logger: logger, Plugins: apiPlugins{reg}, Metrics: metrics})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2+nWorkers)
	wg.Go(func() {
		errs <- sched.Run(ctx)
		cancel()
	})
	wg.Go(func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = api.Shutdown(sctx)
	})
	wg.Go(func() {
		if err := api.Serve(ln); err != nil {
			errs <- err
			cancel()
		}
	})
	var plugins *host.Host
	if nWorkers > 0 {
		plugins = pluginHost(reg, logger)
		defer plugins.Close()
	}
	for i := range nWorkers {
		w, err := worker.New(worker.Config{
			NATSURL: natsURL,
			Name:    fmt.Sprintf("%s-%d-w%d", hostname(), os.Getpid(), i),
			Slots:   slots,
			Runner:  plugins,
			DataDir: filepath.Join(f.data, "work"),
			Logger:  logger,
		})
		if err != nil {
			cancel()
			wg.Wait()
			return &exitError{code: 1, msg: err.Error()}
		}
		wg.Go(func() { errs <- w.Run(ctx) })
	}
	logger.Info("kiln is up", "api", "http://"+ln.Addr().String(), "dags", f.dags, "data", f.data, "workers", nWorkers)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return &exitError{code: 1, msg: err.Error()}
		}
	}
	return nil
}

// authChecker tells whether users or tokens exist (*store.Store).
type authChecker interface {
	AuthConfigured() (bool, error)
}

// checkAddr refuses to serve the API beyond this machine without
// authentication (docs/operations.md#authentication): a non-loopback --addr needs a user or token in
// the store of data first.
func checkAddr(addr, data string, st authChecker) error {
	loopback, err := isLoopbackAddr(addr)
	if err != nil || loopback {
		return err
	}
	on, err := st.AuthConfigured()
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	if !on {
		return usageError("--addr %s is not a loopback address, and authentication is not configured: Kiln refuses to serve its API beyond this machine without it.\n"+
			"Create the first admin with `kiln users add NAME --role admin --data %s` (or a token with `kiln tokens create --name NAME --role admin --data %s`), then start again", addr, data, data)
	}
	return nil
}

// isLoopbackAddr reports whether addr (HOST:PORT) listens on loopback
// only. An empty host listens on every interface; a host name is looked
// up, and counts as loopback when every address it has is.
func isLoopbackAddr(addr string) (bool, error) {
	return loopbackAddr(addr, net.DefaultResolver.LookupIPAddr)
}

// hostLookup finds the addresses of a host name.
type hostLookup func(ctx context.Context, host string) ([]net.IPAddr, error)

func loopbackAddr(addr string, lookup hostLookup) (bool, error) {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, usageError("--addr %q: %v", addr, err)
	}
	switch ip := net.ParseIP(h); {
	case h == "":
		return false, nil
	case h == "localhost":
		return true, nil
	case ip != nil:
		return ip.IsLoopback(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ips, err := lookup(ctx, h)
	if err != nil || len(ips) == 0 {
		return false, nil // it cannot be shown to be loopback
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false, nil
		}
	}
	return true, nil
}

func connectNATS(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
	)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", url, err)
	}
	return nc, nil
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "kiln"
	}
	return h
}
