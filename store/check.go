package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// A store file can be damaged by a disk, a file system or a person: cut
// short, pages zeroed, bytes flipped. bbolt keeps no checksum of its data
// pages; it trusts them, and on a damaged one it panics or reads outside
// its memory map. So the file is checked before it is used
// (docs/operations.md#damaged-or-full-data-folder):
//
//   - the header: both meta pages, and a file as long as they say
//     (checkHeader, before bbolt maps the file);
//   - the tree: every key of every bucket, in order, on pages that are
//     what their parent says (a cursor walk, panics and faults recovered);
//     the buckets the schema version needs;
//   - the values: each decodes as what its bucket holds (JSON of a Run, a
//     12-byte time, ...), as reads will decode it;
//   - and, in the full check only, bbolt's own [bolt.Tx.Check]: every page
//     reachable once or free, the free list consistent.
//
// Open runs the first three within a time budget, in the order of
// layout, the tree before the values. Measured on the 2-core build
// machine on a 1 GB store of 100,000 runs of 5 tasks (1.4 M keys), in CPU
// time (the machine was shared; wall time was 2-4 times more): the tree
// walk 1.6-2.0 s, most of it the first touch of each page of the memory
// map; decoding the values about 10 s; bbolt's check 0.5-0.7 s once the
// pages are mapped. So the budget covers the tree of a store of up to
// about 1 GB and the values of one of up to about 150 MB; past that Open
// checks what a restart reads first, and says the check was partial.
// [Check] runs all four with no budget, for `kiln db check`: 72 s wall
// for that store on the shared machine.

// ErrDamaged is wrapped by Open's error for a store file that is not
// sound (a [DamagedError] says why), and by the errors of reads and
// commits that meet a damaged page later.
var ErrDamaged = errors.New("damaged")

// DamagedError reports a store file that Kiln will not use, and why.
type DamagedError struct {
	Path     string
	Problems []string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("store %s is damaged: %s", e.Path, strings.Join(e.Problems, "; "))
}

// Unwrap makes errors.Is(err, ErrDamaged) true.
func (e *DamagedError) Unwrap() error { return ErrDamaged }

// defaultCheckBudget bounds the check Open runs. Small stores are checked
// whole in a fraction of it.
const defaultCheckBudget = 2 * time.Second

// maxProblems is how many problems a check lists; the rest are counted.
const maxProblems = 20

// CheckReport says what a check of a store file looked at and what it
// found; a sound file has no Problems.
type CheckReport struct {
	Path     string
	Size     int64  // bytes
	Pages    uint64 // pages in use
	PageSize uint64
	Buckets  int // buckets walked
	Keys     int // keys walked
	Values   int // values decoded
	// Partial is true when the time budget ran out before the check had
	// walked every key and decoded every value.
	Partial bool
	// BoltChecked is true when bbolt's own page and free list check ran
	// (the full check only).
	BoltChecked bool
	// Problems lists what is wrong, at most maxProblems of them and then
	// how many more there are.
	Problems []string
	Elapsed  time.Duration
	dropped  int // problems found past maxProblems
}

// String sums the report up in one line.
func (r *CheckReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d bytes, %d pages of %d bytes; %d buckets, %d keys walked, %d values decoded",
		r.Path, r.Size, r.Pages, r.PageSize, r.Buckets, r.Keys, r.Values)
	if r.BoltChecked {
		b.WriteString(", bbolt page check run")
	}
	if r.Partial {
		b.WriteString(" (partial: the time budget ran out)")
	}
	fmt.Fprintf(&b, " in %v", r.Elapsed.Round(time.Millisecond))
	return b.String()
}

// problem records one problem, or counts it past maxProblems.
func (r *CheckReport) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
		return
	}
	r.dropped++
}

// damaged returns the report's problems as a *DamagedError, or nil.
func (r *CheckReport) damaged() error {
	if len(r.Problems) == 0 {
		return nil
	}
	return &DamagedError{Path: r.Path, Problems: r.Problems}
}

// Check runs the full check of the store file at path: header, tree,
// values and bbolt's page check, with no time budget. It opens the file
// read-only, and fails with an error wrapping ErrLocked while another
// process (a kiln server) has it open, or fs.ErrNotExist when there is no
// file; a damaged file is not an error but a report with problems. ctx
// stops the check between keys.
func Check(ctx context.Context, path string) (*CheckReport, error) {
	// The free list is read at open, where a panic on it is recovered,
	// rather than in bbolt's check.
	db, r, err := openChecked(ctx, path, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: defaultLockTimeout}, true)
	if db != nil {
		db.Close()
	}
	return r, err
}

