// Package worker runs Kiln tasks: it pulls assignments for its queues from
// JetStream, runs each try through a stage plugin, and reports on it with
// events the scheduler applies.
//
// # Model
//
// Assignments sit in the work-queue stream KILN_TASKS, one subject per
// queue. All workers of a queue pull through one shared durable consumer,
// and a worker asks for no more assignments than it has free slots: the
// slots are one pool shared by all of the worker's queues, and each pull
// request reserves the slots it may fill. A pull is a long poll, so an idle
// worker gets an assignment the moment it is published. With several
// queues, an idle queue's request reserves one slot and expires every
// second, handing the slot to whichever queue waited longest; so a busy
// queue may run on one slot fewer than the worker has while another queue
// is idle, and a queue waits at most about a second for a slot that is
// free.
//
// A worker acks an assignment and waits for JetStream to confirm the ack
// before it runs the try; the ack removes the assignment from the stream,
// so from then on the try is this worker's alone. If the worker dies while
// running it, nobody else runs it: its heartbeats stop, and the scheduler
// fails the try after heartbeat_timeout and queues the next one. A worker
// never runs a try whose ack it could not confirm. (Confirming an ack on a
// file-backed work queue costs 0.1 to 1 ms, the largest part of a worker's
// share in the time from one task to the next; the started event is
// published meanwhile.)
//
// For each try the worker publishes to KILN_EVENTS: started, a heartbeat
// every Assignment.Heartbeat, the log in chunks (at most 64 KiB,
// at least every 50 ms, each with its byte offset, capped at
// Assignment.LogLimit), and finally finished with the outcome, exit code,
// outputs and log sizes. Every event carries a message id so a retried
// publish is stored once, and all log and heartbeat events of a try are
// confirmed by JetStream before its finished event is published, so the
// scheduler never sees the end of a try before the end of its log.
//
// A try is stopped by its timeout or by a wire.Cancel on kiln.cancel; the
// plugin then kills the task's process group. A cancel of a try the worker
// does not run is remembered for a minute, in case the assignment is still
// on its way: it is then taken and reported cancelled without running. Outputs are read from the
// file named by $KILN_OUTPUT (docs/dag-format.md#outputs) once the task has ended.
//
// # Files
//
// Each try runs in a working directory of its own, made in the data folder
// and removed once the try has been reported (Config.KeepWorkdirs keeps
// it). Before the stage starts the worker downloads the try's inputs from
// the artifact store, a JetStream object store, into it, checking each
// against the SHA-256 its upstream try recorded; once the stage has
// succeeded it stores the try's declared artifacts there, named by their
// SHA-256, and names them in the finished event (docs/artifacts.md).
//
// # Its entry
//
// Under its name in the workers bucket (wire.WorkersBucket) the worker
// keeps a wire.WorkerInfo: what it serves (its queues and its plugins'
// builds) and what it does (its slots, the tries it runs, whether it
// drains). It writes the entry on start and every wire.WorkerInfoInterval,
// the heartbeat of the worker as a whole: the scheduler shows a worker
// whose entry is older than wire.WorkerLostAfter as lost
// (docs/operations.md#watching-workers). It writes it again soon after a
// try starts or ends, at most every wire.WorkerInfoMinGap.
//
// Run stops gracefully: when its context ends the worker writes at once
// that it drains, stops pulling, hands back (naks) any assignment that
// arrives after that, lets the running tries finish and report, and then
// deletes its entry and returns.
package worker
