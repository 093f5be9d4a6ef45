package main

import (
	"context"
	"log/slog"

	"github.com/kilnhq/kiln/plugins/docker"
)

// sweepContainers removes, in the background, the containers of docker
// tasks that dead workers left on this machine's Docker Engine
// (docs/plugins.md#docker): those of the given workers' earlier processes,
// and those of workers of this host that are gone. With no Engine there is
// nothing to sweep.
func sweepContainers(ctx context.Context, workers []string, logger *slog.Logger) {
	go func() {
		eng, err := docker.NewEngine()
		if err != nil {
			logger.Debug("not sweeping containers", "err", err)
			return
		}
		defer eng.Close()
		orphans, err := docker.SweepOrphans(ctx, eng, workers...)
		for _, o := range orphans {
			what := "removed"
			if o.Kept {
				what = "stopped"
			}
			logger.Info(what+" the container of a dead worker", "container", o.Name, "worker", o.Worker, "try", o.Try)
		}
		if err != nil {
			logger.Debug("sweeping containers", "err", err)
		}
	}()
}
