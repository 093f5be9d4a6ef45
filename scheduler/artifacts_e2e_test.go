package scheduler_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// handoffDAG writes a file and a folder on queue qa and reads them on
// queue qb; between the two a file sensor waits for the test's go-ahead,
// a file named after the run. skip_blob leaves the file out.
const handoffDAG = `
params:
  skip_blob: {type: boolean, default: false}
tasks:
  - id: produce
    plugin: shell
    queue: qa
    with:
      command: |
        if [ "{{ .params.skip_blob }}" = false ]; then head -c 300000 /dev/urandom > blob.bin; fi
        mkdir -p out/sub && echo nested > out/sub/x.txt
    artifacts: {blob: blob.bin, tree: out}
  - id: gate
    plugin: file_sensor
    queue: qa
    depends_on: [produce]
    with: {path: "GATES/{{ .run_id }}"}
    poke_interval: 100ms
  - id: consume
    plugin: shell
    queue: qb
    depends_on: [gate]
    inputs: {blob: produce.blob, tree: produce.tree}
    with:
      command: |
        echo "sum=$(sha256sum "$KILN_INPUT_BLOB" | cut -c1-64)" >> "$KILN_OUTPUT"
        echo "path=$KILN_INPUT_BLOB" >> "$KILN_OUTPUT"
        echo "nested=$(cat "$KILN_INPUT_TREE/sub/x.txt")" >> "$KILN_OUTPUT"
`

// TestE2EArtifactsAcrossWorkers runs the producer and the consumer on two
// `kiln worker` processes with data folders of their own, nothing shared
// but NATS: the consumer reads what the producer stored, checked against
// its SHA-256; an object altered in the store fails the consumer with a
// clear error, and a declared artifact the task did not write fails the
// producer.
func TestE2EArtifactsAcrossWorkers(t *testing.T) {
	gates := t.TempDir()
	e := start(t, map[string]string{"handoff": strings.ReplaceAll(handoffDAG, "GATES", gates)}, options{})
	dirA, dirB := t.TempDir(), t.TempDir()
	startProcess(t, dirA, "worker", "--nats", e.ns.ClientURL(), "--name", "wA", "--queue", "qa", "--data", dirA)
	startProcess(t, dirB, "worker", "--nats", e.ns.ClientURL(), "--name", "wB", "--queue", "qb", "--data", dirB)
	trigger := func(params map[string]any) *store.Run {
		t.Helper()
		ld := time.Now().UTC().Truncate(time.Microsecond)
		r, err := e.s.Trigger(context.Background(), "handoff", scheduler.TriggerRequest{LogicalDate: &ld, Params: params})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	open := func(r *store.Run) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(gates, r.RunID), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ti := func(r *store.Run, task string) *store.TaskInstance {
		t.Helper()
		got, err := e.st.GetTaskInstance("handoff", r.RunID, task)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	// The file and the folder go from wA to wB.
	r := trigger(nil)
	open(r)
	if r = e.waitRun(r, 60*time.Second); r.State != store.RunSuccess {
		t.Fatalf("run %s: %v\nconsume: %s", r.State, e.taskStates(r), e.log(r, "consume", 1))
	}
	produce, consume := ti(r, "produce"), ti(r, "consume")
	if produce.Worker != "wA" || consume.Worker != "wB" {
		t.Fatalf("produce ran on %q and consume on %q, want wA and wB", produce.Worker, consume.Worker)
	}
	var blob store.Artifact
	for _, a := range produce.Artifacts {
		if a.Name == "blob" {
			blob = a
		}
	}
	if blob.Size != 300000 || consume.Outputs["sum"] != blob.SHA256 {
		t.Errorf("blob stored as %+v; the consumer read SHA-256 %v", blob, consume.Outputs["sum"])
	}
	if path, _ := consume.Outputs["path"].(string); !strings.HasPrefix(path, dirB+string(filepath.Separator)) {
		t.Errorf("the consumer read the blob at %q, want it in wB's data folder %s", path, dirB)
	}
	if consume.Outputs["nested"] != "nested" {
		t.Errorf("the folder's file read %v, want nested", consume.Outputs["nested"])
	}

	// The blob is altered in the store between the two tasks.
	r = trigger(nil)
	e.waitFor("the producer to succeed", 30*time.Second, func() bool {
		got, err := e.st.GetTaskInstance("handoff", r.RunID, "produce")
		return err == nil && got.State == store.TaskSuccess
	})
	for _, a := range ti(r, "produce").Artifacts {
		if a.Name == "blob" {
			blob = a
		}
	}
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	obs, err := js.ObjectStore(context.Background(), wire.ArtifactsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obs.PutBytes(context.Background(), blob.SHA256, make([]byte, blob.Size)); err != nil {
		t.Fatal(err)
	}
	open(r)
	if r = e.waitRun(r, 60*time.Second); r.State != store.RunFailed {
		t.Fatalf("run with an altered object %s, want failed: %v", r.State, e.taskStates(r))
	}
	c := ti(r, "consume")
	if c.State != store.TaskFailed || !strings.Contains(c.Error, "input blob (produce.blob)") || !strings.Contains(c.Error, "SHA-256") || !strings.Contains(c.Error, "altered") {
		t.Errorf("consume %s with %q, want failed naming the input and the altered hash", c.State, c.Error)
	}
	if strings.Contains(e.log(r, "consume", 1), "kiln: running:") {
		t.Errorf("consume's command ran on an altered input:\n%s", e.log(r, "consume", 1))
	}

	// A declared artifact the task did not write.
	r = trigger(map[string]any{"skip_blob": true})
	open(r)
	if r = e.waitRun(r, 60*time.Second); r.State != store.RunFailed {
		t.Fatalf("run without the blob %s, want failed", r.State)
	}
	if p := ti(r, "produce"); p.State != store.TaskFailed || !strings.Contains(p.Error, "artifact blob: blob.bin was not written") {
		t.Errorf("produce %s with %q, want failed naming the missing artifact", p.State, p.Error)
	}
}
