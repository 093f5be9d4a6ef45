package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// memLog is a log in memory: records in order, sequences from 1. refuse,
// when set, is what the next Append fails with.
type memLog struct {
	mu      sync.Mutex
	records [][]byte
	refuse  error
}

func (l *memLog) Append(_ context.Context, rec []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.refuse; err != nil {
		l.refuse = nil
		return 0, err
	}
	l.records = append(l.records, bytes.Clone(rec))
	return uint64(len(l.records)), nil
}

// follow applies the log's records from the follower's applied sequence on.
func (l *memLog) follow(t *testing.T, f *Store) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := f.AppliedSeq(); i < uint64(len(l.records)); i++ {
		if err := f.ApplyRecord(context.Background(), i+1, l.records[i]); err != nil {
			t.Fatal(err)
		}
	}
}

// dump returns every key and value of every bucket but the log sequence.
func dump(t *testing.T, s *Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				if !bytes.Equal(name, bucketMeta) || !bytes.Equal(k, metaLogSeq) {
					out[fmt.Sprintf("%s/%q", name, k)] = string(v)
				}
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReplicatedStoreMatchesLeader writes through a leading store every
// kind of write there is (runs, task instances, tries, a run's deletion,
// pools, users, tokens, sessions, dataset events, the cache) and checks
// that a standby applying the log holds the same keys and values, at the
// same sequence, and tells its change feed.
func TestReplicatedStoreMatchesLeader(t *testing.T) {
	ctx := context.Background()
	log := &memLog{}
	leader, follower := openTest(t), openTest(t)
	leader.SetPasswordCost(4)
	leader.Lead(log)
	follower.Follow()
	feed := follower.ChangesAfter(follower.LastChange())

	r1, r2 := newRun("etl", day(1), RunRunning), newRun("etl", day(2), RunSuccess)
	commit(t, leader, func(b *Batch) {
		b.PutRun(r1)
		b.PutRun(r2)
		for _, r := range []*Run{r1, r2} {
			b.PutTaskInstances([]*TaskInstance{
				{DAGID: "etl", RunID: r.RunID, TaskID: "extract", MapIndex: NoMapIndex, State: TaskSuccess, TryNumber: 1},
				{DAGID: "etl", RunID: r.RunID, TaskID: "load", MapIndex: 0, State: TaskRunning, TryNumber: 1},
			})
			b.PutTry(&Try{DAGID: "etl", RunID: r.RunID, TaskID: "extract", MapIndex: NoMapIndex, Number: 1, State: TaskSuccess, Callback: true})
		}
		b.PutPool(Pool{Name: "gpu", Slots: 2})
		b.PutDatasetEvent(&DatasetEvent{ID: 1, URI: "s3://b/k", Time: day(1), SourceDAGID: "etl", SourceRunID: r1.RunID, SourceTaskID: "extract"})
	})
	commit(t, leader, func(b *Batch) {
		b.DeleteRun("etl", r2.RunID)
		b.DeletePool("gpu")
	})
	if _, err := leader.AddUser(ctx, "ada", "admin", "correct horse battery", day(1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.CreateToken(ctx, "ci", "operator", day(1)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := leader.CreateSession(ctx, "ada", time.Hour, day(1)); err != nil {
		t.Fatal(err)
	}
	if len(log.records) != 5 || leader.AppliedSeq() != 5 {
		t.Fatalf("%d records, leader at %d; want 5 and 5", len(log.records), leader.AppliedSeq())
	}

	log.follow(t, follower)
	if got := follower.AppliedSeq(); got != 5 {
		t.Fatalf("the standby applied up to %d, want 5", got)
	}
	want, got := dump(t, leader), dump(t, follower)
	if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(got) {
		t.Fatalf("the standby's store differs from the leader's:\nleader  %v\nstandby %v", want, got)
	}
	changes, err := feed.Read(make([]Change, 0, 64))
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) == 0 || changes[0].Kind != ChangeRun || changes[0].RunID != r1.RunID {
		t.Errorf("the standby's change feed got %+v, want the runs' changes", changes)
	}

	// Applying a record again is a no-op; the standby writes nothing of its own.
	if err := follower.ApplyRecord(ctx, 1, log.records[0]); err != nil {
		t.Errorf("applying record 1 again: %v", err)
	}
	if err := follower.Commit(ctx, &Batch{ops: []op{{apply: func(*bolt.Tx) (bool, error) { return true, nil }}}}); !errors.Is(err, ErrStandby) {
		t.Errorf("a standby's Commit: %v, want ErrStandby", err)
	}

	// Reopened, each store knows its sequence.
	path := follower.Path()
	if err := follower.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.AppliedSeq() != 5 {
		t.Errorf("reopened standby at %d, want 5", again.AppliedSeq())
	}
}

// TestRefusedAppendWritesNothing: when the log refuses a record (another
// leader appended first), the transaction is rolled back, the commit fails
// with the log's error, and so does every commit after it.
func TestRefusedAppendWritesNothing(t *testing.T) {
	log := &memLog{}
	leader := openTest(t)
	leader.Lead(log)
	deposed := errors.New("wrong last sequence")
	log.refuse = deposed
	var b Batch
	b.PutPool(Pool{Name: "gpu", Slots: 2})
	if err := leader.Commit(context.Background(), &b); !errors.Is(err, deposed) {
		t.Fatalf("Commit: %v, want the log's refusal", err)
	}
	if _, err := leader.GetPool("gpu"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the refused pool was written: %v", err)
	}
	if leader.AppliedSeq() != 0 || len(log.records) != 0 {
		t.Errorf("leader at %d with %d records, want nothing", leader.AppliedSeq(), len(log.records))
	}
	// The log may hold what the file does not: the store commits nothing
	// more, although the log would take the next record.
	b = Batch{}
	b.PutPool(Pool{Name: "cpu", Slots: 1})
	if err := leader.Commit(context.Background(), &b); !errors.Is(err, deposed) {
		t.Errorf("the next commit: %v, want the first failure", err)
	}
	if len(log.records) != 0 {
		t.Error("a commit after a failed append reached the log")
	}
}

// TestDamagedRecordIsRefused: a record that does not decode applies nothing.
func TestDamagedRecordIsRefused(t *testing.T) {
	f := openTest(t)
	f.Follow()
	for _, rec := range [][]byte{{}, {9}, {recordVersion, 5, 1}} {
		if err := f.ApplyRecord(context.Background(), 1, rec); err == nil {
			t.Errorf("record %v applied", rec)
		}
	}
	if f.AppliedSeq() != 0 {
		t.Errorf("applied %d", f.AppliedSeq())
	}
}