// openChecked checks the header of the file at path, opens it with opts
// and checks the tree and values until ctx's deadline, then (full) runs
// bbolt's page check. Problems go to the report; the error is for what
// is not the file's fault: no file, a lock held, ctx canceled. The
// database is returned open, even with problems, unless bbolt could not
// open it.
func openChecked(ctx context.Context, path string, opts *bolt.Options, full bool) (*bolt.DB, *CheckReport, error) {
	start := time.Now()
	r := &CheckReport{Path: path}
	defer func() {
		r.Elapsed = time.Since(start)
		if r.dropped > 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("and %d more problems", r.dropped))
		}
	}()
	m, problems, err := checkHeader(path)
	if err != nil {
		return nil, nil, err
	}
	r.describe(m, path)
	for _, p := range problems {
		r.problem("%s", p)
	}
	if len(problems) > 0 {
		return nil, r, nil
	}
	db, err := openBolt(path, opts)
	if errors.Is(err, ErrDamaged) {
		r.problem("%v", err)
		return nil, r, nil
	}
	if err != nil {
		return nil, nil, err
	}
	err = guard(func() error {
		return db.View(func(tx *bolt.Tx) error {
			if err := r.walk(ctx, tx); err != nil || !full || len(r.Problems) > 0 {
				// With problems found, bbolt's check is not run: a
				// damaged page could send it outside the memory map, in
				// a goroutine where that cannot be recovered.
				return err
			}
			for err := range tx.Check() {
				r.problem("bbolt page check: %v", err)
			}
			r.BoltChecked = true
			return nil
		})
	})
	if errors.Is(err, ErrDamaged) {
		r.problem("%v", err)
	} else if err != nil {
		db.Close()
		return nil, nil, err
	}
	return db, r, nil
}

// describe fills in the file's size and pages.
func (r *CheckReport) describe(m meta, path string) {
	r.Pages, r.PageSize = m.pages, m.pageSize
	if st, err := os.Stat(path); err == nil {
		r.Size = st.Size()
	}
}

// walk checks the tree, then the values, until ctx ends. Past ctx's
// deadline (Open's budget) the report is Partial; it returns ctx's error
// when ctx was canceled.
func (r *CheckReport) walk(ctx context.Context, tx *bolt.Tx) error {
	err := r.walkTree(ctx, tx)
	if err == nil && len(r.Problems) == 0 {
		err = r.walkValues(ctx, tx)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		r.Partial = true
		return nil
	}
	return err
}

// bucketLayout is one bucket of the store (store.go), with the schema
// version that created it and what its values hold.
type bucketLayout struct {
	name  []byte
	since uint64
	value func(v []byte) error
}

// layout lists every bucket, in the order a check walks them: what a
// restart reads first, the history last, so that Open's time budget
// covers the former on any store. TestLayoutMatchesMigrations keeps it
// in step with the migrations.
var layout = []bucketLayout{
	{bucketMeta, 0, fixedLen(8)},
	{bucketActiveRuns, 1, fixedLen(0)},
	{bucketOpenCallbacks, 3, fixedLen(0)},
	{bucketDAGStates, 1, decodes[DAGState]},
	{bucketPools, 1, decodes[Pool]},
	{bucketBackfills, 2, decodes[Backfill]},
	{bucketUsers, 4, decodes[User]},
	{bucketTokens, 4, decodes[Token]},
	{bucketSessions, 4, decodes[Session]},
	{bucketDAGVersions, 5, decodes[DAGVersion]},
	{bucketDAGVersionsByDAG, 5, fixedLen(0)},
	{bucketDAGVersionsByFile, 5, fixedLen(0)},
	{bucketCache, 6, decodes[CacheEntry]},
	{bucketCacheByTask, 6, fixedLen(0)},
	{bucketArtifactRefs, 6, fixedLen(timeLen)},
	{bucketDatasetQueue, 7, decodes[[]DatasetEvent]},
	{bucketDatasets, 7, decodes[Dataset]},
	{bucketRunCounts, 1, fixedLen(8)},
	{bucketRunIDs, 1, fixedLen(timeLen)},
	{bucketRunInfo, 1, runInfoValue},
	{bucketRunsByQueued, 1, runInfoValue},
	{bucketRuns, 1, decodes[Run]},
	{bucketTaskInstances, 1, decodes[TaskInstance]},
	{bucketTries, 1, decodes[Try]},
	{bucketDAGSources, 5, minLen(1)},
	{bucketDatasetEvents, 7, decodes[DatasetEvent]},
}

