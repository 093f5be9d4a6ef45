package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/plugins/shell"
)

// TestWorkerInfo: a worker that starts before the scheduler has made the
// workers bucket writes its entry once the bucket is there: its queues,
// and the build of each plugin it runs, the executable's SHA-256 among
// them. It deletes the entry as it stops.
func TestWorkerInfo(t *testing.T) {
	h := newHarness(t)
	rw := h.start(Config{Runner: shellHost(t), Name: "info-w", Queues: []string{"b", "a"}})
	h.ensureBuckets(-1)
	kv, err := h.js.KeyValue(h.ctx, wire.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	var e jetstream.KeyValueEntry
	deadline := time.Now().Add(10 * time.Second)
	for e, err = kv.Get(h.ctx, "info-w"); err != nil; e, err = kv.Get(h.ctx, "info-w") {
		if !errors.Is(err, jetstream.ErrKeyNotFound) || time.Now().After(deadline) {
			t.Fatalf("the worker's entry: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var got wire.WorkerInfo
	if err := json.Unmarshal(e.Value(), &got); err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(kilnBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(exe)
	host, _ := os.Hostname()
	want := wire.WorkerInfo{
		Name: "info-w", Host: host, KilnVersion: buildinfo.Get().Version, Queues: []string{"a", "b"},
		Plugins: map[string]wire.PluginBuild{shell.Name: {Version: shell.Version, SHA256: hex.EncodeToString(sum[:])}},
		PID:     os.Getpid(), Slots: DefaultSlots, Interval: wire.WorkerInfoInterval,
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(wire.WorkerInfo{}, "Time", "StartedAt")); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	if age := time.Since(got.Time); age < 0 || age > time.Minute {
		t.Errorf("entry time %v, want now", got.Time)
	}
	if got.StartedAt.IsZero() || got.StartedAt.After(got.Time) {
		t.Errorf("started at %v, written at %v: want a start before the write", got.StartedAt, got.Time)
	}

	rw.stop(t, 30*time.Second)
	if _, err := kv.Get(h.ctx, "info-w"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the entry of a stopped worker: %v, want it deleted", err)
	}
}

// TestWorkerInfoWhileDraining: the worker's entry lists the tries it runs
// soon after they start, not at the next interval; once the worker is
// stopped it says at once that it drains, and keeps saying so while its
// running try finishes; then the entry goes.
func TestWorkerInfoWhileDraining(t *testing.T) {
	h := newHarness(t)
	h.ensureBuckets(-1)
	kv, err := h.js.KeyValue(h.ctx, wire.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	updates, err := kv.Watch(h.ctx, "drainer")
	if err != nil {
		t.Fatal(err)
	}
	defer updates.Stop()
	// next returns the first entry from now on that has what the test
	// waits for; nil when the entry was deleted.
	next := func(what string, within time.Duration, ok func(*wire.WorkerInfo) bool) *wire.WorkerInfo {
		t.Helper()
		deadline := time.After(within)
		for {
			select {
			case e := <-updates.Updates():
				if e == nil {
					continue // the end of what was stored when the watch began
				}
				if e.Operation() != jetstream.KeyValuePut {
					return nil
				}
				var wi wire.WorkerInfo
				if err := json.Unmarshal(e.Value(), &wi); err != nil {
					t.Fatal(err)
				}
				if ok(&wi) {
					return &wi
				}
			case <-deadline:
				t.Fatalf("no entry within %v where %s", within, what)
			}
		}
	}

	release := make(chan struct{})
	fr := &fakeRunner{hook: func(string, host.Request, io.Writer) { <-release }}
	rw := h.start(Config{Runner: fr, Name: "drainer", Slots: 3})
	next("the worker is up", 10*time.Second, func(wi *wire.WorkerInfo) bool { return wi.Slots == 3 })

	k := newTry("held")
	h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
	h.wait(k, wire.EventStarted, 10*time.Second)
	// Well within the interval: the start of a try is written within
	// wire.WorkerInfoMinGap.
	wi := next("the try runs", wire.WorkerInfoInterval-time.Second, func(wi *wire.WorkerInfo) bool { return wi.SlotsUsed == 1 })
	if diff := cmp.Diff([]wire.TryKey{k}, wi.Running); diff != "" || wi.Draining {
		t.Errorf("running (-want +got):\n%s\ndraining %v, want false", diff, wi.Draining)
	}

	rw.cancel()
	wi = next("the worker drains", 2*time.Second, func(wi *wire.WorkerInfo) bool { return wi.Draining })
	if wi.SlotsUsed != 1 {
		t.Errorf("draining with %d slots used, want the held try's", wi.SlotsUsed)
	}
	select {
	case err := <-rw.done:
		t.Fatalf("Run returned (%v) while a try runs", err)
	default:
	}
	close(release)
	if fin := h.wait(k, wire.EventFinished, 10*time.Second); !fin.Success {
		t.Errorf("the held try ended with %q", fin.Error)
	}
	if wi := next("the entry is deleted", 10*time.Second, func(wi *wire.WorkerInfo) bool { return !wi.Draining }); wi != nil {
		t.Errorf("an entry that does not drain after the stop: %+v", wi)
	}
	rw.stop(t, 10*time.Second)
}
