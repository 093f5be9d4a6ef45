package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// The scheduler keeps two views of NATS buckets, each filled by a watcher
// goroutine so that the loop consults them without a network call: the
// artifacts in the object store (a cache hit needs every artifact of the
// cached result still stored) and the workers' entries (a cache key covers
// the plugin build the task's workers would run; workers.go).

// storedArtifacts is the set of objects in wire.ArtifactsBucket.
type storedArtifacts struct {
	mu    sync.RWMutex
	ready bool // the watcher has delivered what was stored when it started
	size  map[string]int64
}

// has reports whether the object named sha is stored with the given size.
// Before the watcher's first pass it says no: a cache hit then waits.
func (a *storedArtifacts) has(sha string, size int64) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	n, ok := a.size[sha]
	return a.ready && ok && n == size
}

func (a *storedArtifacts) apply(info *jetstream.ObjectInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if info == nil {
		a.ready = true
		return
	}
	if info.Deleted {
		delete(a.size, info.Name)
		return
	}
	a.size[info.Name] = int64(info.Size)
}

// watcher is a JetStream watcher of a bucket: an object store's or a
// key-value bucket's.
type watcher[T any] interface {
	Updates() <-chan T
	Stop() error
}

// follow applies what w delivers until ctx ends. A watcher that stops on
// its own is started again with start, every second until that works.
func follow[T any](ctx context.Context, log *slog.Logger, what string, w watcher[T], start func() (watcher[T], error), apply func(T)) {
	for {
		for u := range w.Updates() {
			apply(u)
		}
		_ = w.Stop()
		for {
			if ctx.Err() != nil {
				return
			}
			var err error
			if w, err = start(); err == nil {
				break
			}
			log.Warn("watching "+what, "err", err)
			if !sleepCtx(ctx, time.Second) {
				return
			}
		}
	}
}

// openBuckets ensures the artifacts and workers buckets and starts
// watching them.
func (s *Scheduler) openBuckets(ctx context.Context, wg *sync.WaitGroup) error {
	maxBytes := s.cfg.ArtifactsMaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	if err := wire.EnsureBuckets(ctx, s.js, maxBytes, s.replicas()); err != nil {
		return err
	}
	obs, err := s.js.ObjectStore(ctx, wire.ArtifactsBucket)
	if err != nil {
		return fmt.Errorf("opening the artifact store: %w", err)
	}
	kv, err := s.js.KeyValue(ctx, wire.WorkersBucket)
	if err != nil {
		return fmt.Errorf("opening the workers bucket: %w", err)
	}
	// Both watchers start here, before the scheduler says it is up.
	watchObjects := func() (watcher[*jetstream.ObjectInfo], error) { return obs.Watch(ctx) }
	watchWorkers := func() (watcher[jetstream.KeyValueEntry], error) { return kv.WatchAll(ctx) }
	ow, err := watchObjects()
	if err != nil {
		return fmt.Errorf("watching the artifact store: %w", err)
	}
	kw, err := watchWorkers()
	if err != nil {
		_ = ow.Stop()
		return fmt.Errorf("watching the workers bucket: %w", err)
	}
	s.objects.Store(obs)
	wg.Go(func() { follow(ctx, s.log, "the artifact store", ow, watchObjects, s.stored.apply) })
	wg.Go(func() {
		follow(ctx, s.log, "the workers bucket", kw, watchWorkers, func(e jetstream.KeyValueEntry) {
			if e != nil {
				s.registry.apply(e)
			}
		})
	})
	return nil
}

// sleepCtx waits d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ErrNoArtifactStore is returned by artifact operations of a scheduler
// that has not opened the artifact store yet.
var ErrNoArtifactStore = errors.New("the artifact store is not open yet")

// artifactStore returns the artifact store, or ErrNoArtifactStore before
// Run opened it.
func (s *Scheduler) artifactStore() (jetstream.ObjectStore, error) {
	obs, ok := s.objects.Load().(jetstream.ObjectStore)
	if !ok {
		return nil, ErrNoArtifactStore
	}
	return obs, nil
}
