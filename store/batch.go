package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A Batch collects writes to commit together with [Store.Commit]: all of
// them or none. Values are encoded when they are added, so the caller may
// change a value after adding it. Writes apply in the order they were added.
// The zero value is an empty batch; a Batch is not safe for concurrent use
// and must not be changed while Commit runs.
type Batch struct {
	ops []op
	err error
}

// An op is one write. Its apply runs in a write transaction and reports
// whether it changed what was stored; it must not modify the slices it
// captured: bbolt keeps them until the transaction ends, and a transaction
// that fails is retried with the same ops. change is what the change feed
// publishes once the write is committed, if it changed anything (feed.go);
// its Kind is empty for writes the feed does not carry.
type op struct {
	apply  func(tx *bolt.Tx) (changed bool, err error)
	change Change
}

// Len returns the number of writes in the batch.
func (b *Batch) Len() int { return len(b.ops) }

// Err returns the first error met while adding writes (an invalid id, a
// value that does not encode); Commit returns it too and writes nothing.
func (b *Batch) Err() error { return b.err }

// Grow makes room for n more writes.
func (b *Batch) Grow(n int) { b.ops = slices.Grow(b.ops, n) }

// Reset empties the batch for reuse.
func (b *Batch) Reset() { *b = Batch{ops: b.ops[:0]} }

func (b *Batch) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

func (b *Batch) add(c Change, apply func(tx *bolt.Tx) (bool, error)) {
	if b.err == nil {
		b.ops = append(b.ops, op{apply: apply, change: c})
	}
}

// PutRun creates or updates a run and its indexes. It fails the batch with
// ErrConflict when the DAG already has another run at r.LogicalDate, or when
// r.RunID already names a run at another logical date.
func (b *Batch) PutRun(r *Run) {
	if err := checkRun(r); err != nil {
		b.fail(fmt.Errorf("putting run %s/%s: %w", r.DAGID, r.RunID, err))
		return
	}
	val, err := json.Marshal(r)
	if err != nil {
		b.fail(fmt.Errorf("encoding run %s/%s: %w", r.DAGID, r.RunID, err))
		return
	}
	w := runWrite{
		dagID:  r.DAGID,
		runID:  r.RunID,
		key:    runKey(r.DAGID, r.LogicalDate),
		val:    val,
		info:   encodeRunInfo(r),
		active: r.State == RunQueued || r.State == RunRunning,
	}
	b.add(Change{Kind: ChangeRun, DAGID: r.DAGID, RunID: r.RunID, State: string(r.State)}, w.apply)
}

func checkRun(r *Run) error {
	if err := checkID("DAG id", r.DAGID); err != nil {
		return err
	}
	if err := checkID("run id", r.RunID); err != nil {
		return err
	}
	if hasSep(string(r.State)) || hasSep(r.RunType) || hasSep(r.BackfillID) {
		return fmt.Errorf("%w: state, run type or backfill id contains a NUL byte", errBadID)
	}
	return nil
}

// DeleteRun deletes a run with its task instances and tries. Deleting a run
// that does not exist is not an error.
func (b *Batch) DeleteRun(dagID, runID string) {
	if err := firstErr(checkID("DAG id", dagID), checkID("run id", runID)); err != nil {
		b.fail(fmt.Errorf("deleting run %s/%s: %w", dagID, runID, err))
		return
	}
	b.add(Change{Kind: ChangeRun, DAGID: dagID, RunID: runID}, func(tx *bolt.Tx) (bool, error) {
		return deleteRun(tx, dagID, runID)
	})
}

// PutTaskInstance creates or updates a task instance. Its run must exist
// (added earlier in this batch or already committed); otherwise the batch
// fails with ErrNotFound, so a late event for a deleted run leaves nothing
// behind.
func (b *Batch) PutTaskInstance(ti *TaskInstance) {
	val, err := json.Marshal(ti)
	b.putTaskInstance(ti, val, err)
}

// parallelEncoding is the number of task instances from which
// PutTaskInstances encodes them on every CPU.
const parallelEncoding = 512

// PutTaskInstances puts task instances as PutTaskInstance does, in their
// order. Many (a mapped task's expansion) are encoded on every CPU at
// once: the writes of a batch are committed in one transaction, which
// waits for them all.
func (b *Batch) PutTaskInstances(tis []*TaskInstance) {
	vals, errs := make([][]byte, len(tis)), make([]error, len(tis))
	workers := min(runtime.GOMAXPROCS(0), (len(tis)+parallelEncoding-1)/parallelEncoding)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(tis); i += workers {
				vals[i], errs[i] = json.Marshal(tis[i])
			}
		})
	}
	wg.Wait()
	for i, ti := range tis {
		b.putTaskInstance(ti, vals[i], errs[i])
	}
}

