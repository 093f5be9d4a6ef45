package worker

import (
	"context"
	"encoding/json"
	"errors"
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
	wi := wire.WorkerInfo{
		Name:        w.cfg.Name,
		Host:        w.host,
		KilnVersion: buildinfo.Get().Version,
		Queues:      w.cfg.Queues,
		Plugins:     map[string]wire.PluginBuild{},
		Time:        time.Now().UTC(),
	}
	if l, ok := w.cfg.Runner.(PluginLister); ok {
		for name, b := range l.Builds() {
			wi.Plugins[name] = wire.PluginBuild{Version: b.Version, SHA256: b.SHA256}
		}
	}
	return wi
}

// announce writes the worker's entry in wire.WorkersBucket now and every
// wire.WorkerInfoInterval until ctx ends. The scheduler makes the bucket:
// until it is there, the worker tries again, sooner.
func (w *Worker) announce(ctx context.Context) {
	wait := infoRetry
	for {
		err := w.putInfo(ctx)
		switch {
		case err == nil:
			wait = wire.WorkerInfoInterval
		case ctx.Err() != nil:
			return
		case errors.Is(err, jetstream.ErrBucketNotFound):
			w.log.Debug("waiting for the scheduler to make the workers bucket "+wire.WorkersBucket, "in", wait)
		default:
			w.log.Warn("could not write this worker's entry in "+wire.WorkersBucket+"; retrying", "error", err, "in", wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if err != nil {
			wait = min(2*wait, wire.WorkerInfoInterval)
		}
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

// withdraw deletes the worker's entry, as it stops. If that fails the
// entry ages out after wire.WorkerInfoTTL.
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
