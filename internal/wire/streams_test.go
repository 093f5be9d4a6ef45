package wire_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/wire"
)

func startJS(t *testing.T) (context.Context, jetstream.JetStream) {
	t.Helper()
	s, err := embednats.Start(embednats.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx, js
}

func TestEnsureStreamsIdempotent(t *testing.T) {
	ctx, js := startJS(t)
	for i := range 3 {
		if err := wire.EnsureStreams(ctx, js, 1); err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
	}
	for _, want := range wire.StreamConfigs() {
		st, err := js.Stream(ctx, want.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := st.CachedInfo().Config
		if got.Retention != jetstream.WorkQueuePolicy || got.Storage != jetstream.FileStorage ||
			got.Duplicates != wire.DuplicateWindow || len(got.Subjects) != 1 || got.Subjects[0] != want.Subjects[0] {
			t.Errorf("stream %s config = %+v", want.Name, got)
		}
	}
}

func TestEnsureStreamsRepairsAndKeepsOperatorSettings(t *testing.T) {
	ctx, js := startJS(t)
	// An older or hand-made KILN_TASKS: a narrower subject, a short
	// dedupe window, and a limit an operator set.
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: wire.TasksStream, Subjects: []string{"kiln.task.default"},
		Retention: jetstream.WorkQueuePolicy, Storage: jetstream.FileStorage,
		Duplicates: time.Second, MaxMsgs: 12345,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	st, _ := js.Stream(ctx, wire.TasksStream)
	got := st.CachedInfo().Config
	if got.Subjects[0] != wire.TasksSubjects || got.Duplicates != wire.DuplicateWindow {
		t.Errorf("not repaired: subjects %v, duplicates %s", got.Subjects, got.Duplicates)
	}
	if got.MaxMsgs != 12345 {
		t.Errorf("MaxMsgs = %d, want the operator's 12345 kept", got.MaxMsgs)
	}
}

func TestEnsureStreamsRefusesWrongRetention(t *testing.T) {
	ctx, js := startJS(t)
	_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: wire.EventsStream, Subjects: []string{wire.EventSubjects}})
	if err != nil {
		t.Fatal(err)
	}
	err = wire.EnsureStreams(ctx, js, 1)
	if err == nil || !strings.Contains(err.Error(), wire.EventsStream) {
		t.Fatalf("err = %v, want one naming %s", err, wire.EventsStream)
	}
}

func TestAssignmentsDedupeByMsgID(t *testing.T) {
	ctx, js := startJS(t)
	if err := wire.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	a := &wire.Assignment{TryKey: wire.TryKey{DAGID: "d", RunID: "r", TaskID: "t", Try: 1}}
	for range 3 {
		ack, err := js.Publish(ctx, wire.TaskSubject("default"), []byte("{}"), jetstream.WithMsgID(a.MsgID()))
		if err != nil {
			t.Fatal(err)
		}
		_ = ack
	}
	st, _ := js.Stream(ctx, wire.TasksStream)
	info, _ := st.Info(ctx)
	if info.State.Msgs != 1 {
		t.Errorf("messages = %d, want 1", info.State.Msgs)
	}
}

func TestTaskConsumersPerQueue(t *testing.T) {
	ctx, js := startJS(t)
	if err := wire.EnsureStreams(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	for range 2 { // every worker of a queue ensures the same consumer
		for _, q := range []string{"default", "gpu"} {
			c, err := wire.EnsureTaskConsumer(ctx, js, q)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.CachedInfo().Name; got != wire.TaskConsumerName(q) {
				t.Errorf("consumer name = %q, want %q", got, wire.TaskConsumerName(q))
			}
		}
	}
	// A consumer delivers in stream order: had default's seen the gpu
	// assignment, stored first, it would hand that one out before its own.
	for _, q := range []string{"gpu", "default"} {
		if _, err := js.Publish(ctx, wire.TaskSubject(q), []byte(q[:1])); err != nil {
			t.Fatal(err)
		}
	}
	def, _ := js.Consumer(ctx, wire.TasksStream, wire.TaskConsumerName("default"))
	d, err := def.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatalf("default consumer: %v", err)
	}
	if string(d.Data()) != "d" {
		t.Errorf("default consumer handed out %q first, want its own assignment", d.Data())
	}
	gpu, _ := js.Consumer(ctx, wire.TasksStream, wire.TaskConsumerName("gpu"))
	m, err := gpu.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatalf("gpu consumer: %v", err)
	}
	if string(m.Data()) != "g" {
		t.Errorf("data = %q", m.Data())
	}

	if _, err := wire.EnsureEventConsumer(ctx, js); err != nil {
		t.Fatal(err)
	}
	if _, err := wire.EnsureEventConsumer(ctx, js); err != nil {
		t.Fatalf("second call: %v", err)
	}

	// An event a scheduler received and never acked comes again at once
	// to the next one, which renews the consumer, not after the AckWait.
	if _, err := js.Publish(ctx, wire.EventSubject("w1", wire.EventFinished, "etl"), []byte("e")); err != nil {
		t.Fatal(err)
	}
	events, _ := js.Consumer(ctx, wire.EventsStream, wire.EventConsumerName)
	if m, err := events.Next(jetstream.FetchMaxWait(2 * time.Second)); err != nil || string(m.Data()) != "e" {
		t.Fatalf("the first scheduler's event: %v", err)
	}
	renewed, err := wire.RenewEventConsumer(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := renewed.Next(jetstream.FetchMaxWait(2 * time.Second)); err != nil || string(m.Data()) != "e" {
		t.Fatalf("the unacked event after the renewal: %v", err)
	}
}

func TestCheckQueue(t *testing.T) {
	for _, tc := range []struct {
		q  string
		ok bool
	}{
		{"default", true}, {"gpu-2_x", true}, {"", false}, {"a.b", false},
		{"a*", false}, {">", false}, {"a b", false}, {strings.Repeat("q", 65), false},
	} {
		if err := wire.CheckQueue(tc.q); (err == nil) != tc.ok {
			t.Errorf("CheckQueue(%q) = %v, want ok %v", tc.q, err, tc.ok)
		}
	}
	if _, err := wire.EnsureTaskConsumer(context.Background(), nil, "a.b"); err == nil {
		t.Error("EnsureTaskConsumer accepted a bad queue name")
	}
}