// putTaskInstance adds the write of ti, encoded as val (or failed to
// encode with err).
func (b *Batch) putTaskInstance(ti *TaskInstance, val []byte, err error) {
	ik := ti.Key()
	what := func() string { return fmt.Sprintf("task instance %s/%s/%s", ti.DAGID, ti.RunID, ik) }
	if err := firstErr(checkID("DAG id", ti.DAGID), checkID("run id", ti.RunID), checkID("task id", ti.TaskID)); err != nil {
		b.fail(fmt.Errorf("putting %s: %w", what(), err))
		return
	}
	if err != nil {
		b.fail(fmt.Errorf("encoding %s: %w", what(), err))
		return
	}
	k := key(ti.DAGID, ti.RunID, ik)
	runID := key(ti.DAGID, ti.RunID)
	c := Change{Kind: ChangeTask, DAGID: ti.DAGID, RunID: ti.RunID, TaskID: ik, Try: ti.TryNumber, State: string(ti.State)}
	b.add(c, func(tx *bolt.Tx) (bool, error) {
		if tx.Bucket(bucketRunIDs).Get(runID) == nil {
			return false, fmt.Errorf("putting %s: run: %w", what(), ErrNotFound)
		}
		return putIfChanged(tx.Bucket(bucketTaskInstances), k, val)
	})
}

// PutTry creates or updates a try. Its run must exist, as for
// PutTaskInstance, and its number must be at least 1. A callback's try is
// listed by OpenCallbacks until it finishes.
func (b *Batch) PutTry(t *Try) {
	ik := t.Key()
	what := fmt.Sprintf("try %s/%s/%s/%d", t.DAGID, t.RunID, ik, t.Number)
	if err := firstErr(checkID("DAG id", t.DAGID), checkID("run id", t.RunID), checkID("task id", t.TaskID), checkTryNumber(t.Number)); err != nil {
		b.fail(fmt.Errorf("putting %s: %w", what, err))
		return
	}
	val, err := json.Marshal(t)
	if err != nil {
		b.fail(fmt.Errorf("encoding %s: %w", what, err))
		return
	}
	k := tryKey(t.DAGID, t.RunID, ik, t.Number)
	runID := key(t.DAGID, t.RunID)
	c := Change{Kind: ChangeTry, DAGID: t.DAGID, RunID: t.RunID, TaskID: ik, Try: t.Number, State: string(t.State)}
	b.add(c, func(tx *bolt.Tx) (bool, error) {
		if tx.Bucket(bucketRunIDs).Get(runID) == nil {
			return false, fmt.Errorf("putting %s: run: %w", what, ErrNotFound)
		}
		if t.Callback {
			if err := indexCallback(tx, k, t); err != nil {
				return false, err
			}
		}
		return putIfChanged(tx.Bucket(bucketTries), k, val)
	})
}

// PutDAGState creates or updates what the scheduler keeps about a DAG.
func (b *Batch) PutDAGState(st *DAGState) {
	if err := checkID("DAG id", st.DAGID); err != nil {
		b.fail(fmt.Errorf("putting DAG state %s: %w", st.DAGID, err))
		return
	}
	b.putJSON(Change{}, bucketDAGStates, []byte(st.DAGID), st, "DAG state "+st.DAGID)
}

// PutPool creates or resizes a pool.
func (b *Batch) PutPool(p Pool) {
	if err := checkID("pool name", p.Name); err != nil {
		b.fail(fmt.Errorf("putting pool %s: %w", p.Name, err))
		return
	}
	if p.Slots < 0 {
		b.fail(fmt.Errorf("putting pool %s: negative slots %d", p.Name, p.Slots))
		return
	}
	b.putJSON(Change{}, bucketPools, []byte(p.Name), p, "pool "+p.Name)
}

// DeletePool deletes a pool. Deleting default_pool returns it to
// DefaultPoolSlots; deleting a missing pool is not an error.
func (b *Batch) DeletePool(name string) {
	if err := checkID("pool name", name); err != nil {
		b.fail(fmt.Errorf("deleting pool %s: %w", name, err))
		return
	}
	k := []byte(name)
	b.add(Change{}, func(tx *bolt.Tx) (bool, error) {
		if err := del(tx.Bucket(bucketPools), k); err != nil {
			return false, fmt.Errorf("deleting pool %s: %w", name, err)
		}
		return true, nil
	})
}

// putJSON puts the JSON of v at k in bucket; c is its change for the feed.
func (b *Batch) putJSON(c Change, bucket, k []byte, v any, what string) {
	val, err := json.Marshal(v)
	if err != nil {
		b.fail(fmt.Errorf("encoding %s: %w", what, err))
		return
	}
	b.add(c, func(tx *bolt.Tx) (bool, error) {
		changed, err := putIfChanged(tx.Bucket(bucket), k, val)
		if err != nil {
			return false, fmt.Errorf("putting %s: %w", what, err)
		}
		return changed, nil
	})
}

