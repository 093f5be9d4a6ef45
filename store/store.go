// Package store keeps Kiln's state — runs, task instances, tries, DAG state
// and pools — in one bbolt file. It is the single source of truth of the
// scheduler, which is its only writer; the scheduler and the HTTP API (and
// through it the CLI) read it. The one exception is authentication data —
// users, API tokens and browser sessions (auth.go) — which shares nothing
// with run state and which the API writes itself.
//
// # Writes
//
// Callers collect puts and deletes in a [Batch] and hand it to
// [Store.Commit]. One writer goroutine takes every batch waiting in its
// queue and applies them all in one bbolt transaction, so one fsync covers
// many batches (group commit). There is no fixed delay: a lone batch is
// committed at once, and under load batches pile up while the previous
// fsync runs. A batch is applied whole or not at all; a batch that fails
// (say, a task instance for a run that does not exist) is dropped and the
// transaction is retried without it, so it never fails the others. Values
// whose bytes did not change are not rewritten.
//
// Once a transaction has committed, and before Commit returns to its
// callers, the writer publishes the runs, task instances, tries and
// backfills it changed to the change feed ([Store.ChangesAfter], feed.go),
// which readers wait on instead of polling.
//
// # Bucket layout
//
// Keys join ids with a 0x00 byte, which no id may contain (DAG ids are
// [A-Za-z0-9_.-], task ids [A-Za-z0-9_-], run ids add ':' and '+'). As the
// smallest byte it also keeps prefix scans exact: "a\x00" is never a prefix
// of DAG "a.b"'s keys. time(t) is 12 bytes: the Unix seconds as a
// big-endian uint64 with the sign bit flipped, then the nanoseconds as a
// big-endian uint32, so byte order is time order. Numbers are big-endian.
// Values are the JSON of the types in model.go unless noted.
//
//	meta/
//	    schema_version                        -> uint64: migrations applied
//	    run_count                             -> uint64: runs of all DAGs
//	runs/
//	    dag 0x00 time(logical_date)           -> Run
//	run_ids/                                     index: run id -> run
//	    dag 0x00 run_id                       -> time(logical_date)
//	run_info/                                    index: a run's filter fields
//	    dag 0x00 time(logical_date)           -> summary
//	runs_by_queued/                              index: all DAGs by queue time
//	    time(queued_at) dag 0x00 time(logical_date) -> summary
//	active_runs/                                 index: runs queued or running
//	    dag 0x00 time(logical_date)           -> empty
//	run_counts/
//	    dag                                   -> uint64: runs of the DAG
//	task_instances/
//	    dag 0x00 run_id 0x00 task_id          -> TaskInstance
//	tries/
//	    dag 0x00 run_id 0x00 task_id 0x00 uint32(try_number) -> Try
//	dag_states/
//	    dag                                   -> DAGState
//	pools/
//	    name                                  -> Pool
//	backfills/, open_callbacks/              see backfill.go, callbacks.go
//	users/, tokens/, sessions/               see auth.go (no secret in clear)
//
// where summary is time(queued_at) state 0x00 run_type 0x00 backfill_id
// 0x00 run_id: a few bytes that let a listing filter runs without decoding
// their JSON.
//
// Keying runs by (DAG, logical date) makes the rule "at most one run per
// DAG and logical date" the primary key: [Store.RunAt] is one B+tree lookup,
// [Store.PreviousRun] one seek, and a DAG's runs are stored oldest first, so
// a listing walks them backwards from the end. [Store.Commit] refuses a run
// whose logical date already holds another run id, or whose id already
// names another logical date. Every index is maintained in the transaction
// that writes the run, so restart recovery reads active_runs and never
// scans history.
//
// # Cost of reads
//
// Each read is its own read transaction and may run alongside commits.
// With n runs in scope:
//
//   - GetRun: two lookups, O(log n). RunAt, PreviousRun: O(log n).
//   - ListRuns without filters: O(log n + offset + limit) cursor steps and
//     limit JSON decodes; total comes from a counter.
//   - ListRuns with a filter: one cursor step and a summary check per run in
//     scope (no JSON), then limit JSON decodes: O(n) cheap steps.
//   - ActiveRuns: O(active runs · log n), whatever the history.
//   - TaskInstances, Tries: O(log n + results).
//
// # Damaged files
//
// Open checks an existing file before it uses it and refuses a damaged
// one, saying what is wrong (check.go); [Check] runs the full check. Only
// a missing file makes a new store: an empty file is a damaged one. Reads
// and commits that meet a page damaged later fail with [ErrDamaged]
// instead of panicking.
//
// # Schema versions
//
// meta/schema_version counts the migrations applied to the file. Open
// applies the ones it lacks, in order and in one transaction with the new
// version, and refuses a file whose version is newer than the code
// ([ErrNewerSchema]). The initial layout is migration 1; a change of layout
// appends a migration and never edits an old one.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors callers branch on, with errors.Is.
var (
	// ErrNotFound reports a run, task instance, try, DAG state or pool that
	// is not in the store.
	ErrNotFound = errors.New("not found")
	// ErrConflict reports a write that would break a uniqueness rule: a
	// second run for one DAG and logical date, or a run id moved to another
	// logical date.
	ErrConflict = errors.New("conflict")
	// ErrClosed is returned by operations on a closed Store.
	ErrClosed = errors.New("store closed")
	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("locked by another process")
	// ErrNewerSchema is returned by Open for a file written by a newer Kiln.
	ErrNewerSchema = errors.New("schema version newer than this program")
)

