// Package natsauth says who may do what on Kiln's NATS
// (docs/operations.md#security). There are two roles: the scheduler, which
// owns the streams and the buckets (the artifact store, the workers
// bucket, and in cluster mode the log, the leader's lease and the
// snapshots), publishes assignments and cancels and consumes events, and the
// worker, which pulls assignments through its queues' consumers, publishes
// events under its own name, receives cancels, reads and stores artifacts
// but may not call the API that removes them, and writes its own entry in
// the workers bucket (though a message with a rollup header can still
// empty either bucket: see WorkerPermissions).
// Each role's
// NATS permissions are written down here once; the embedded server of
// `kiln standalone` applies them, and the configuration for an external
// cluster in the docs is tested against them.
//
// The package also keeps the NKeys of a standalone installation: one for
// its scheduler and one shared by its workers, created at first start as
// seed files readable by their owner only.
package natsauth
