// Package natsauth says who may do what on Kiln's NATS
// (docs/operations.md#security). There are two roles: the scheduler, which
// owns the streams, publishes assignments and cancels and consumes events,
// and the worker, which pulls assignments through its queues' consumers,
// publishes events under its own name and receives cancels. Each role's
// NATS permissions are written down here once; the embedded server of
// `kiln standalone` applies them, and the configuration for an external
// cluster in the docs is tested against them.
//
// The package also keeps the NKeys of a standalone installation: one for
// its scheduler and one shared by its workers, created at first start as
// seed files readable by their owner only.
package natsauth