func decodes[T any](v []byte) error {
	var x T
	return json.Unmarshal(v, &x)
}

func minLen(n int) func([]byte) error {
	return func(v []byte) error {
		if len(v) < n {
			return fmt.Errorf("%d bytes, want at least %d", len(v), n)
		}
		return nil
	}
}

func fixedLen(n int) func([]byte) error {
	return func(v []byte) error {
		if len(v) != n {
			return fmt.Errorf("%d bytes, want %d", len(v), n)
		}
		return nil
	}
}

func runInfoValue(v []byte) error {
	if _, ok := decodeRunInfo(v); !ok {
		return errors.New("not a run summary")
	}
	return nil
}

// walkTree walks every key of every bucket: the cursor reads every page
// of the tree and bbolt checks that each is the page its parent points to
// (a panic otherwise, recovered here). Keys must be in strictly
// increasing order, no Kiln bucket holds a nested bucket, and the buckets
// of the file's schema version are there.
func (r *CheckReport) walkTree(ctx context.Context, tx *bolt.Tx) error {
	var (
		names  [][]byte
		schema uint64
	)
	if perr := guard(func() error {
		c := tx.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v != nil {
				r.problem("the root holds a key that is not a bucket: %s", quoteKey(k))
				continue
			}
			names = append(names, bytes.Clone(k))
		}
		if meta := tx.Bucket(bucketMeta); meta != nil {
			schema = readU64(meta.Get(metaSchemaVersion))
		}
		return nil
	}); perr != nil {
		r.problem("the root bucket: %v", perr)
		return nil
	}
	// A new file has no bucket yet; Open's migrations make them.
	fresh := len(names) == 0
	order := make([][]byte, 0, len(names))
	for _, l := range layout {
		i := slices.IndexFunc(names, func(n []byte) bool { return bytes.Equal(n, l.name) })
		switch {
		case i >= 0:
			order = append(order, names[i])
			names = slices.Delete(names, i, i+1)
		case l.since <= schema && !fresh:
			r.problem("bucket %s is missing (schema version %d has it)", l.name, schema)
		}
	}
	for _, name := range append(order, names...) {
		r.Buckets++
		var last []byte
		perr := guard(func() error {
			c := tx.Bucket(name).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				r.Keys++
				if r.Keys%256 == 0 && ctx.Err() != nil {
					return ctx.Err()
				}
				if last != nil && bytes.Compare(last, k) >= 0 {
					r.problem("bucket %s: key %s after %s: out of order", name, quoteKey(k), quoteKey(last))
				}
				last = k
				if v == nil {
					r.problem("bucket %s: key %s holds a nested bucket; Kiln stores none", name, quoteKey(k))
				}
			}
			return nil
		})
		if errors.Is(perr, ErrDamaged) {
			at := "at its first key"
			if last != nil {
				at = "after key " + quoteKey(last)
			}
			r.problem("bucket %s, %s: %v", name, at, perr)
		} else if perr != nil {
			return perr
		}
	}
	return nil
}

// walkValues decodes every value of the buckets Kiln knows.
func (r *CheckReport) walkValues(ctx context.Context, tx *bolt.Tx) error {
	for _, l := range layout {
		b := tx.Bucket(l.name)
		if b == nil {
			continue
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if r.Values%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			r.Values++
			if err := l.value(v); err != nil {
				r.problem("bucket %s, key %s: the value does not decode: %v", l.name, quoteKey(k), err)
			}
		}
	}
	return nil
}

// quoteKey prints a key for a message: Go-quoted, at most 80 bytes of it.
func quoteKey(k []byte) string {
	const max = 80
	if len(k) > max {
		return fmt.Sprintf("%q…", k[:max])
	}
	return fmt.Sprintf("%q", k)
}

// guard runs fn, turning a panic into an error wrapping ErrDamaged. bbolt
// panics on a page that is not what its parent says; a page number past
// the end of the file makes it read outside its memory map, which
// SetPanicOnFault turns from a fatal fault into a panic.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, p)
		}
	}()
	return fn()
}

// openBolt opens path with bbolt, guarded: on a panic it closes the file
// bbolt had opened, which lets go of the lock.
func openBolt(path string, opts *bolt.Options) (*bolt.DB, error) {
	var f *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, perm)
		return f, err
	}
	var db *bolt.DB
	err := guard(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, opts)
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("store %s is %w (waited %v for its lock)", path, ErrLocked, opts.Timeout)
	case errors.Is(err, ErrDamaged):
		if f != nil {
			f.Close()
		}
		return nil, fmt.Errorf("opening: %w", err)
	case err != nil:
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	return db, nil
}