// putIfChanged writes k unless it already holds exactly val, which spares
// the pages of an unchanged value from being copied and written. It
// reports whether it wrote.
func putIfChanged(bk *bolt.Bucket, k, val []byte) (bool, error) {
	if old := bk.Get(k); old != nil && bytes.Equal(old, val) {
		return false, nil
	}
	return true, put(bk, k, val)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// runWrite is an encoded PutRun.
type runWrite struct {
	dagID, runID string
	key          []byte // runKey
	val          []byte // JSON
	info         []byte // summary, see encodeRunInfo
	active       bool
}

func (w *runWrite) apply(tx *bolt.Tx) (bool, error) {
	runs := tx.Bucket(bucketRuns)
	ids := tx.Bucket(bucketRunIDs)
	infos := tx.Bucket(bucketRunInfo)
	byQueued := tx.Bucket(bucketRunsByQueued)

	date := w.key[len(w.key)-timeLen:]
	idKey := key(w.dagID, w.runID)
	if prev := ids.Get(idKey); prev != nil && !bytes.Equal(prev, date) {
		return false, fmt.Errorf("putting run %s/%s: it has logical date %s: %w",
			w.dagID, w.runID, decodeTime(prev).Format(time.RFC3339Nano), ErrConflict)
	}
	old := runs.Get(w.key)
	if old != nil && bytes.Equal(old, w.val) {
		return false, nil
	}
	if old != nil {
		oi, ok := decodeRunInfo(infos.Get(w.key))
		if !ok {
			return false, fmt.Errorf("putting run %s/%s: corrupt run_info entry", w.dagID, w.runID)
		}
		if string(oi.runID) != w.runID {
			return false, fmt.Errorf("putting run %s/%s: logical date %s already has run %s: %w",
				w.dagID, w.runID, decodeTime(date).Format(time.RFC3339Nano), oi.runID, ErrConflict)
		}
		if !bytes.Equal(oi.queuedAt, w.info[:timeLen]) {
			if err := del(byQueued, queuedKey(oi.queuedAt, w.key)); err != nil {
				return false, fmt.Errorf("putting run %s/%s: %w", w.dagID, w.runID, err)
			}
		}
	} else {
		if err := firstErr(put(ids, idKey, date), addRunCount(tx, w.dagID, 1)); err != nil {
			return false, fmt.Errorf("putting run %s/%s: %w", w.dagID, w.runID, err)
		}
	}
	active := tx.Bucket(bucketActiveRuns)
	setActive := del(active, w.key)
	if w.active {
		setActive = put(active, w.key, []byte{})
	}
	err := firstErr(
		put(runs, w.key, w.val),
		put(infos, w.key, w.info),
		put(byQueued, queuedKey(w.info[:timeLen], w.key), w.info),
		setActive,
	)
	if err != nil {
		return false, fmt.Errorf("putting run %s/%s: %w", w.dagID, w.runID, err)
	}
	return true, nil
}

// queuedKey is the runs_by_queued key of a run: time(queued_at) runKey. It
// is a fresh slice: appending to a slice bbolt returned could write into
// the read-only memory map.
func queuedKey(queuedAt, runKey []byte) []byte {
	k := make([]byte, 0, len(queuedAt)+len(runKey))
	return append(append(k, queuedAt...), runKey...)
}

func deleteRun(tx *bolt.Tx, dagID, runID string) (bool, error) {
	idKey := key(dagID, runID)
	date := tx.Bucket(bucketRunIDs).Get(idKey)
	if date == nil {
		return false, nil
	}
	k := append(prefix(dagID), date...)
	infos := tx.Bucket(bucketRunInfo)
	oi, ok := decodeRunInfo(infos.Get(k))
	if !ok {
		return false, fmt.Errorf("deleting run %s/%s: corrupt run_info entry", dagID, runID)
	}
	qk := queuedKey(oi.queuedAt, k)
	err := firstErr(
		del(tx.Bucket(bucketRunsByQueued), qk),
		del(infos, k),
		del(tx.Bucket(bucketRuns), k),
		del(tx.Bucket(bucketActiveRuns), k),
		del(tx.Bucket(bucketRunIDs), idKey),
		addRunCount(tx, dagID, -1),
		deletePrefix(tx.Bucket(bucketTaskInstances), prefix(dagID, runID)),
		deletePrefix(tx.Bucket(bucketTries), prefix(dagID, runID)),
	)
	if err != nil {
		return false, fmt.Errorf("deleting run %s/%s: %w", dagID, runID, err)
	}
	return true, nil
}

// deletePrefix deletes every key that starts with p. It collects the keys
// first: deleting under a moving cursor can skip entries.
func deletePrefix(bk *bolt.Bucket, p []byte) error {
	var keys [][]byte
	c := bk.Cursor()
	for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := del(bk, k); err != nil {
			return err
		}
	}
	return nil
}

// addRunCount adds delta to the run counters of the DAG and of all DAGs.
func addRunCount(tx *bolt.Tx, dagID string, delta int) error {
	add := func(bk *bolt.Bucket, k []byte) error {
		n := int64(readU64(bk.Get(k))) + int64(delta)
		if n <= 0 {
			return del(bk, k)
		}
		return put(bk, k, u64(uint64(n)))
	}
	return firstErr(
		add(tx.Bucket(bucketRunCounts), []byte(dagID)),
		add(tx.Bucket(bucketMeta), metaRunCount),
	)
}
