package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/wire"
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
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(wire.WorkerInfo{}, "Time")); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	if age := time.Since(got.Time); age < 0 || age > time.Minute {
		t.Errorf("entry time %v, want now", got.Time)
	}

	rw.stop(t, 30*time.Second)
	if _, err := kv.Get(h.ctx, "info-w"); !errors.Is(err, jetstream.ErrKeyNotFound) {
		t.Errorf("the entry of a stopped worker: %v, want it deleted", err)
	}
}
