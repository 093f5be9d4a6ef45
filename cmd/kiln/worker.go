package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/plugins/docker"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/registry"
	"github.com/kilnhq/kiln/worker"
)

func newWorkerCmd() *cobra.Command {
	var (
		natsURL       string
		queues        []string
		slots         int
		name          string
		data          string
		logLevel      string
		pluginsDir    string
		keepWork      bool
		requireDigest bool
		auth          natsClientFlags
	)
	cmd := &cobra.Command{
		Use:   "worker --nats URL [--queue NAME]... [--slots N]",
		Short: "Run a worker: pull tasks from NATS and run them through stage plugins",
		Long: `Run a worker: pull tasks of the given queues from NATS JetStream, at most
--slots at a time, and run them through stage plugins. Start any number of
workers on any number of hosts. SIGINT or SIGTERM stops pulling and lets
running tasks finish; a second signal exits at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if natsURL == "" {
				return usageError("--nats is required (or set $KILN_NATS)")
			}
			if slots < 1 {
				return usageError("--slots must be at least 1")
			}
			for _, q := range queues {
				if err := wire.CheckQueue(q); err != nil {
					return usageError("--queue: %v", err)
				}
			}
			if name != "" {
				if err := wire.CheckWorker(name); err != nil {
					return usageError("--name: %v", err)
				}
			}
			opts, err := auth.options()
			if err != nil {
				return err
			}
			logger, err := workerLogger(logLevel)
			if err != nil {
				return err
			}
			reg, err := discoverPlugins(cmd.Context(), cmd.Flags(), pluginsDir, logger, true)
			if err != nil {
				return err
			}
			logPluginProblems(logger, reg)
			plugins := pluginHost(reg, logger)
			defer plugins.Close()
			w, err := worker.New(worker.Config{
				NATSURL:      natsURL,
				NATSOptions:  opts,
				Name:         name,
				Queues:       queues,
				Slots:        slots,
				Runner:       plugins,
				DataDir:      data,
				KeepWorkdirs: keepWork,
				Logger:       logger,
			})
			if err != nil {
				return usageError("%v", err)
			}
			if requireDigest {
				os.Setenv(docker.RequireDigestEnv, "1") // for the plugin processes
			}
			ctx, stop := gracefulContext()
			defer stop()
			sweepContainers(ctx, []string{w.Name()}, logger)
			if err := w.Run(ctx); err != nil {
				return &exitError{code: 1, msg: err.Error()}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&natsURL, "nats", os.Getenv("KILN_NATS"), "NATS URL, or several separated by commas: the servers of a cluster (default $KILN_NATS)")
	f.StringArrayVar(&queues, "queue", nil, fmt.Sprintf("queue to pull tasks from; repeat for several (default %q)", worker.DefaultQueue))
	f.IntVar(&slots, "slots", worker.DefaultSlots, "tasks run at once")
	f.StringVar(&name, "name", "", "worker name in events and logs, of A-Z a-z 0-9 _ - (default HOST-PID)")
	f.StringVar(&data, "data", "", "folder for the tries' working directories and $KILN_OUTPUT files (default the system's temp folder)")
	f.BoolVar(&keepWork, "keep-workdirs", false, "keep each try's working directory once the try has ended, instead of removing it")
	f.BoolVar(&requireDigest, "require-image-digest", false, "docker tasks must give their image by digest (NAME@sha256:…) or ID, not by tag")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	addPluginsFlag(cmd, &pluginsDir)
	auth.register(f)
	return cmd
}

// pluginHost runs the plugins reg found: built-in ones as `kiln plugin
// NAME` subprocesses of this very binary, external ones from their
// executables. It lists their builds for the workers' entries.
func pluginHost(reg *registry.Registry, logger *slog.Logger) *host.Host {
	return host.New(host.Config{Command: reg.Command, List: reg.Executables, StopGraces: plugins.StopGraces(), Logger: logger})
}

func workerLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// gracefulContext ends on SIGINT or SIGTERM; a second signal exits at once.
func gracefulContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(os.Stderr, "kiln: stopping: letting running tasks finish (signal again to exit now)")
		cancel()
		<-ch
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}
