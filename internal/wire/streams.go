package wire

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DuplicateWindow is how long JetStream remembers a message id, so that a
// publish retried within it (a scheduler or worker restarting, a lost
// PubAck) is stored once.
const DuplicateWindow = 2 * time.Minute

// TaskAckWait is how long a delivered assignment may stay unacked before
// JetStream hands it to another worker. Workers ack at once, so it only
// matters for a worker that dies between receiving and acking.
const TaskAckWait = 30 * time.Second

// EventConsumerName is the durable consumer through which the scheduler
// reads worker events.
const EventConsumerName = "kiln-scheduler"

// nameToken is the shape of a worker queue's name and of a worker's: one
// subject token, and a valid consumer name. Queue names match what DAG
// files accept.
var nameToken = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckQueue reports whether q is a valid worker queue name.
func CheckQueue(q string) error {
	if !nameToken.MatchString(q) {
		return fmt.Errorf("invalid queue %q: use 1 to 64 of A-Z a-z 0-9 _ -", q)
	}
	return nil
}

// TaskConsumerName is the durable consumer shared by all workers of a queue.
// A work-queue stream allows one consumer per subject, so every worker of
// the queue pulls through this one.
func TaskConsumerName(queue string) string { return "kiln-task-" + queue }

// StreamConfigs returns the configurations EnsureStreams applies.
func StreamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        TasksStream,
			Description: "Kiln task assignments, one subject per worker queue",
			Subjects:    []string{TasksSubjects},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  DuplicateWindow,
		},
		{
			Name:        EventsStream,
			Description: "Kiln worker events, until the scheduler has applied them",
			Subjects:    []string{EventSubjects},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Duplicates:  DuplicateWindow,
		},
	}
}

// EnsureStreams creates the streams KILN_TASKS and KILN_EVENTS, each
// message kept on replicas servers (Replicas), or brings the settings Kiln
// relies on up to date, replicas included: a stream made on one server
// gets its copies when the deployment became a cluster. It is idempotent
// and cheap when nothing changed, so every process calls it on start.
// Settings Kiln does not own (limits, placement) are kept as an operator
// set them.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, replicas int) error {
	for _, want := range StreamConfigs() {
		want.Replicas = replicas
		if err := ensureStream(ctx, js, want); err != nil {
			return fmt.Errorf("ensuring stream %s: %w", want.Name, err)
		}
	}
	return nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, want jetstream.StreamConfig) error {
	st, err := js.Stream(ctx, want.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another process created it meanwhile: check its settings.
			return ensureStream(ctx, js, want)
		}
		return err
	}
	if err != nil {
		return err
	}
	have := st.CachedInfo().Config
	if have.Retention != want.Retention || have.Storage != want.Storage {
		return fmt.Errorf("exists with retention %s and storage %s, want %s and %s; it cannot be changed in place",
			have.Retention, have.Storage, want.Retention, want.Storage)
	}
	if slices.Equal(have.Subjects, want.Subjects) && have.Duplicates == want.Duplicates && have.Replicas == want.Replicas {
		return nil
	}
	have.Subjects = want.Subjects
	have.Duplicates = want.Duplicates
	have.Replicas = want.Replicas
	_, err = js.UpdateStream(ctx, have)
	return err
}

// TaskConsumerConfig is the configuration of a queue's consumer.
func TaskConsumerConfig(queue string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       TaskConsumerName(queue),
		Description:   "Kiln workers of queue " + queue,
		FilterSubject: TaskSubject(queue),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       TaskAckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// Workers ack as soon as a try is theirs, so few are ever pending;
		// the limit is high so that it never holds assignments back.
		MaxAckPending: 100_000,
	}
}

// EnsureTaskConsumer creates or updates the durable pull consumer of a
// worker queue and returns it. Idempotent; every worker calls it on start.
func EnsureTaskConsumer(ctx context.Context, js jetstream.JetStream, queue string) (jetstream.Consumer, error) {
	if err := CheckQueue(queue); err != nil {
		return nil, err
	}
	c, err := js.CreateOrUpdateConsumer(ctx, TasksStream, TaskConsumerConfig(queue))
	if err != nil {
		return nil, fmt.Errorf("ensuring consumer of queue %s: %w", queue, err)
	}
	return c, nil
}

// EventConsumerConfig is the configuration of the scheduler's consumer.
func EventConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       EventConsumerName,
		Description:   "Kiln scheduler",
		FilterSubject: EventSubjects,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// The scheduler acks a batch of events after one store commit, so
		// many are pending at once.
		MaxAckPending: 10_000,
	}
}

// RenewEventConsumer makes the scheduler's consumer on KILN_EVENTS
// afresh, as a scheduler does when it starts: the events an earlier
// scheduler process received and had not acked (it was killed, or lost
// the lead of a cluster) are delivered again at once, instead of after
// their AckWait, so that the heartbeats and results of running tries are
// not held back meanwhile. Events stay in the work-queue stream until
// acked, so none is lost.
func RenewEventConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	if err := js.DeleteConsumer(ctx, EventsStream, EventConsumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("renewing the scheduler's event consumer: %w", err)
	}
	return EnsureEventConsumer(ctx, js)
}

// EnsureEventConsumer creates or updates the scheduler's durable pull
// consumer on KILN_EVENTS and returns it. Idempotent.
func EnsureEventConsumer(ctx context.Context, js jetstream.JetStream) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, EventsStream, EventConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("ensuring the scheduler's event consumer: %w", err)
	}
	return c, nil
}
