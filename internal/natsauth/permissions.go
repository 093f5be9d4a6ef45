package natsauth

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/kilnhq/kiln/internal/wire"
)

// AnyWorker, as the name given to WorkerPermissions, lets one identity
// speak for workers of any name: the workers of a standalone installation
// share one.
const AnyWorker = "*"

// The streams and subjects behind wire.ArtifactsBucket, an object store,
// and wire.WorkersBucket, a key-value bucket.
const (
	artifactsStream = "OBJ_" + wire.ArtifactsBucket
	artifactChunks  = "$O." + wire.ArtifactsBucket + ".C.*" // one subject per stored object
	artifactMeta    = "$O." + wire.ArtifactsBucket + ".M.*" // one subject per object name
	workersStream   = "KV_" + wire.WorkersBucket
	workerKeys      = "$KV." + wire.WorkersBucket + "."
)

// The streams and subjects of cluster mode (`kiln server --ha`,
// docs/operations.md#cluster-mode): the log every commit is appended to
// before it is applied, the copies of the tries' logs (KILN_TRYLOGS), the
// leader's lease (the key-value bucket KILN_LEADER) and the snapshots of
// the store (the object store KILN_SNAPSHOTS).
const (
	logStream       = "KILN_LOG"
	logSubject      = "kiln.log"
	tryLogStream    = "KILN_TRYLOGS"
	tryLogSubject   = "kiln.trylog"
	leaderStream    = "KV_KILN_LEADER"
	leaderKeys      = "$KV.KILN_LEADER."
	snapshotsStream = "OBJ_KILN_SNAPSHOTS"
	snapshotObjects = "$O.KILN_SNAPSHOTS."
)

// SchedulerPermissions are what the scheduler may do: create and inspect
// Kiln's streams, publish assignments and cancels, read assignments still
// queued (to find lost ones), and consume and ack worker events through
// its own consumer; and everything on the artifact store and the workers
// bucket: make them, read, write, delete and purge, since it serves
// artifacts and collects their garbage (docs/artifacts.md#security).
// In cluster mode every server, leader or standby, has this role: it
// appends to the log and reads it through ordered consumers of its own,
// pulled; it takes and renews the lease in the leader bucket; and it
// writes, reads and deletes snapshots. Nothing else: it does not publish
// events.
func SchedulerPermissions() *server.Permissions {
	events := wire.EventsStream + "." + wire.EventConsumerName
	allow := []string{
		wire.TasksSubjects,
		wire.CancelSubject,
		"$JS.API.STREAM.*." + wire.TasksStream,
		"$JS.API.STREAM.*." + wire.EventsStream,
		"$JS.API.STREAM.MSG.GET." + wire.TasksStream,
		"$JS.API.CONSUMER.CREATE." + events + ".>",
		"$JS.API.CONSUMER.*." + events,
		"$JS.API.CONSUMER.MSG.NEXT." + events,
		"$JS.ACK." + events + ".>",
		logSubject,
		tryLogSubject,
		"$JS.API.CONSUMER.MSG.NEXT." + logStream + ".*",
		"$JS.API.CONSUMER.MSG.NEXT." + tryLogStream + ".*",
	}
	for _, s := range []string{artifactsStream, workersStream, logStream, tryLogStream, leaderStream, snapshotsStream} {
		allow = append(allow,
			"$JS.API.STREAM.*."+s,
			"$JS.API.STREAM.MSG.*."+s,
			"$JS.API.DIRECT.GET."+s,
			"$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.API.CONSUMER.*."+s+".*",
			"$JS.FC."+s+".>",
		)
	}
	// Making a key-value bucket reads the account's JetStream limits.
	allow = append(allow, "$O."+wire.ArtifactsBucket+".>", workerKeys+">", leaderKeys+">", snapshotObjects+">", "$JS.API.INFO")
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: allow},
		Subscribe: &server.SubjectPermission{Allow: []string{
			wire.SchedulerInbox + ".>",
		}},
	}
}

// WorkerPermissions are what the worker of the given name may do (or any
// worker, with AnyWorker): create and inspect a queue's consumer, pull
// assignments through it and ack them, publish events under its name,
// receive cancels, and read replies under its own inbox prefix. On the
// artifact store it may read (look objects up, and read their chunks
// through an ordered consumer of its own, pulled, as the worker does, or
// pushed with flow control, as the object store's Get does) and store
// objects (publish chunks and metadata); in the workers bucket it may
// write its own entry only. It may not read the tasks stream in any other way,
// publish assignments, touch the streams, or publish events under another
// worker's name; nor call the API that purges or deletes in the artifact
// store: removing artifacts is the scheduler's garbage collection, which
// also removes the chunks a failed upload leaves (docs/artifacts.md#security).
//
// Permissions name subjects and cannot look at a message's headers: a
// subject a worker may publish to (an object's metadata, its own entry)
// also takes a message with the header Nats-Rollup: all, which the stream
// of an object store or a key-value bucket obeys by purging all the rest.
// So a worker's identity can still empty the artifact store and the
// workers bucket; what it cannot do is make a download accept other
// content, which is checked against its hash.
func WorkerPermissions(name string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.CONSUMER.CREATE." + wire.TasksStream + ".*." + wire.TaskSubject("*"),
			"$JS.API.CONSUMER.INFO." + wire.TasksStream + ".*",
			"$JS.API.CONSUMER.MSG.NEXT." + wire.TasksStream + ".*",
			"$JS.ACK." + wire.TasksStream + ".>",
			wire.WorkerEventSubjects(name),
			"$JS.API.STREAM.INFO." + artifactsStream,
			"$JS.API.DIRECT.GET." + artifactsStream + "." + artifactMeta,
			"$JS.API.CONSUMER.CREATE." + artifactsStream + ".*." + artifactChunks,
			"$JS.API.CONSUMER.DELETE." + artifactsStream + ".*",
			"$JS.API.CONSUMER.MSG.NEXT." + artifactsStream + ".*",
			"$JS.FC." + artifactsStream + ".>",
			artifactChunks,
			artifactMeta,
			"$JS.API.STREAM.INFO." + workersStream,
			workerKeys + name,
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			wire.CancelSubject,
			wire.WorkerInbox(name) + ".>",
		}},
	}
}
