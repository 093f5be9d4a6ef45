package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkCommitParallel has 8 goroutines each commit batches of one task
// instance, through group commit and, to compare, with one bbolt
// transaction (one fsync) per record. On the 2-core build machine
// (go test -run '^$' -bench CommitParallel -benchtime 3s -count 3 ./store/):
//
//	group_commit    10,600-12,400 commits/s, 4.0 batches per transaction
//	tx_per_record    2,900- 3,300 commits/s (one fsync each)
//
// and db.Batch with its 10 ms delay gives ~700/s. Four,
// not eight, batches share a transaction because the writers whose batches
// are in the transaction being synced wait for it while the other four
// queue: the writers settle into two alternating groups. Waiting for
// stragglers would raise the group size only by adding a delay.
func BenchmarkCommitParallel(b *testing.B) {
	const writers = 8
	run := newRun("bench", day(1), RunRunning)
	ti := func(i int64) *TaskInstance {
		return &TaskInstance{MapIndex: NoMapIndex, DAGID: run.DAGID, RunID: run.RunID, TaskID: fmt.Sprintf("t%09d", i),
			State: TaskQueued, TryNumber: 1, MaxTries: 3, Queue: "default", Pool: DefaultPool, PoolSlots: 1}
	}
	parallel := func(b *testing.B, commit func(i int64) error) {
		var next atomic.Int64
		var wg sync.WaitGroup
		b.ResetTimer()
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
					if err := commit(i); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
	}

	b.Run("group_commit", func(b *testing.B) {
		s := openTest(b)
		commit(b, s, func(bt *Batch) { bt.PutRun(run) })
		before := s.Stats()
		parallel(b, func(i int64) error {
			var bt Batch
			bt.PutTaskInstance(ti(i))
			return s.Commit(context.Background(), &bt)
		})
		st := s.Stats()
		b.ReportMetric(float64(st.Batches-before.Batches)/float64(st.Transactions-before.Transactions), "batches/tx")
	})
	b.Run("tx_per_record", func(b *testing.B) {
		s := openTest(b)
		commit(b, s, func(bt *Batch) { bt.PutRun(run) })
		parallel(b, func(i int64) error {
			var bt Batch
			bt.PutTaskInstance(ti(i))
			return s.db.Update(func(tx *bolt.Tx) error {
				_, err := bt.ops[0].apply(tx)
				return err
			})
		})
	})
}

// putRuns commits n runs of dag, a day apart from start, in large batches.
func putRuns(b testing.TB, s *Store, dag string, start time.Time, n int, state func(i int) RunState) {
	const per = 2000
	for i := 0; i < n; i += per {
		commit(b, s, func(bt *Batch) {
			for j := i; j < min(i+per, n); j++ {
				bt.PutRun(newRun(dag, start.AddDate(0, 0, j), state(j)))
			}
		})
	}
}

// BenchmarkListRunsPage lists pages of 50 from a DAG with 10,000 runs next
// to 2,000 runs of other DAGs.
func BenchmarkListRunsPage(b *testing.B) {
	s := openTest(b)
	putRuns(b, s, "etl", day0, 10_000, func(i int) RunState {
		if i%10 == 0 {
			return RunFailed
		}
		return RunSuccess
	})
	putRuns(b, s, "other", day0, 2_000, func(int) RunState { return RunSuccess })

	for _, bc := range []struct {
		name string
		q    RunQuery
	}{
		{"first_page", RunQuery{DAGID: "etl", Limit: 50}},
		{"offset_9000", RunQuery{DAGID: "etl", Limit: 50, Offset: 9000}},
		{"state_filter", RunQuery{DAGID: "etl", State: RunFailed, Limit: 50}},
		{"all_dags_first_page", RunQuery{Limit: 50}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				runs, total, err := s.ListRuns(bc.q)
				if err != nil || len(runs) != 50 || total == 0 {
					b.Fatalf("ListRuns = %d runs, total %d, %v", len(runs), total, err)
				}
			}
		})
	}
}

// BenchmarkActiveRuns reads 100 active runs next to 100,000 finished ones.
func BenchmarkActiveRuns(b *testing.B) {
	s := openTest(b)
	for d := range 10 {
		putRuns(b, s, fmt.Sprintf("dag%d", d), day0, 10_010, func(i int) RunState {
			if i >= 10_000 {
				return RunRunning
			}
			return RunSuccess
		})
	}
	for b.Loop() {
		runs, err := s.ActiveRuns()
		if err != nil || len(runs) != 100 {
			b.Fatalf("ActiveRuns = %d, %v", len(runs), err)
		}
	}
}
