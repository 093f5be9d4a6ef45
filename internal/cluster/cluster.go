// Package cluster is what `kiln server --ha` adds to a server so that
// several of them share one NATS cluster: one leads, the others stand by
// and take over within seconds (docs/operations.md#cluster-mode).
//
// It has no consensus code of its own. The leader appends what each store
// transaction wrote to the JetStream stream KILN_LOG, replicated on three
// NATS servers, with an expected last sequence, so that only the holder
// of the log's tail can append (Log); standbys apply the log to their own
// store (Tail). Who leads is a lease in the key-value bucket KILN_LEADER,
// whose TTL bounds how long a dead leader keeps it (Lease). Snapshots of
// the store in the object store KILN_SNAPSHOTS let the log be trimmed and
// a new server start without replaying all of it (Snapshot).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Names of what cluster mode keeps in JetStream, and the headers of a log
// message.
const (
	LogStream      = "KILN_LOG"
	LogSubject     = "kiln.log"
	TryLogStream   = "KILN_TRYLOGS"
	TryLogSubject  = "kiln.trylog"
	LeaseBucket    = "KILN_LEADER"
	LeaseKey       = "leader"
	SnapshotBucket = "KILN_SNAPSHOTS"
	SnapshotName   = "latest"

	// HeaderTerm is the lease revision of the leader that appended the
	// message: terms never decrease along the log.
	HeaderTerm = "Kiln-Term"
	// HeaderLeader is the name of the server that appended it.
	HeaderLeader = "Kiln-Leader"
	// HeaderPart is "I/N" on the I-th of a record's N messages.
	HeaderPart = "Kiln-Part"
	// HeaderKind is "term" on the record a new leader appends first; it
	// writes nothing.
	HeaderKind = "Kiln-Kind"
	// HeaderSnapshotSeq is the log sequence a snapshot holds.
	HeaderSnapshotSeq = "Kiln-Seq"
)

// TryLogAge is how long KILN_TRYLOGS keeps a write to a try's log: a
// standby away for longer misses the logs written meanwhile.
const TryLogAge = 72 * time.Hour

// DefaultLeaseTTL is how long a leader that stopped renewing keeps the
// lease.
const DefaultLeaseTTL = 6 * time.Second

// Ensure creates, or brings up to date, the log stream, the lease bucket
// with its TTL and the snapshot bucket, each kept on replicas servers.
func Ensure(ctx context.Context, js jetstream.JetStream, replicas int, leaseTTL time.Duration) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        LogStream,
		Description: "Kiln's replicated log: what each transaction of the leader's store wrote",
		Subjects:    []string{LogSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		// Records are appended one at a time, in order; the leader
		// purges what a snapshot holds.
		Discard: jetstream.DiscardNew,
	})
	if err != nil {
		return fmt.Errorf("ensuring stream %s: %w", LogStream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        TryLogStream,
		Description: "Copies of what the leader wrote to tries' logs, for the standbys",
		Subjects:    []string{TryLogSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		MaxAge:      TryLogAge,
	})
	if err != nil {
		return fmt.Errorf("ensuring stream %s: %w", TryLogStream, err)
	}
	_, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      LeaseBucket,
		Description: "Kiln's leader lease",
		History:     1,
		TTL:         leaseTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return fmt.Errorf("ensuring key-value bucket %s: %w", LeaseBucket, err)
	}
	// Which snapshot is the latest is read from the stream's leader: a
	// direct get may be answered by a replica that has not yet applied
	// the last one written. An object store is created with direct gets
	// on, so its stream is created once and after that only reconciled,
	// lest each server's start turn them on for a moment.
	st, err := js.Stream(ctx, "OBJ_"+SnapshotBucket)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{
			Bucket:      SnapshotBucket,
			Description: "Snapshots of Kiln's store, for standbys to start from",
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		if err == nil {
			st, err = js.Stream(ctx, "OBJ_"+SnapshotBucket)
		}
	}
	if err == nil {
		if cfg := st.CachedInfo().Config; cfg.AllowDirect || cfg.Replicas != replicas {
			cfg.AllowDirect, cfg.Replicas = false, replicas
			_, err = js.UpdateStream(ctx, cfg)
		}
	}
	if err != nil {
		return fmt.Errorf("ensuring object store %s: %w", SnapshotBucket, err)
	}
	return nil
}
