// Package uitest provides a fake ui.Backend for tests of the HTTP API and
// of its clients (the CLI), until tests can run the real scheduler.
//
// The fake keeps its data in a real store (store.Open on a temporary file)
// and real DAGs (dag.Parse); what it does not do is schedule. Trigger
// creates a queued run with a task instance per task, Clear resets task
// instances to none, MarkRun and MarkTasks set states as the scheduler
// does, Backfill plans like the scheduler and starts queued runs, and
// nothing moves on by itself: tests change states with Commit and
// SetBackfillRun, write logs with AppendLog and end tries with FinishTry
// or by committing their end.
package uitest

import (
	"context"
	"errors"
	"fmt"
	"github.com/kilnhq/kiln/scheduler"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/dag/timetable"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// Catalog knows the built-in plugin names and accepts any parameters.
var Catalog = dag.MapCatalog{
	"shell":       {Name: "shell"},
	"http":        {Name: "http"},
	"python":      {Name: "python"},
	"notify":      {Name: "notify"},
	"file_sensor": {Name: "file_sensor", Sensor: true},
}

// Backend is a fake ui.Backend. Its methods are safe for concurrent use.
type Backend struct {
	t      testing.TB
	st     *store.Store
	logDir string

	mu        sync.Mutex
	dags      map[string]*scheduler.DAGInfo
	imports   []dag.ImportError
	finished  map[wire.TryKey]bool
	health    error
	now       func() time.Time
	onTrigger func(*store.Run)

	// bfMu serialises the backfill operations, as the scheduler's loop
	// does, so that "one active backfill per DAG" holds.
	bfMu         sync.Mutex
	nextBackfill int

	// Calls made to the operations, for assertions.
	Triggers        []scheduler.TriggerRequest
	Clears          []scheduler.ClearRequest
	Marks           []Mark
	Backfills       []scheduler.BackfillRequest
	CancelBackfills []string
}

var _ ui.Backend = (*Backend)(nil)

// New returns a fake backend with an empty store in a temporary folder and
// the DAGs parsed from the given YAML documents. The store is closed when
// the test ends.
func New(t testing.TB, dagFiles ...string) *Backend {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatalf("opening store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	b := &Backend{
		t:        t,
		st:       st,
		logDir:   filepath.Join(dir, "logs"),
		dags:     map[string]*scheduler.DAGInfo{},
		finished: map[wire.TryKey]bool{},
		now:      time.Now,
	}
	for i, src := range dagFiles {
		b.AddDAG(fmt.Sprintf("dag%d.yaml", i), src)
	}
	return b
}

// AddDAG parses a DAG file's content and adds (or replaces) the DAG. A
// scheduled DAG gets the next data interval from now.
func (b *Backend) AddDAG(file, src string) *dag.DAG {
	b.t.Helper()
	g, err := dag.Parse(file, []byte(src), dag.Options{Plugins: Catalog})
	if err != nil {
		b.t.Fatalf("parsing DAG %s: %v", file, err)
	}
	info := &scheduler.DAGInfo{DAG: g, Paused: g.Paused, File: filepath.Base(g.File)}
	if g.Timetable != nil {
		if iv, ok := g.Timetable.AtOrAfter(b.now()); ok {
			info.NextDataInterval = &timetable.Interval{Start: iv.Start, End: iv.End}
		}
	}
	b.mu.Lock()
	b.dags[g.ID] = info
	b.mu.Unlock()
	return g
}

// SetImportErrors sets what ImportErrors returns and marks DAGs stale.
func (b *Backend) SetImportErrors(ies []dag.ImportError, stale ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.imports = ies
	for _, id := range stale {
		if info := b.dags[id]; info != nil {
			info.Stale = true
		}
	}
}

// SetHealth sets what Health returns.
func (b *Backend) SetHealth(err error) {
	b.mu.Lock()
	b.health = err
	b.mu.Unlock()
}

// SetNow sets the clock Trigger reads for a run without a logical date.
func (b *Backend) SetNow(now func() time.Time) {
	b.mu.Lock()
	b.now = now
	b.mu.Unlock()
}

// OnTrigger sets a function called with every run Trigger creates, after it
// is committed; tests use it to play the scheduler.
func (b *Backend) OnTrigger(fn func(*store.Run)) {
	b.mu.Lock()
	b.onTrigger = fn
	b.mu.Unlock()
}

// Commit commits whatever fill adds to a batch, failing the test on error.
func (b *Backend) Commit(fill func(*store.Batch)) {
	b.t.Helper()
	var batch store.Batch
	fill(&batch)
	if err := b.st.Commit(context.Background(), &batch); err != nil {
		b.t.Errorf("committing to the store: %v", err)
	}
}

// AppendLog appends data to a try's log file, creating it if needed.
func (b *Backend) AppendLog(k wire.TryKey, data string) {
	b.t.Helper()
	path := b.LogPath(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		b.t.Fatal(err)
	}
}

// FinishTry makes TryFinished true for k.
func (b *Backend) FinishTry(k wire.TryKey) {
	b.mu.Lock()
	b.finished[k] = true
	b.mu.Unlock()
}

// Trigger implements ui.Backend: it creates a queued manual run with one
// task instance in state none per task.
func (b *Backend) Trigger(ctx context.Context, dagID string, req scheduler.TriggerRequest) (*store.Run, error) {
	b.mu.Lock()
	b.Triggers = append(b.Triggers, req)
	info, ok := b.dags[dagID]
	now, hook := b.now(), b.onTrigger
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("DAG %q: %w", dagID, scheduler.ErrNotFound)
	}
	g := info.DAG
	params, err := g.ResolveParams(req.Params)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", scheduler.ErrInvalid, err)
	}
	date := now.UTC().Truncate(time.Second)
	if req.LogicalDate != nil {
		date = req.LogicalDate.UTC()
	}
	if _, err := b.st.RunAt(dagID, date); err == nil {
		return nil, fmt.Errorf("DAG %s already has a run at %s: %w", dagID, date.Format(time.RFC3339), scheduler.ErrConflict)
	}
	run := &store.Run{
		DAGID:             dagID,
		RunID:             store.RunTypeManual + "__" + date.Format(time.RFC3339),
		RunType:           store.RunTypeManual,
		State:             store.RunQueued,
		LogicalDate:       date,
		DataIntervalStart: date,
		DataIntervalEnd:   date,
		QueuedAt:          now.UTC(),
		Params:            params,
		DAGHash:           g.Hash,
	}
	var batch store.Batch
	batch.PutRun(run)
	for _, t := range g.Tasks {
		batch.PutTaskInstance(&store.TaskInstance{
			DAGID: dagID, RunID: run.RunID, TaskID: t.ID, State: store.TaskNone,
			MaxTries: t.Retries + 1, Queue: t.Queue, Pool: t.Pool, PoolSlots: t.PoolSlots, Priority: t.Priority,
		})
	}
	if err := b.st.Commit(ctx, &batch); err != nil {
		return nil, err
	}
	if hook != nil {
		hook(run)
	}
	return run, nil
}

