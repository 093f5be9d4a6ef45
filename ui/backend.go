package ui

import (
	"context"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// Backend is what the API needs from the scheduler: the loaded DAGs, the
// store it reads, and the operations that change state. The API never
// writes to the store itself.
//
// Errors wrap scheduler.ErrNotFound (answered 404), scheduler.ErrInvalid (400) or scheduler.ErrConflict
// (409); any other error is answered 500.
type Backend interface {
	// Trigger creates a manual run.
	Trigger(ctx context.Context, dagID string, req scheduler.TriggerRequest) (*store.Run, error)
	// Clear clears task instances of a run so they run again and returns
	// the ids of those it cleared.
	Clear(ctx context.Context, dagID, runID string, req scheduler.ClearRequest) ([]string, error)
	// MarkRun sets a run to success or failed by hand: success makes every
	// task instance that did not succeed or skip succeed, failed fails
	// every one that has not ended; tries in flight are stopped. It returns
	// the ids of the task instances it changed.
	MarkRun(ctx context.Context, dagID, runID string, state store.RunState) ([]string, error)
	// MarkTasks sets task instances of a run to success or failed by hand,
	// stopping their tries in flight, and clears the failed ones downstream
	// so that the run goes on from the new states. It returns the ids of
	// the task instances it changed.
	MarkTasks(ctx context.Context, dagID, runID string, tasks []string, state store.TaskState) ([]string, error)
	// Backfill plans a backfill of a DAG over a range of logical dates and,
	// unless req.DryRun, starts it; a dry run returns the plan with an
	// empty ID.
	Backfill(ctx context.Context, dagID string, req scheduler.BackfillRequest) (*store.Backfill, error)
	// CancelBackfill cancels an active backfill: dates without a run never
	// get one and queued runs do not start; running runs finish.
	CancelBackfill(ctx context.Context, id string) (*store.Backfill, error)
	// SetPaused pauses or unpauses a DAG.
	SetPaused(ctx context.Context, dagID string, paused bool) error
	// EmitDatasetEvent records an external producer's dataset event
	// (docs/dag-format.md#datasets).
	EmitDatasetEvent(ctx context.Context, req scheduler.DatasetEventRequest) (*store.DatasetEvent, error)
	// Datasets lists the datasets the DAGs name or events updated.
	Datasets(ctx context.Context) ([]scheduler.DatasetInfo, error)
	// SetPool creates a pool or changes its size.
	SetPool(ctx context.Context, name string, slots int) error
	// DeletePool deletes a pool.
	DeletePool(ctx context.Context, name string) error
	// ClearCache deletes the task cache's entries of a DAG's task (all of
	// the DAG's when taskID is empty, every DAG's when dagID is too) and
	// returns how many.
	ClearCache(ctx context.Context, dagID, taskID string) (int, error)
	// CollectArtifacts deletes the stored artifacts whose newest
	// reference is older than olderThan and that no live cache entry
	// holds (docs/artifacts.md#retention); with dryRun it only counts.
	CollectArtifacts(ctx context.Context, olderThan time.Duration, dryRun bool) (scheduler.GCReport, error)

	// OpenArtifact opens the stored artifact named by its SHA-256 for
	// reading, streamed from the artifact store; an artifact not stored
	// is an error wrapping store.ErrNotFound.
	OpenArtifact(ctx context.Context, sha string) (io.ReadCloser, *jetstream.ObjectInfo, error)

	// DAGs returns the loaded DAGs, sorted by id.
	DAGs() []scheduler.DAGInfo
	// DAG returns one loaded DAG.
	DAG(id string) (scheduler.DAGInfo, bool)
	// ImportErrors returns the DAG files that do not load as they are now.
	ImportErrors() []dag.ImportError

	// Store is the store the API reads runs, task instances, tries,
	// pools and backfills from.
	Store() *store.Store
	// LogPath is the file of a try's log; it may not exist yet.
	LogPath(k wire.TryKey) string
	// TryFinished reports whether a try has ended, so that a log that
	// is followed can end too.
	TryFinished(k wire.TryKey) bool

	// Health is nil when the scheduler, the store and NATS are up.
	Health() error
	// Started reports whether the scheduler has loaded its DAGs and
	// recovered its runs; until then the API answers 503.
	Started() bool
	// Role is the scheduler's role among the installation's schedulers.
	Role() scheduler.Role

	// Workers lists the workers by name, as their entries in the workers
	// bucket last described them, with their states.
	Workers() []scheduler.WorkerStatus
	// Queues lists the worker queues by name, with what waits on each and
	// the live workers that pull it.
	Queues(ctx context.Context) ([]scheduler.QueueStatus, error)
}

// PluginLister lists the stage plugins the server found, sorted by name.
type PluginLister interface {
	Plugins() []Plugin
}
