package natsauth

import (
	"github.com/nats-io/nats-server/v2/server"

	"github.com/kilnhq/kiln/internal/wire"
)

// AnyWorker, as the name given to WorkerPermissions, lets one identity
// speak for workers of any name: the workers of a standalone installation
// share one.
const AnyWorker = "*"

// SchedulerPermissions are what the scheduler may do: create and inspect
// Kiln's streams, publish assignments and cancels, read assignments still
// queued (to find lost ones), and consume and ack worker events through
// its own consumer. Nothing else: it does not publish events.
func SchedulerPermissions() *server.Permissions {
	events := wire.EventsStream + "." + wire.EventConsumerName
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: append([]string{
			wire.TasksSubjects,
			wire.CancelSubject,
			"$JS.API.STREAM.*." + wire.TasksStream,
			"$JS.API.STREAM.*." + wire.EventsStream,
			"$JS.API.STREAM.MSG.GET." + wire.TasksStream,
			"$JS.API.CONSUMER.CREATE." + events + ".>",
			"$JS.API.CONSUMER.*." + events,
			"$JS.API.CONSUMER.MSG.NEXT." + events,
			"$JS.ACK." + events + ".>",
		}, bucketsFull()...)},
		Subscribe: &server.SubjectPermission{Allow: []string{
			wire.SchedulerInbox + ".>",
		}},
	}
}

// WorkerPermissions are what the worker of the given name may do (or any
// worker, with AnyWorker): create and inspect a queue's consumer, pull
// assignments through it and ack them, publish events under its name,
// receive cancels, and read replies under its own inbox prefix. It may not
// read the tasks stream in any other way, publish assignments, touch the
// streams, or publish events under another worker's name.
func WorkerPermissions(name string) *server.Permissions {
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.CONSUMER.CREATE." + wire.TasksStream + ".*." + wire.TaskSubject("*"),
			"$JS.API.CONSUMER.INFO." + wire.TasksStream + ".*",
			"$JS.API.CONSUMER.MSG.NEXT." + wire.TasksStream + ".*",
			"$JS.ACK." + wire.TasksStream + ".>",
			wire.WorkerEventSubjects(name),
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{
			wire.CancelSubject,
			wire.WorkerInbox(name) + ".>",
		}},
	}
}

// bucketsFull are the subjects of full use of the artifacts object store
// and the workers key-value bucket: create and configure them, read,
// write, delete and purge, watch.
func bucketsFull() []string {
	out := []string{"$JS.API.INFO"} // creating a key-value bucket reads the account's limits
	for _, b := range []struct{ stream, prefix string }{
		{"OBJ_" + wire.ArtifactsBucket, "$O." + wire.ArtifactsBucket + ".>"},
		{"KV_" + wire.WorkersBucket, "$KV." + wire.WorkersBucket + ".>"},
	} {
		out = append(out,
			b.prefix,
			"$JS.API.STREAM.*."+b.stream,
			"$JS.API.STREAM.*.*."+b.stream,
			"$JS.API.DIRECT.GET."+b.stream+".>",
			"$JS.API.CONSUMER.CREATE."+b.stream+".>",
			"$JS.API.CONSUMER.*."+b.stream+".*",
			"$JS.FC."+b.stream+".>",
		)
	}
	return out
}
