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
		Publish: &server.SubjectPermission{Allow: []string{
			wire.TasksSubjects,
			wire.CancelSubject,
			"$JS.API.STREAM.*." + wire.TasksStream,
			"$JS.API.STREAM.*." + wire.EventsStream,
			"$JS.API.STREAM.MSG.GET." + wire.TasksStream,
			"$JS.API.CONSUMER.CREATE." + events + ".>",
			"$JS.API.CONSUMER.*." + events,
			"$JS.API.CONSUMER.MSG.NEXT." + events,
			"$JS.ACK." + events + ".>",
		}},
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
