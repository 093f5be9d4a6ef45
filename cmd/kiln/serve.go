package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/cluster"
	"github.com/kilnhq/kiln/internal/secrets"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/registry"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/worker"
)

// buildInfoGauge is kiln_build_info, always 1, whose labels say which build
// serves (docs/operations.md#metrics).
func buildInfoGauge() prometheus.Collector {
	bi := buildinfo.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "kiln_build_info",
		Help: "Always 1; the labels name the running build: version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{
			"version":   bi.Version,
			"revision":  bi.Revision,
			"goversion": bi.GoVersion,
		},
	})
	g.Set(1)
	return g
}

// processFlags are the flags of `kiln standalone` and `kiln server`.
type processFlags struct {
	dags             dagsFolder
	data             string
	addr             string
	heartbeatTimeout time.Duration
	logLevel         string
	plugins          string
	secrets          string
	keepWorkdirs     bool // standalone only: of its in-process workers
	// artifactsMaxBytes bounds the artifact store (a size); artifactRetention is
	// the periodic collection's age, as given (docs/artifacts.md#retention).
	artifactsMaxBytes string
	artifactRetention string
	// replicas (server only) is scheduler.Config.Replicas.
	replicas int
	// ha (server only) is cluster mode, with this server's name, the URL
	// other servers reach its API at, and the leader lease's TTL.
	ha        bool
	name      string
	advertise string
	leaseTTL  time.Duration
	flags     *pflag.FlagSet
}

func (f *processFlags) register(cmd *cobra.Command) {
	f.dags.register(cmd.Flags(), "folder of DAG files")
	cmd.Flags().StringVar(&f.data, "data", ".kiln", "folder for the store, logs and (standalone) NATS data")
	cmd.Flags().StringVar(&f.addr, "addr", "127.0.0.1:8080", "address of the web UI and API")
	cmd.Flags().DurationVar(&f.heartbeatTimeout, "heartbeat-timeout", 30*time.Second, "fail a running try whose worker sent no heartbeat for this long")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.secrets, "secrets", os.Getenv("KILN_SECRETS"), "folder of secret files, one per secret named like the file (default $KILN_SECRETS); KILN_SECRET_NAME in the environment wins")
	cmd.Flags().StringVar(&f.artifactsMaxBytes, "artifacts-max-bytes", "0", "bound the artifact store to this size, such as 200GiB (0: no bound but the NATS server's)")
	cmd.Flags().StringVar(&f.artifactRetention, "artifact-retention", "30d", "delete stored artifacts that nothing of this age or younger refers to, hourly (0: keep them until kiln artifacts gc)")
	addPluginsFlag(cmd, &f.plugins)
	f.flags = cmd.Flags()
}

// artifactStore reads --artifacts-max-bytes and --artifact-retention.
func (f *processFlags) artifactStore() (maxBytes int64, retention time.Duration, err error) {
	n, err := humanize.ParseBytes(f.artifactsMaxBytes)
	if err != nil || n > math.MaxInt64 {
		return 0, 0, usageError("--artifacts-max-bytes %q: want a size such as 200GiB or 500000000, or 0 for no bound", f.artifactsMaxBytes)
	}
	d, err := dag.ParseDays(f.artifactRetention)
	if err != nil || d < 0 {
		return 0, 0, usageError("--artifact-retention %q: want an age such as 30d or 12h, or 0 to keep artifacts until kiln artifacts gc", f.artifactRetention)
	}
	return int64(n), d, nil
}