// Bucket names.
var (
	bucketMeta          = []byte("meta")
	bucketRuns          = []byte("runs")
	bucketRunIDs        = []byte("run_ids")
	bucketRunInfo       = []byte("run_info")
	bucketRunsByQueued  = []byte("runs_by_queued")
	bucketActiveRuns    = []byte("active_runs")
	bucketRunCounts     = []byte("run_counts")
	bucketTaskInstances = []byte("task_instances")
	bucketTries         = []byte("tries")
	bucketDAGStates     = []byte("dag_states")
	bucketPools         = []byte("pools")

	bucketDAGVersions       = []byte("dag_versions")
	bucketDAGSources        = []byte("dag_sources")
	bucketDAGVersionsByDAG  = []byte("dag_versions_by_dag")
	bucketDAGVersionsByFile = []byte("dag_versions_by_file")

	metaSchemaVersion = []byte("schema_version")
	metaRunCount      = []byte("run_count")
)

// defaultLockTimeout is how long Open waits for another process to let go
// of the file before it gives up.
const defaultLockTimeout = 2 * time.Second

// Store is Kiln's bbolt store. Its methods are safe for concurrent use.
type Store struct {
	path   string
	db     *bolt.DB
	report CheckReport // what Open checked

	mu     sync.RWMutex // guards closed and sends on queue
	closed bool
	queue  chan *commitRequest
	done   chan struct{} // closed when the writer has drained the queue

	// feed publishes what each transaction changed (feed.go); changes
	// collects it during the writer's transaction.
	feed    *feed
	changes []Change

	stats struct {
		txs, batches, failed atomic.Uint64
	}

	// repl is the store's part in cluster mode (replicate.go).
	repl replication

	// passwordCost is the bcrypt cost of new password hashes; 0 for the
	// default (auth.go).
	passwordCost atomic.Int32
}

// options are the knobs tests turn; Open uses the defaults.
type options struct {
	lockTimeout time.Duration
	migrations  []migration
	checkBudget time.Duration // see check.go
}

// Open opens the store at path, upgrading an older schema. When there is
// no file it creates one, and its folder if needed; an existing file is
// checked first (check.go) and refused with a [*DamagedError] when it is
// not sound — an empty file included. It fails with an error wrapping
// ErrLocked when another process has the file open.
func Open(path string) (*Store, error) {
	return open(path, options{lockTimeout: defaultLockTimeout, migrations: migrations, checkBudget: defaultCheckBudget})
}

func open(path string, o options) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating store folder: %w", err)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := create(path); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.checkBudget)
	defer cancel()
	db, report, err := openChecked(ctx, path, &bolt.Options{
		Timeout: o.lockTimeout,
		// The freelist is written with each commit. Without it, opening
		// the store scans every page of the file, which is slow on a
		// long history and maps all of it into memory.
		FreelistType: bolt.FreelistMapType,
	}, false)
	if err != nil {
		return nil, err
	}
	if err := report.damaged(); err != nil {
		if db != nil {
			db.Close()
		}
		return nil, err
	}
	if err := db.Update(func(tx *bolt.Tx) error { return migrate(tx, o.migrations) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	s := &Store{
		path:   path,
		db:     db,
		report: *report,
		queue:  make(chan *commitRequest, maxGroup),
		done:   make(chan struct{}),
		feed:   newFeed(time.Now()),
	}
	if err := s.loadApplied(); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	go s.writeLoop()
	return s, nil
}

// create makes a new, empty store file at path in one step: bbolt writes
// its first pages to a temporary file, which is then linked to path. A
// crash or a full disk meanwhile leaves no file at path rather than an
// empty one, which Open would refuse. Of two processes creating it at
// once, one links its file and the other opens that one.
func create(path string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".new-*")
	if err != nil {
		return fmt.Errorf("creating store %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Close(); err != nil {
		return fmt.Errorf("creating store %s: %w", path, err)
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		return fmt.Errorf("creating store %s: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("creating store %s: %w", path, err)
	}
	if err := os.Link(tmp, path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating store %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("creating store %s: %w", path, err)
	}
	return nil
}

// syncDir makes the names created in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	return nil
}

// OpenCheck reports the check Open ran on the file.
func (s *Store) OpenCheck() CheckReport { return s.report }

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Close stops accepting commits, waits for the queued ones to be written
// and closes the file. Calling it again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()

	<-s.done
	s.feed.close()
	if s.db.NoSync {
		if err := s.db.Sync(); err != nil {
			s.db.Close()
			return fmt.Errorf("closing store %s: %w", s.path, err)
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing store %s: %w", s.path, err)
	}
	return nil
}

// Stats counts the store's work since Open.
type Stats struct {
	Transactions  uint64 // write transactions committed
	Batches       uint64 // batches committed; Batches/Transactions is the group size
	FailedBatches uint64 // batches refused or lost to a failed transaction
}

// Stats returns counters of the work done since Open.
func (s *Store) Stats() Stats {
	return Stats{
		Transactions:  s.stats.txs.Load(),
		Batches:       s.stats.batches.Load(),
		FailedBatches: s.stats.failed.Load(),
	}
}

// view runs fn in a read transaction. A panic in it — bbolt's, on a page
// damaged after Open checked the file or past its time budget — becomes
// an error.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	err := guard(func() error { return s.db.View(fn) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	if errors.Is(err, ErrDamaged) {
		return fmt.Errorf("reading store %s: %w (stop kiln and run kiln db check)", s.path, err)
	}
	return err
}
