package worker

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
)

// PluginLister is a Runner that can say which plugins it runs, and their
// builds: *host.Host is one. A worker whose Runner is one lists them in
// its entry of wire.WorkersBucket, where the scheduler finds the plugin
// build a task would run with, a part of the task's cache key.
type PluginLister interface {
	Builds() map[string]host.Build
}

// infoRetry is the first wait before writing the worker's entry again
// after a failure; it doubles up to wire.WorkerInfoInterval.
const infoRetry = time.Second

// info is the worker's entry in wire.WorkersBucket.
func (w *Worker) info() wire.WorkerInfo {
	w.mu.Lock()
	running := slices.Collect(maps.Keys(w.running))
	w.mu.Unlock()
	slices.SortFunc(running, func(a, b wire.TryKey) int {
		return cmp.Or(strings.Compare(a.DAGID, b.DAGID), strings.Compare(a.RunID, b.RunID),
			strings.Compare(a.TaskID, b.TaskID), cmp.Compare(a.Try, b.Try))
	})
	wi := wire.WorkerInfo{
		Name:        w.cfg.Name,
		Host:        w.host,
		KilnVersion: buildinfo.Get().Version,
		Queues:      w.cfg.Queues,
		Plugins:     map[string]wire.PluginBuild{},
		Time:        time.Now().UTC(),
		PID:         os.Getpid(),
		StartedAt:   w.startedAt,
		Slots:       w.cfg.Slots,
		SlotsUsed:   len(running),
		Running:     running,
		Draining:    w.stopping.Load(),
		Interval:    wire.WorkerInfoInterval,
	}
	if l, ok := w.cfg.Runner.(PluginLister); ok {
		for name, b := range l.Builds() {
			wi.Plugins[name] = wire.PluginBuild{Version: b.Version, SHA256: b.SHA256}
		}
	}
	return wi
}

// noteRunning tells the announcer that the tries the worker runs changed.
func (w *Worker) noteRunning() {
	select {
	case w.runningChanged <- struct{}{}:
	default:
	}
}

// announce writes the worker's entry in wire.WorkersBucket now and then
// every wire.WorkerInfoInterval until ctx ends; at once when draining is
// closed, so that the scheduler stops counting on the worker; and soon
// after the tries it runs change, at most every wire.WorkerInfoMinGap. The
// scheduler makes the bucket: until it is there, the worker tries again,
// sooner.
func (w *Worker) announce(ctx context.Context, draining <-chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	due := time.Now() // when timer fires
	var last time.Time
	retry := infoRetry
	for {
		select {
		case <-ctx.Done():
			return
		case <-draining:
			draining = nil
		case <-w.runningChanged:
			if at := last.Add(wire.WorkerInfoMinGap); time.Now().Before(at) {
				if at.Before(due) {
					due = at
					timer.Reset(time.Until(at))
				}
				continue
			}
		case <-timer.C:
		}
		err := w.putInfo(ctx)
		last = time.Now()
		wait := wire.WorkerInfoInterval
		switch {
		case err == nil:
			retry = infoRetry
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrBucketNotFound):
			w.log.Debug("waiting for the scheduler to make the workers bucket "+wire.WorkersBucket, "in", retry)
		default:
			w.log.Warn("could not write this worker's entry in "+wire.WorkersBucket+"; retrying", "error", err, "in", retry)
		}
		if err != nil {
			wait, retry = retry, min(2*retry, wire.WorkerInfoInterval)
		}
		due = last.Add(wait)
		timer.Reset(wait)
	}
}

func (w *Worker) putInfo(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	kv, err := w.workersBucket(ctx)
	if err != nil {
		return err
	}
	data, err := json.Marshal(w.info())
	if err != nil {
		return err
	}
	_, err = kv.Put(ctx, w.cfg.Name, data)
	return err
}

// withdraw deletes the worker's entry once it has stopped. If that fails
// the entry shows the worker lost after wire.WorkerLostAfter, and goes
// after wire.WorkerForgetAfter.
func (w *Worker) withdraw() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	kv, err := w.workersBucket(ctx)
	if err == nil {
		err = kv.Delete(ctx, w.cfg.Name)
	}
	if err != nil {
		w.log.Debug("could not delete this worker's entry in "+wire.WorkersBucket, "error", err)
	}
}

// workersBucket returns wire.WorkersBucket, looked up once.
func (w *Worker) workersBucket(ctx context.Context) (jetstream.KeyValue, error) {
	w.kvMu.Lock()
	defer w.kvMu.Unlock()
	if w.kv != nil {
		return w.kv, nil
	}
	kv, err := w.js.KeyValue(ctx, wire.WorkersBucket)
	if err != nil {
		return nil, err
	}
	w.kv = kv
	return kv, nil
}
