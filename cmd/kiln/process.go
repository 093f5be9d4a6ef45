package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/kilnhq/kiln/internal/diskfull"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/ui"
	"github.com/kilnhq/kiln/worker"
)

// processParts are what `kiln standalone` and `kiln server` run. They run
// until a signal, which stops them gracefully (running tries finish), or
// until one of them cannot go on: the scheduler (a failed commit, a full
// disk), the API, or the embedded NATS server's store (a full disk).
// Then the process stops at once by itself and says why, rather than
// wait for tries that can no longer be recorded
// (docs/operations.md#damaged-or-full-data-folder).
type processParts struct {
	sched    *scheduler.Scheduler
	api      *ui.Server
	ln       net.Listener
	workers  []*worker.Worker
	plugins  *host.Host   // the in-process workers' plugins; nil without workers
	diskFull <-chan error // the embedded NATS server's store is full; nil without one
	// alongside run with the scheduler and the API, in cluster mode (the
	// lease's keeper, the snapshots): one that fails stops the process.
	alongside []func(ctx context.Context) error
}

// Bounds of a stop after a failure.
const (
	// apiGrace is how long requests in flight may take to finish.
	apiGrace = 5 * time.Second
	// workerGrace is how long in-process workers may take to stop once
	// their tasks were killed with their plugins.
	workerGrace = 5 * time.Second
)

func (p *processParts) run(ctx context.Context, logger *slog.Logger, data string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	failed := make(chan error, 2+len(p.alongside))
	var core sync.WaitGroup // the scheduler and the API
	core.Go(func() {
		if err := p.sched.Run(ctx); err != nil {
			failed <- err
		}
	})
	core.Go(func() {
		if err := p.api.Serve(p.ln); err != nil {
			failed <- fmt.Errorf("serving the API: %w", err)
		}
	})
	for _, fn := range p.alongside {
		core.Go(func() {
			if err := fn(ctx); err != nil {
				failed <- err
			}
		})
	}
	core.Go(func() {
		<-ctx.Done()
		sctx, scancel := context.WithTimeout(context.Background(), apiGrace)
		defer scancel()
		_ = p.api.Shutdown(sctx)
	})
	var workers sync.WaitGroup
	werrs := make(chan error, len(p.workers))
	names := make([]string, len(p.workers))
	for i, w := range p.workers {
		names[i] = w.Name()
		workers.Go(func() { werrs <- w.Run(ctx) })
	}
	if len(names) > 0 {
		sweepContainers(ctx, names, logger)
	}

	var failure error
	select {
	case <-ctx.Done():
	case failure = <-failed:
	case err := <-p.diskFull:
		failure = fmt.Errorf("embedded NATS: JetStream cannot write its store: %w", err)
	}
	if failure != nil {
		// Nothing it would answer could be committed: requests in flight
		// (a standby's forwarded ones, streams) end now rather than hold
		// the stop up.
		_ = p.api.Close()
	}
	cancel()
	core.Wait()
	if failure == nil {
		workers.Wait()
		close(werrs)
		for err := range werrs {
			if err != nil && !errors.Is(err, context.Canceled) {
				return &exitError{code: 1, msg: err.Error()}
			}
		}
		return nil
	}

	logger.Error("kiln cannot go on: stopping now, without waiting for running tries", "err", failure)
	if p.plugins != nil {
		p.plugins.Close() // kills the tasks, which could not report anyway
	}
	done := make(chan struct{})
	go func() {
		workers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(workerGrace):
		logger.Warn("in-process workers did not stop in time; exiting anyway", "waited", workerGrace)
	}
	return &exitError{code: 1, msg: failureMessage(data, failure)}
}

// failureMessage says why the process stopped by itself, and for a full
// disk what to do.
func failureMessage(data string, err error) string {
	if !diskfull.Is(err) {
		return err.Error()
	}
	return fmt.Sprintf(`the disk of the data folder %s is full (ENOSPC), so kiln stopped: %v.
What was committed before is kept. Make room on that disk, or move the folder to a larger one, and start kiln again: the runs in flight go on, and tries that were running are retried. See docs/operations.md#damaged-or-full-data-folder`, data, err)
}
