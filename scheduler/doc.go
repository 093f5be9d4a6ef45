// Package scheduler drives DAG runs: it creates runs from timetables,
// manual triggers and restarts, decides which task instances are ready
// (trigger rules, `when`, pools, limits, depends_on_past), dispatches them to
// workers over NATS JetStream and applies what the workers report.
//
// One goroutine owns all mutable state (the loop in loop.go). Everything
// that changes state — worker events, API commands, timers, DAG reloads —
// reaches it through channels; each turn of the loop applies a batch of
// them, commits every resulting write to the store in one transaction
// (group commit, fsync kept), and only then publishes assignments, acks the
// events it consumed and answers the commands. A crash at any point
// therefore loses nothing: unacked events are redelivered, and runs are
// rebuilt from the store on start (recover.go).
//
// The decisions themselves are small pure functions (rules.go) tested with
// tables; time comes from an injected Clock.
package scheduler