// Clear implements ui.Backend: it sets the chosen task instances back to
// none.
func (b *Backend) Clear(ctx context.Context, dagID, runID string, req scheduler.ClearRequest) ([]string, error) {
	b.mu.Lock()
	b.Clears = append(b.Clears, req)
	b.mu.Unlock()
	if _, err := b.st.GetRun(dagID, runID); err != nil {
		return nil, fmt.Errorf("run %s of %s: %w", runID, dagID, scheduler.ErrNotFound)
	}
	tis, err := b.st.TaskInstances(dagID, runID)
	if err != nil {
		return nil, err
	}
	for _, id := range req.Tasks {
		if !slices.ContainsFunc(tis, func(ti *store.TaskInstance) bool { return ti.TaskID == id }) {
			return nil, fmt.Errorf("%w: run %s has no task %q", scheduler.ErrInvalid, runID, id)
		}
	}
	cleared := []string{}
	var batch store.Batch
	for _, ti := range tis {
		if len(req.Tasks) > 0 && !slices.Contains(req.Tasks, ti.TaskID) {
			continue
		}
		if req.OnlyFailed && ti.State != store.TaskFailed && ti.State != store.TaskUpstreamFailed {
			continue
		}
		ti.State = store.TaskNone
		batch.PutTaskInstance(ti)
		cleared = append(cleared, ti.TaskID)
	}
	return cleared, b.st.Commit(ctx, &batch)
}

// SetPaused implements ui.Backend.
func (b *Backend) SetPaused(_ context.Context, dagID string, paused bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	info, ok := b.dags[dagID]
	if !ok {
		return fmt.Errorf("DAG %q: %w", dagID, scheduler.ErrNotFound)
	}
	info.Paused = paused
	return nil
}

// SetPool implements ui.Backend.
func (b *Backend) SetPool(ctx context.Context, name string, slots int) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("%w: empty pool name", scheduler.ErrInvalid)
	}
	var batch store.Batch
	batch.PutPool(store.Pool{Name: name, Slots: slots})
	return b.st.Commit(ctx, &batch)
}

// DeletePool implements ui.Backend; default_pool cannot be deleted.
func (b *Backend) DeletePool(ctx context.Context, name string) error {
	if name == store.DefaultPool {
		return fmt.Errorf("%w: %s always exists (set its slots instead)", scheduler.ErrInvalid, name)
	}
	if _, err := b.st.GetPool(name); errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("pool %q: %w", name, scheduler.ErrNotFound)
	}
	var batch store.Batch
	batch.DeletePool(name)
	return b.st.Commit(ctx, &batch)
}

// DAGs implements ui.Backend.
func (b *Backend) DAGs() []scheduler.DAGInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]scheduler.DAGInfo, 0, len(b.dags))
	for _, info := range b.dags {
		out = append(out, *info)
	}
	slices.SortFunc(out, func(x, y scheduler.DAGInfo) int { return strings.Compare(x.DAG.ID, y.DAG.ID) })
	return out
}

// DAG implements ui.Backend.
func (b *Backend) DAG(id string) (scheduler.DAGInfo, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	info, ok := b.dags[id]
	if !ok {
		return scheduler.DAGInfo{}, false
	}
	return *info, true
}

// ImportErrors implements ui.Backend.
func (b *Backend) ImportErrors() []dag.ImportError {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.imports)
}

// Store implements ui.Backend.
func (b *Backend) Store() *store.Store { return b.st }

// LogPath implements ui.Backend: logs/DAG/RUN/TASK/TRY.log in the test's
// temporary folder.
func (b *Backend) LogPath(k wire.TryKey) string {
	return filepath.Join(b.logDir, k.DAGID, strings.ReplaceAll(k.RunID, ":", "_"), k.TaskID, fmt.Sprintf("%d.log", k.Try))
}

// TryFinished implements ui.Backend: true after FinishTry, or once the
// store holds the try in an end state, as the scheduler decides it (a test
// that commits a try's end has finished writing its log).
func (b *Backend) TryFinished(k wire.TryKey) bool {
	b.mu.Lock()
	finished := b.finished[k]
	b.mu.Unlock()
	if finished {
		return true
	}
	t, err := b.st.GetTry(k.DAGID, k.RunID, k.TaskID, k.Try)
	return err == nil && t.State != store.TaskQueued && t.State != store.TaskRunning
}

// Health implements ui.Backend.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.health
}