func newStandaloneCmd() *cobra.Command {
	var (
		f       processFlags
		natsFl  embeddedNATSFlags
		workers int
		slots   int
	)
	cmd := &cobra.Command{
		Use:   "standalone",
		Short: "Run everything in one process: embedded NATS, scheduler, workers, web UI and API",
		Long: `Run everything in one process: an embedded NATS server with JetStream
(reachable at --nats-listen so that more kiln workers can join, with the
worker NKey it keeps in DATA/nats/worker.nk), the scheduler, --workers
in-process workers that talk to NATS like remote ones, and the web UI and
API at --addr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if workers < 0 || slots < 1 {
				return usageError("--workers must be >= 0 and --slots >= 1")
			}
			tlsConfig, err := natsFl.tls()
			if err != nil {
				return err
			}
			logger, err := workerLogger(f.logLevel)
			if err != nil {
				return err
			}
			ctx, stop := gracefulContext()
			defer stop()
			startNATS := func() (natsServer, error) {
				ns, access, err := startEmbeddedNATS(natsFl, tlsConfig, f.data, logger)
				if err != nil {
					return natsServer{}, err
				}
				return natsServer{access: access, stop: ns.Shutdown, diskFull: ns.DiskFull()}, nil
			}
			return serve(ctx, logger, f, startNATS, workers, slots)
		},
	}
	f.register(cmd)
	natsFl.register(cmd.Flags())
	cmd.Flags().IntVar(&workers, "workers", 1, "in-process workers (0 for none)")
	cmd.Flags().IntVar(&slots, "slots", 4, "task slots of each in-process worker")
	cmd.Flags().BoolVar(&f.keepWorkdirs, "keep-workdirs", false, "keep each try's working directory (under DATA/work) once the try has ended, instead of removing it")
	return cmd
}

func newServerCmd() *cobra.Command {
	var (
		f       processFlags
		natsURL string
		auth    natsClientFlags
	)
	cmd := &cobra.Command{
		Use:   "server --nats URL",
		Short: "Run the scheduler, web UI and API against an existing NATS cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if natsURL == "" {
				return usageError("--nats is required")
			}
			if err := f.checkHA(); err != nil {
				return err
			}
			if f.replicas < 0 || f.replicas > 5 {
				return usageError("--nats-replicas %d: want 1 to 5, or 0 to take one on a single NATS server and three on a cluster", f.replicas)
			}
			opts, err := auth.options()
			if err != nil {
				return err
			}
			logger, err := workerLogger(f.logLevel)
			if err != nil {
				return err
			}
			ctx, stop := gracefulContext()
			defer stop()
			return serve(ctx, logger, f, func() (natsServer, error) {
				return natsServer{access: natsAccess{url: natsURL, scheduler: opts}, stop: func() {}}, nil
			}, 0, 0)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&natsURL, "nats", os.Getenv("KILN_NATS"), "NATS URL, or several separated by commas: the servers of a cluster (default $KILN_NATS)")
	cmd.Flags().IntVar(&f.replicas, "nats-replicas", 0, "NATS servers that keep each message of Kiln's streams and buckets (0: 1 on a single server, 3 on a cluster)")
	cmd.Flags().BoolVar(&f.ha, "ha", false, "cluster mode: several servers share the NATS cluster, one leads and the others stand by to take over (docs/operations.md#cluster-mode)")
	cmd.Flags().StringVar(&f.name, "name", "", "with --ha: this server's name among the cluster's servers (default: the host name)")
	cmd.Flags().StringVar(&f.advertise, "advertise", "", "with --ha: the URL at which the other servers reach this one's API, such as http://kiln-1:8080 (default: http://HOST:PORT of --addr, the host name for an unspecified host)")
	cmd.Flags().DurationVar(&f.leaseTTL, "lease-ttl", cluster.DefaultLeaseTTL, "with --ha: how long a leader that stopped renewing its lease keeps it; a standby takes over about this long after the leader dies")
	auth.register(cmd.Flags())
	return cmd
}

// natsAccess is how serve's clients reach NATS: its URL, and the options
// of the scheduler's connection and of the in-process workers'.
type natsAccess struct {
	url       string
	scheduler []nats.Option
	workers   []nats.Option
}

// natsServer is the NATS server a process uses: its embedded one, or an
// external one.
type natsServer struct {
	access   natsAccess
	stop     func()
	diskFull <-chan error // the embedded server's store found its disk full; nil for an external one
}

// serve runs the scheduler, the API and nWorkers in-process workers until
// ctx ends or one of them cannot go on (processParts.run). startNATS
// starts the embedded NATS server, if any, once the flags and the store
// have been checked.
func serve(ctx context.Context, logger *slog.Logger, f processFlags, startNATS func() (natsServer, error), nWorkers, slots int) error {
	loopback, err := isLoopbackAddr("--addr", f.addr)
	if err != nil {
		return err
	}
	maxBytes, retention, err := f.artifactStore()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.data, 0o755); err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	dagsDir, err := f.dags.folder()
	if err != nil {
		return err
	}
	reg, err := discoverPlugins(ctx, f.flags, f.plugins, logger, nWorkers > 0)
	if err != nil {
		return err
	}
	logPluginProblems(logger, reg)
	env := serverEnv{f: f, logger: logger, dagsDir: dagsDir, reg: reg, maxBytes: maxBytes, retention: retention}
	if f.ha {
		return serveHA(ctx, env, startNATS)
	}
	st, err := openStore(f.data, "stop it first, or give this one another --data")
	if err != nil {
		return err
	}
	defer st.Close()
	logStoreCheck(logger, st.OpenCheck())
	if err := checkAddr(f.addr, f.data, st); err != nil {
		return err
	}
	ns, err := startNATS()
	if err != nil {
		return err
	}
	defer ns.stop()
	nc, err := connectNATS(ns.access.url, "kiln-server", ns.access.scheduler...)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer nc.Close()
	if !loopback {
		warnPlainHTTP(logger, f.addr)
	}
	metrics := newMetrics()
	sched, err := env.scheduler(st, nc, metrics)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("listening on %s: %v", f.addr, err)}
	}
	api := ui.New(sched, ui.Options{Logger: logger, Plugins: apiPlugins{reg}, Metrics: metrics})

	parts := &processParts{sched: sched, api: api, ln: ln, diskFull: ns.diskFull}
	if nWorkers > 0 {
		parts.plugins = pluginHost(reg, logger)
		defer parts.plugins.Close()
	}
	for i := range nWorkers {
		w, err := worker.New(worker.Config{
			NATSURL:      ns.access.url,
			NATSOptions:  ns.access.workers,
			Name:         wire.WorkerNameFrom(fmt.Sprintf("%s-%d-w%d", hostname(), os.Getpid(), i)),
			Slots:        slots,
			Runner:       parts.plugins,
			DataDir:      filepath.Join(f.data, "work"),
			KeepWorkdirs: f.keepWorkdirs,
			Logger:       logger,
		})
		if err != nil {
			return &exitError{code: 1, msg: err.Error()}
		}
		parts.workers = append(parts.workers, w)
	}
	logger.Info("kiln is up", "api", "http://"+ln.Addr().String(), "dags", dagsDir, "data", f.data, "workers", nWorkers)
	return parts.run(ctx, logger, f.data)
}

// serverEnv is what serve has read from its flags before it builds the
// scheduler.
type serverEnv struct {
	f         processFlags
	logger    *slog.Logger
	dagsDir   string
	reg       *registry.Registry
	maxBytes  int64
	retention time.Duration
}

// scheduler builds the scheduler of a server over st and nc.
func (e serverEnv) scheduler(st *store.Store, nc *nats.Conn, metrics *prometheus.Registry) (*scheduler.Scheduler, error) {
	return scheduler.New(scheduler.Config{
		Metrics:           metrics,
		Store:             st,
		NATS:              nc,
		Folder:            dag.NewFolder(loadOptions(e.reg), e.dagsDir),
		DataDir:           e.f.data,
		Logger:            e.logger,
		HeartbeatTimeout:  e.f.heartbeatTimeout,
		Secrets:           secrets.Source{Dir: e.f.secrets},
		ArtifactsMaxBytes: e.maxBytes,
		ArtifactRetention: e.retention,
		Replicas:          e.f.replicas,
		MirrorLogs:        e.f.ha,
	})
}

// newMetrics returns the registry /metrics serves, with the process's
// and the build's metrics in it.
func newMetrics() *prometheus.Registry {
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoGauge())
	return metrics
}

func warnPlainHTTP(logger *slog.Logger, addr string) {
	logger.Warn("serving the API beyond this machine over plain HTTP: put a TLS-terminating proxy in front, so that tokens and passwords do not cross the network in clear", "addr", addr)
}

// logStoreCheck logs the check the store ran when it opened; a partial
// one is a warning, with what to do for a full one.
func logStoreCheck(logger *slog.Logger, r store.CheckReport) {
	args := []any{"file", r.Path, "bytes", r.Size, "keys", r.Keys, "values", r.Values, "took", r.Elapsed.Round(time.Millisecond)}
	if r.Partial {
		logger.Warn("store checked in part: its time budget ran out; stop kiln and run kiln db check for a full check", args...)
		return
	}
	logger.Info("store checked", args...)
}

// authChecker tells whether users or tokens exist (*store.Store).
type authChecker interface {
	AuthConfigured() (bool, error)
}

// checkAddr refuses to serve the API beyond this machine without
// authentication (docs/operations.md#authentication): a non-loopback --addr needs a user or token in
// the store of data first.
func checkAddr(addr, data string, st authChecker) error {
	loopback, err := isLoopbackAddr("--addr", addr)
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

// isLoopbackAddr reports whether addr (HOST:PORT), the value of flag,
// listens on loopback only. An empty host listens on every interface; a
// host name is looked up, and counts as loopback when every address it
// has is.
func isLoopbackAddr(flag, addr string) (bool, error) {
	return loopbackAddr(flag, addr, net.DefaultResolver.LookupIPAddr)
}

// hostLookup finds the addresses of a host name.
type hostLookup func(ctx context.Context, host string) ([]net.IPAddr, error)

func loopbackAddr(flag, addr string, lookup hostLookup) (bool, error) {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, usageError("%s %q: %v", flag, addr, err)
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

// connectNATS connects the scheduler, its replies under its own inbox
// prefix (docs/operations.md#security), with the options given.
func connectNATS(url, name string, opts ...nats.Option) (*nats.Conn, error) {
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.CustomInboxPrefix(wire.SchedulerInbox),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
	}, opts...)...)
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
