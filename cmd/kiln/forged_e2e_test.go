package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/wire"
)

// TestForgedEventIgnored runs a real `kiln server` and a real `kiln
// worker` (worker-a) against NATS configured with deploy/nats/auth.conf,
// the documented cluster config. While worker-a runs a task, worker-b, a
// worker identity of its own, may not subscribe to assignments, publish
// under worker-a's name or delete a stream; the finished event it can
// publish under its own name, claiming worker-a's try succeeded with
// forged outputs, is acked by the scheduler and changes nothing. Then
// worker-a finishes the task and the run succeeds with its outputs.
func TestForgedEventIgnored(t *testing.T) {
	dir := t.TempDir()
	seeds := map[string]string{}
	for id, env := range map[string]string{"scheduler": "KILN_SCHEDULER_NKEY", "worker-a": "KILN_WORKER_A_NKEY", "worker-b": "KILN_WORKER_B_NKEY"} {
		seeds[id] = filepath.Join(dir, id+".nk")
		t.Setenv(env, writeUserSeed(t, seeds[id]))
	}
	opts, err := server.ProcessConfigFile(filepath.Join("..", "..", "deploy", "nats", "auth.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ns, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0", Nkeys: opts.Nkeys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)

	release := filepath.Join(dir, "release")
	dags := filepath.Join(dir, "dags")
	writeFiles(t, dags, map[string]string{"guarded.yaml": fmt.Sprintf(`
id: guarded
tasks:
  - id: wait
    plugin: shell
    with: {command: 'while [ ! -e %s ]; do sleep 0.05; done; echo result=real >> "$KILN_OUTPUT"'}
`, release)})
	addr := freeAddr(t)
	startKiln(t, "server", "--nats", ns.ClientURL(), "--nats-nkey", seeds["scheduler"],
		"--dags", dags, "--data", filepath.Join(dir, "data"), "--addr", addr)
	startKiln(t, "worker", "--nats", ns.ClientURL(), "--nats-nkey", seeds["worker-a"], "--name", "worker-a",
		"--data", filepath.Join(dir, "work"))
	waitHTTP(t, "http://"+addr+"/healthz")
	runs := "http://" + addr + "/api/v1/dags/guarded/runs"
	runID := triggerAt(t, runs)
	waitFor(t, "the task to run on worker-a", func() bool {
		ti := taskInstance(t, runs+"/"+runID+"/tasks", "wait")
		return ti.State == "running" && ti.Worker == "worker-a"
	})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, errs := connectAs(t, ns.ClientURL(), seeds["worker-b"], wire.WorkerInbox("worker-b"))
	k := wire.TryKey{DAGID: "guarded", RunID: runID, TaskID: "wait", Try: 1}
	forged, _ := json.Marshal(wire.Event{TryKey: k, Kind: wire.EventFinished, Time: time.Now().UTC(),
		Success: true, Outputs: map[string]any{"result": "forged"}})
	for _, tc := range []struct {
		what string
		op   func() error
	}{
		{"subscribing to assignments", func() error { _, err := b.SubscribeSync(wire.TasksSubjects); return err }},
		{"publishing under worker-a's name", func() error {
			return b.Publish(wire.EventSubject("worker-a", wire.EventFinished, "guarded"), forged)
		}},
		{"deleting the tasks stream", func() error { return b.Publish("$JS.API.STREAM.DELETE."+wire.TasksStream, nil) }},
	} {
		if err := tc.op(); err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		if err := b.Flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errs:
			if !errors.Is(err, nats.ErrPermissionViolation) {
				t.Errorf("%s: %v, want a permissions violation", tc.what, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: allowed, want refused", tc.what)
		}
	}

	// Under its own name worker-b may publish: JetStream stores the
	// forged event, and the scheduler must ignore it.
	bjs, err := jetstream.New(b)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := bjs.Publish(ctx, wire.EventSubject("worker-b", wire.EventFinished, "guarded"), forged)
	if err != nil {
		t.Fatalf("worker-b publishing under its own name: %v", err)
	}
	// Barrier: the scheduler acks an event only after committing its
	// effect, so once its consumer's ack floor reaches the forged event,
	// the scheduler has applied it.
	sched, _ := connectAs(t, ns.ClientURL(), seeds["scheduler"], wire.SchedulerInbox)
	sjs, err := jetstream.New(sched)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := sjs.Consumer(ctx, wire.EventsStream, wire.EventConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the scheduler to ack the forged event", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.AckFloor.Stream >= ack.Sequence
	})
	if state := runStateAt(t, runs+"/"+runID); state != "running" {
		t.Errorf("after the forged finished event the run is %s, want running", state)
	}
	if ti := taskInstance(t, runs+"/"+runID+"/tasks", "wait"); ti.State != "running" || ti.Worker != "worker-a" || len(ti.Outputs) != 0 {
		t.Errorf("after the forged finished event the task is %s on %q with outputs %v, want running on worker-a without outputs", ti.State, ti.Worker, ti.Outputs)
	}

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the run to succeed", func() bool { return runStateAt(t, runs+"/"+runID) == "success" })
	if ti := taskInstance(t, runs+"/"+runID+"/tasks", "wait"); ti.Worker != "worker-a" || ti.Outputs["result"] != "real" {
		t.Errorf("the task ended on %q with outputs %v, want worker-a's result=real", ti.Worker, ti.Outputs)
	}
}

// writeUserSeed writes a new NKey user seed to path and returns its
// public key.
func writeUserSeed(t *testing.T, path string) string {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	return pub
}

// connectAs connects with the NKey seed in path and the inbox prefix of
// its identity, and returns the errors the server sends.
func connectAs(t *testing.T, url, seed, inbox string) (*nats.Conn, <-chan error) {
	t.Helper()
	nkey, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, nkey, nats.CustomInboxPrefix(inbox),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connecting with %s: %v", seed, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// apiTask is a task instance as the API shows it.
type apiTask struct {
	TaskID  string         `json:"task_id"`
	State   string         `json:"state"`
	Worker  string         `json:"worker"`
	Outputs map[string]any `json:"outputs"`
}

func taskInstance(t *testing.T, tasks, id string) apiTask {
	t.Helper()
	var tis []apiTask
	getJSON(t, tasks, &tis)
	for _, ti := range tis {
		if ti.TaskID == id {
			return ti
		}
	}
	t.Fatalf("no task %s in %s", id, tasks)
	return apiTask{}
}
