package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

func TestConcurrentCommitsAndReads(t *testing.T) {
	s := openTest(t)
	const writers, perWriter = 16, 40
	commit(t, s, func(b *Batch) {
		for w := range writers {
			b.PutRun(newRun(fmt.Sprintf("dag%02d", w), day(1), RunRunning))
		}
	})
	before := s.Stats()

	var (
		wg, readers sync.WaitGroup
		stop        atomic.Bool
		readErr     atomic.Value
	)
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for !stop.Load() {
				r, err := s.GetRun("dag03", newRun("dag03", day(1), RunRunning).RunID)
				if err == nil {
					_, err = s.TaskInstances(r.DAGID, r.RunID)
				}
				if err == nil {
					_, _, err = s.ListRuns(RunQuery{Limit: 5})
				}
				if err == nil {
					_, err = s.ActiveRuns()
				}
				if err != nil {
					readErr.Store(err)
					return
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := newRun(fmt.Sprintf("dag%02d", w), day(1), RunRunning)
			for i := range perWriter {
				var b Batch
				task := fmt.Sprintf("task%03d", i)
				b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: run.DAGID, RunID: run.RunID, TaskID: task, State: TaskRunning, TryNumber: 1})
				b.PutTry(&Try{MapIndex: NoMapIndex, DAGID: run.DAGID, RunID: run.RunID, TaskID: task, Number: 1, State: TaskRunning})
				if err := s.Commit(context.Background(), &b); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	readers.Wait()
	if err := readErr.Load(); err != nil {
		t.Fatalf("reader: %v", err)
	}

	for w := range writers {
		run := newRun(fmt.Sprintf("dag%02d", w), day(1), RunRunning)
		tis, err := s.TaskInstances(run.DAGID, run.RunID)
		if err != nil || len(tis) != perWriter {
			t.Errorf("%s: %d task instances, %v; want %d", run.DAGID, len(tis), err, perWriter)
		}
		for _, ti := range tis {
			if tries, _ := s.Tries(run.DAGID, run.RunID, ti.TaskID); len(tries) != 1 {
				t.Errorf("%s/%s: %d tries, want 1", run.DAGID, ti.TaskID, len(tries))
			}
		}
	}
	st := s.Stats()
	batches, txs := st.Batches-before.Batches, st.Transactions-before.Transactions
	if batches != writers*perWriter {
		t.Errorf("committed %d batches, want %d", batches, writers*perWriter)
	}
	t.Logf("%d batches in %d transactions", batches, txs)
}

// TestFailedBatchLeftOut commits a group by hand, so that the failing batch
// surely shares its transaction with the others.
func TestFailedBatchLeftOut(t *testing.T) {
	s := openTest(t)
	var ok1, bad, ok2 Batch
	ok1.PutRun(newRun("etl", day(1), RunQueued))
	ok1.PutPool(Pool{Name: "one", Slots: 1})
	bad.PutPool(Pool{Name: "bad", Slots: 1})
	bad.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: "missing", TaskID: "t"})
	ok2.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: newRun("etl", day(1), RunQueued).RunID, TaskID: "t"})

	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	var late Batch
	late.PutPool(Pool{Name: "late", Slots: 1})

	reqs := []*commitRequest{
		{ctx: ctx, ops: ok1.ops, done: make(chan error, 1)},
		{ctx: ctx, ops: bad.ops, done: make(chan error, 1)},
		{ctx: canceled, ops: late.ops, done: make(chan error, 1)},
		{ctx: ctx, ops: ok2.ops, done: make(chan error, 1)}, // needs ok1's run
	}
	before := s.Stats()
	s.commitGroup(reqs)

	wantErrs := []error{nil, ErrNotFound, context.Canceled, nil}
	for i, r := range reqs {
		if err := <-r.done; !errors.Is(err, wantErrs[i]) || (wantErrs[i] == nil) != (err == nil) {
			t.Errorf("batch %d: got %v, want %v", i, err, wantErrs[i])
		}
	}
	for _, tt := range []struct {
		pool   string
		exists bool
	}{{"one", true}, {"bad", false}, {"late", false}} {
		if _, err := s.GetPool(tt.pool); (err == nil) != tt.exists {
			t.Errorf("pool %s: exists = %v, want %v", tt.pool, err == nil, tt.exists)
		}
	}
	if _, err := s.GetTaskInstance("etl", newRun("etl", day(1), RunQueued).RunID, "t"); err != nil {
		t.Errorf("batch after the failed one: %v", err)
	}
	st := s.Stats()
	if got := st.Transactions - before.Transactions; got != 1 {
		t.Errorf("%d transactions committed, want 1", got)
	}
	if got := st.FailedBatches - before.FailedBatches; got != 1 {
		t.Errorf("%d failed batches, want 1", got)
	}
}

func TestCommitCanceledContext(t *testing.T) {
	s := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var b Batch
	b.PutPool(Pool{Name: "p", Slots: 1})
	if err := s.Commit(ctx, &b); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit: got %v, want context.Canceled", err)
	}
	if _, err := s.GetPool("p"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetPool: got %v, want ErrNotFound", err)
	}
}

func TestCloseDrainsQueue(t *testing.T) {
	s, err := Open(t.TempDir() + "/kiln.db")
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	errs := make(chan error, n)
	var started sync.WaitGroup
	for i := range n {
		started.Add(1)
		go func() {
			var b Batch
			b.PutPool(Pool{Name: fmt.Sprintf("p%02d", i), Slots: i})
			started.Done()
			errs <- s.Commit(context.Background(), &b)
		}()
	}
	started.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	committed := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			committed++
		case !errors.Is(err, ErrClosed):
			t.Errorf("Commit: %v", err)
		}
	}
	// Every Commit that did not see ErrClosed is on disk.
	s, err = Open(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pools, _ := s.Pools()
	if got := len(pools) - 1; got != committed {
		t.Errorf("%d pools on disk, %d commits reported success", got, committed)
	}
}
