package natsauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/natsauth"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/host"
	"github.com/kilnhq/kiln/worker"
)

// TestDocumentedConfig: deploy/nats/auth.conf, the configuration that
// docs/operations.md#an-external-nats-cluster shows, gives the scheduler
// and each worker exactly the permissions natsauth defines; on a real
// server they let a real worker run a try, and refuse a worker what its
// role may not do.
func TestDocumentedConfig(t *testing.T) {
	conf := filepath.Join("..", "..", "deploy", "nats", "auth.conf")
	data, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	if got := confBlock(t, string(doc), "### An external NATS cluster"); got != string(data) {
		t.Errorf("the conf block of docs/operations.md#an-external-nats-cluster differs from %s:\n%s", conf, cmp.Diff(string(data), got))
	}

	dir := t.TempDir()
	seeds := map[string]string{} // identity → seed file
	want := map[string]*server.Permissions{}
	for id, env := range map[string]string{"scheduler": "KILN_SCHEDULER_NKEY", "worker-a": "KILN_WORKER_A_NKEY", "worker-b": "KILN_WORKER_B_NKEY"} {
		pub := writeSeed(t, filepath.Join(dir, id+".nk"))
		seeds[id] = filepath.Join(dir, id+".nk")
		t.Setenv(env, pub)
		want[pub] = natsauth.WorkerPermissions(id)
		if id == "scheduler" {
			want[pub] = natsauth.SchedulerPermissions()
		}
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if len(opts.Nkeys) != len(want) {
		t.Fatalf("%s has %d users, want %d", conf, len(opts.Nkeys), len(want))
	}
	for _, u := range opts.Nkeys {
		if diff := cmp.Diff(want[u.Nkey], u.Permissions); diff != "" {
			t.Errorf("permissions of %s in %s differ from natsauth's (-natsauth +conf):\n%s", u.Nkey, conf, diff)
		}
	}

	srv, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0", Nkeys: opts.Nkeys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	if _, err := nats.Connect(srv.ClientURL()); !errors.Is(err, nats.ErrAuthorization) {
		t.Errorf("connecting without credentials: %v, want an authorization error", err)
	}

	// The scheduler's work: the streams, its consumer, the buckets, an
	// upstream artifact and an assignment that reads it.
	sched := connect(t, srv, seeds["scheduler"], wire.SchedulerInbox)
	if err := wire.EnsureStreams(ctx, sched.js, 1); err != nil {
		t.Fatal(err)
	}
	events, err := wire.EnsureEventConsumer(ctx, sched.js)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.EnsureBuckets(ctx, sched.js, -1, 1); err != nil {
		t.Fatal(err)
	}
	schedObs, err := sched.js.ObjectStore(ctx, wire.ArtifactsBucket)
	if err != nil {
		t.Fatal(err)
	}
	upstream := wire.Artifact{Name: "data", Path: "data.txt", SHA256: sha("rows\n"), Size: 5}
	if _, err := schedObs.PutBytes(ctx, upstream.SHA256, []byte("rows\n")); err != nil {
		t.Fatalf("the scheduler storing an artifact: %v", err)
	}
	k := wire.TryKey{DAGID: "d", RunID: "r", TaskID: "t", Try: 1}
	a, _ := json.Marshal(wire.Assignment{TryKey: k, Queue: "default", Plugin: "copy", Heartbeat: time.Second,
		Inputs:    []wire.Input{{Name: "in", From: "up.data", Artifact: upstream}},
		Artifacts: map[string]string{"out": "out.txt"}})
	if _, err := sched.js.Publish(ctx, wire.TaskSubject("default"), a); err != nil {
		t.Fatalf("the scheduler publishing an assignment: %v", err)
	}

	var wlog plugintest.LogBuffer
	defer func() {
		if t.Failed() {
			t.Logf("worker-a's log:\n%s", wlog.String())
		}
	}()
	// A real worker with worker-a's permissions runs it, reading and
	// storing artifacts, and reports under its name, refused nothing.
	nkey, err := nats.NkeyOptionFromSeed(seeds["worker-a"])
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{NATSURL: srv.ClientURL(), NATSOptions: []nats.Option{nkey}, Name: "worker-a",
		Runner: copyRunner{}, DataDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&wlog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() { stop(); <-done })
	for {
		m, err := events.Next(jetstream.FetchMaxWait(30 * time.Second))
		if err != nil {
			t.Fatalf("waiting for worker-a's finished event: %v", err)
		}
		_ = m.Ack()
		var ev wire.Event
		if json.Unmarshal(m.Data(), &ev) == nil && ev.Kind == wire.EventFinished {
			want := []wire.Artifact{{Name: "out", Path: "out.txt", SHA256: sha("rows\n!"), Size: 6, MediaType: "text/plain; charset=utf-8"}}
			if m.Subject() != wire.EventSubject("worker-a", wire.EventFinished, "d") || !ev.Success || ev.TryKey != k || !cmp.Equal(want, ev.Artifacts) {
				t.Errorf("finished event on %s: %+v, want worker-a's success of %s with artifacts %+v", m.Subject(), ev, k, want)
			}
			break
		}
	}
	if got, err := schedObs.GetBytes(ctx, sha("rows\n!")); err != nil || string(got) != "rows\n!" {
		t.Errorf("the scheduler reading worker-a's artifact: %q, %v", got, err)
	}
	schedKV, err := sched.js.KeyValue(ctx, wire.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schedKV.Get(ctx, "worker-a"); err != nil {
		t.Errorf("the scheduler reading worker-a's entry: %v", err)
	}
	if strings.Contains(wlog.String(), "refused") {
		t.Errorf("NATS refused worker-a something:\n%s", wlog.String())
	}

	// What any worker may do with artifacts and its own entry; worker-b
	// stands for any identity but worker-a's.
	b := connect(t, srv, seeds["worker-b"], wire.WorkerInbox("worker-b"))
	bObs, err := b.js.ObjectStore(ctx, wire.ArtifactsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bObs.PutBytes(ctx, sha("b's"), []byte("b's")); err != nil {
		t.Errorf("worker-b storing an artifact: %v", err)
	}
	if got, err := bObs.GetBytes(ctx, upstream.SHA256); err != nil || string(got) != "rows\n" {
		t.Errorf("worker-b reading an artifact: %q, %v", got, err)
	}
	bKV, err := b.js.KeyValue(ctx, wire.WorkersBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bKV.Put(ctx, "worker-b", []byte("{}")); err != nil {
		t.Errorf("worker-b writing its entry: %v", err)
	}
	select {
	case err := <-b.errs:
		t.Errorf("worker-b, storing and reading artifacts and writing its entry: %v", err)
	default:
	}

	// What a worker's role may not do, and the scheduler may not speak
	// for a worker.
	forged, _ := json.Marshal(wire.Event{TryKey: k, Kind: wire.EventFinished, Success: true})
	for _, tc := range []struct {
		what string
		c    *client
		op   func(nc *nats.Conn) error
	}{
		{"subscribing to assignments", b, sub(wire.TasksSubjects)},
		{"subscribing to events", b, sub(wire.EventSubjects)},
		{"reading the scheduler's replies", b, sub(wire.SchedulerInbox + ".>")},
		{"reading worker-a's replies", b, sub(wire.WorkerInbox("worker-a") + ".>")},
		{"publishing under worker-a's name", b, pub(wire.EventSubject("worker-a", wire.EventFinished, "d"), forged)},
		{"publishing an assignment", b, pub(wire.TaskSubject("default"), a)},
		{"reading the tasks stream", b, pub("$JS.API.STREAM.MSG.GET."+wire.TasksStream, []byte(`{"seq":1}`))},
		{"deleting a stream", b, pub("$JS.API.STREAM.DELETE."+wire.TasksStream, nil)},
		{"deleting the scheduler's consumer", b, pub("$JS.API.CONSUMER.DELETE."+wire.EventsStream+"."+wire.EventConsumerName, nil)},
		{"the scheduler publishing an event", sched, pub(wire.EventSubject("worker-a", wire.EventFinished, "d"), forged)},
		{"purging the artifact store", b, pub("$JS.API.STREAM.PURGE.OBJ_"+wire.ArtifactsBucket, nil)},
		{"deleting a message of the artifact store", b, pub("$JS.API.STREAM.MSG.DELETE.OBJ_"+wire.ArtifactsBucket, []byte(`{"seq":1}`))},
		{"deleting the artifact store", b, pub("$JS.API.STREAM.DELETE.OBJ_"+wire.ArtifactsBucket, nil)},
		{"writing worker-a's entry", b, pub("$KV."+wire.WorkersBucket+".worker-a", []byte("{}"))},
		{"purging the workers bucket", b, pub("$JS.API.STREAM.PURGE.KV_"+wire.WorkersBucket, nil)},
	} {
		tc.c.refused(t, tc.what, tc.op)
	}
	for _, name := range []string{wire.TasksStream, wire.EventsStream} {
		if _, err := sched.js.Stream(ctx, name); err != nil {
			t.Errorf("stream %s after the refusals: %v", name, err)
		}
	}
	if _, err := sched.js.Consumer(ctx, wire.EventsStream, wire.EventConsumerName); err != nil {
		t.Errorf("the scheduler's consumer after the refusals: %v", err)
	}

	// The scheduler may remove artifacts and entries: it collects the
	// garbage.
	if err := schedObs.Delete(ctx, sha("b's")); err != nil {
		t.Errorf("the scheduler deleting an artifact: %v", err)
	}
	if err := schedObs.Delete(ctx, upstream.SHA256); err != nil {
		t.Errorf("the scheduler deleting an artifact: %v", err)
	}
	if objs, err := schedObs.List(ctx); err != nil || len(objs) != 1 {
		t.Errorf("the scheduler listing artifacts: %d, %v; want 1 left", len(objs), err)
	}
	if err := schedKV.Purge(ctx, "worker-b"); err != nil {
		t.Errorf("the scheduler purging an entry: %v", err)
	}
	select {
	case err := <-sched.errs:
		t.Errorf("the scheduler, on the buckets: %v", err)
	default:
	}
}

// confBlock returns the first ```conf block after heading in doc.
func confBlock(t *testing.T, doc, heading string) string {
	t.Helper()
	_, after, ok := strings.Cut(doc, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/operations.md has no heading %q", heading)
	}
	_, block, ok := strings.Cut(after, "```conf\n")
	if !ok {
		t.Fatalf("no ```conf block under %q", heading)
	}
	block, _, _ = strings.Cut(block, "```\n")
	return block
}

// writeSeed writes a new user seed to path and returns its public key.
func writeSeed(t *testing.T, path string) string {
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

// client is a connection that collects the errors the server sends it.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error
}

func connect(t *testing.T, srv *embednats.Server, seed, inbox string) *client {
	t.Helper()
	nkey, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{errs: make(chan error, 16)}
	c.nc, err = nats.Connect(srv.ClientURL(), nkey, nats.CustomInboxPrefix(inbox),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.errs <- err }))
	if err != nil {
		t.Fatalf("connecting with %s: %v", seed, err)
	}
	t.Cleanup(c.nc.Close)
	if c.js, err = jetstream.New(c.nc); err != nil {
		t.Fatal(err)
	}
	return c
}

// refused does op and waits for the server to answer it with a
// permissions violation.
func (c *client) refused(t *testing.T, what string, op func(*nats.Conn) error) {
	t.Helper()
	if err := op(c.nc); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.errs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("%s: %v, want a permissions violation", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("%s: allowed, want refused", what)
	}
}

func sub(subject string) func(*nats.Conn) error {
	return func(nc *nats.Conn) error {
		_, err := nc.SubscribeSync(subject)
		return err
	}
}

func pub(subject string, data []byte) func(*nats.Conn) error {
	return func(nc *nats.Conn) error { return nc.Publish(subject, data) }
}

// copyRunner copies the try's input "in" to out.txt in its working
// directory, with a "!".
type copyRunner struct{}

func (copyRunner) Run(_ context.Context, _ string, req host.Request, _ io.Writer) (host.Result, error) {
	var in string
	for _, kv := range req.Env {
		if v, ok := strings.CutPrefix(kv, wire.InputEnv("in")+"="); ok {
			in = v
		}
	}
	data, err := os.ReadFile(in)
	if err != nil {
		return host.Result{}, err
	}
	if err := os.WriteFile(filepath.Join(req.WorkDir, "out.txt"), append(data, '!'), 0o644); err != nil {
		return host.Result{}, err
	}
	return host.Result{Success: true}, nil
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
