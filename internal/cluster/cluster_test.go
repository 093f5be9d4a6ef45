package cluster_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/cluster"
	"github.com/kilnhq/kiln/internal/natstest"
	"github.com/kilnhq/kiln/store"
)

const ttl = 5 * time.Second

func setup(t *testing.T) jetstream.JetStream {
	t.Helper()
	c := natstest.StartCluster(t, 3)
	js, err := jetstream.New(c.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cluster.Ensure(ctx, js, 3, ttl); err != nil {
		t.Fatal(err)
	}
	return js
}

func open(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// lead takes the lease for name and makes st the leader's store, its term
// opened in the log.
func lead(t *testing.T, js jetstream.JetStream, st *store.Store, name string) (*cluster.Lease, *cluster.Log) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := cluster.Campaign(ctx, js, cluster.LeaderInfo{Name: name}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	last, err := cluster.LastSeq(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	log := cluster.NewLog(js, name, l.Term, last, l.ValidUntil)
	if _, err := log.AppendTerm(ctx); err != nil {
		t.Fatal(err)
	}
	st.Lead(log)
	return l, log
}

// tail applies the log to st from its applied sequence in the background.
func tail(t *testing.T, js jetstream.JetStream, st *store.Store) *cluster.Tail {
	t.Helper()
	st.Follow()
	ctx, cancel := context.WithCancel(context.Background())
	tl := cluster.NewTail(js, st.AppliedSeq(), func(seq uint64, rec []byte) error {
		return st.ApplyRecord(ctx, seq, rec)
	})
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("tail: %v", err)
		}
	})
	return tl
}

// noise returns n random characters, which do not compress.
func noise(n int) string {
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(rand.Text())
	}
	return b.String()[:n]
}

// writeRun commits a run with n task instances, each padded with pad
// bytes of parameters, so that a large n makes a record of several
// messages.
func writeRun(t *testing.T, st *store.Store, i, n, pad int) {
	t.Helper()
	ld := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
	r := &store.Run{DAGID: "etl", RunID: fmt.Sprintf("manual__%d", i), RunType: "manual", State: store.RunRunning,
		LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld, QueuedAt: ld}
	var b store.Batch
	b.PutRun(r)
	tis := make([]*store.TaskInstance, n)
	for j := range tis {
		tis[j] = &store.TaskInstance{DAGID: "etl", RunID: r.RunID, TaskID: "work", MapIndex: j, State: store.TaskQueued,
			Item: noise(pad)}
	}
	b.PutTaskInstances(tis)
	if err := st.Commit(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func waitApplied(t *testing.T, st *store.Store, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for st.AppliedSeq() < seq {
		if time.Now().After(deadline) {
			t.Fatalf("the standby applied up to %d, want %d", st.AppliedSeq(), seq)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func instances(t *testing.T, st *store.Store, run string) int {
	t.Helper()
	tis, err := st.TaskInstances("etl", run)
	if err != nil {
		t.Fatal(err)
	}
	return len(tis)
}

// TestLogReplicatesAndFences, on a real 3-node NATS cluster: a leader's
// commits, one of them megabytes (several log messages), reach a
// standby's store; an append by a leader that is not at the log's tail is
// refused; the lease passes to the standby only once the leader stopped
// renewing it, with a higher term; and a new server starts from a
// snapshot, the log below it trimmed.
func TestLogReplicatesAndFences(t *testing.T) {
	js := setup(t)
	dir := t.TempDir()
	a, b := open(t, filepath.Join(dir, "a.db")), open(t, filepath.Join(dir, "b.db"))
	lease, log := lead(t, js, a, "a")
	keepCtx, stopKeeping := context.WithCancel(context.Background())
	defer stopKeeping()
	kept := make(chan error, 1)
	go func() { kept <- lease.Keep(keepCtx) }()
	tail(t, js, b)

	writeRun(t, a, 0, 3, 0)
	before := log.Last()
	writeRun(t, a, 1, 3000, 1000) // ~3 MB of instances: several messages
	if parts := log.Last() - before; parts < 3 {
		t.Fatalf("the big record took %d log messages, want several", parts)
	}
	writeRun(t, a, 2, 1, 0)
	waitApplied(t, b, a.AppliedSeq())
	if got := instances(t, b, "manual__1"); got != 3000 {
		t.Fatalf("the standby has %d instances of the big run, want 3000", got)
	}
	if got := instances(t, b, "manual__2"); got != 1 {
		t.Fatalf("the standby has %d instances of the last run, want 1", got)
	}

	// A leader whose idea of the tail is stale is refused.
	stale := cluster.NewLog(js, "a", lease.Term, log.Last()-1, forever)
	if _, err := stale.Append(context.Background(), []byte("x")); !errors.Is(err, cluster.ErrDeposed) {
		t.Fatalf("an append behind the tail: %v, want ErrDeposed", err)
	}

	// Snapshot and trim; a new server starts from the snapshot and reads
	// the rest of the log.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seq, size, err := cluster.Snapshot(ctx, js, a)
	if err != nil {
		t.Fatal(err)
	}
	if seq != a.AppliedSeq() || size == 0 {
		t.Fatalf("snapshot at %d (%d bytes), the store is at %d", seq, size, a.AppliedSeq())
	}
	if got, ok, err := cluster.SnapshotSeq(ctx, js); err != nil || !ok || got != seq {
		t.Fatalf("SnapshotSeq = %d %v %v, want %d", got, ok, err, seq)
	}
	if err := cluster.Trim(ctx, js, seq); err != nil {
		t.Fatal(err)
	}
	writeRun(t, a, 3, 2, 0)
	cPath := filepath.Join(dir, "c.db")
	if got, ok, err := cluster.Restore(ctx, js, cPath); err != nil || !ok || got != seq {
		t.Fatalf("Restore = %d %v %v, want %d", got, ok, err, seq)
	}
	c := open(t, cPath)
	if c.AppliedSeq() != seq {
		t.Fatalf("the restored store is at %d, want %d", c.AppliedSeq(), seq)
	}
	tail(t, js, c)
	waitApplied(t, c, a.AppliedSeq())
	if instances(t, c, "manual__1") != 3000 || instances(t, c, "manual__3") != 2 {
		t.Error("the server started from the snapshot misses runs")
	}

	// A store from before the trim cannot read on: the log says so.
	d := open(t, filepath.Join(dir, "d.db"))
	d.Follow()
	tl := cluster.NewTail(js, 0, func(seq uint64, rec []byte) error { return d.ApplyRecord(ctx, seq, rec) })
	if err := tl.Run(ctx); !errors.Is(err, cluster.ErrPurged) {
		t.Errorf("tailing a trimmed log from 0: %v, want ErrPurged", err)
	}
	// The lease: b cannot take it while a renews it; once a stops, b takes
	// it within the TTL, in a later term, and a learns it lost it.
	bctx, bcancel := context.WithTimeout(context.Background(), ttl+time.Second)
	_, err = cluster.Campaign(bctx, js, cluster.LeaderInfo{Name: "b"}, ttl)
	bcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("b campaigned while a renewed the lease: %v", err)
	}
	stopKeeping()
	if err := <-kept; err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	lb, err := cluster.Campaign(ctx, js, cluster.LeaderInfo{Name: "b", URL: "http://b"}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(stopped)
	t.Logf("b took the lease %s after a stopped renewing it (TTL %s)", took.Round(10*time.Millisecond), ttl)
	if took > ttl+2*time.Second || lb.Term <= lease.Term {
		t.Errorf("b took the lease after %s in term %d (a's was %d)", took, lb.Term, lease.Term)
	}
	if lease.Valid() {
		t.Error("a still takes its lease as held")
	}
	if err := lease.Keep(ctx); !errors.Is(err, cluster.ErrDeposed) {
		t.Errorf("a's Keep after b took the lease: %v, want ErrDeposed", err)
	}
	if info, ok, err := cluster.Leader(ctx, js); err != nil || !ok || info.Name != "b" || info.URL != "http://b" {
		t.Errorf("Leader: %+v %v %v", info, ok, err)
	}

	// a's store no longer commits: the log refuses it.
	var batch store.Batch
	batch.PutPool(store.Pool{Name: "late", Slots: 1})
	if err := a.Commit(ctx, &batch); !errors.Is(err, cluster.ErrDeposed) {
		t.Errorf("a commit of the deposed leader: %v, want ErrDeposed", err)
	}
}

// forever is the lease of a log whose lease never ends.
func forever() time.Time { return time.Now().Add(time.Hour) }

// BenchmarkAppend appends 1 KiB records, one at a time, to the log on a
// 3-node NATS cluster on loopback: the latency a leader's commit adds.
func BenchmarkAppend(b *testing.B) {
	c := natstest.StartCluster(b, 3)
	js, err := jetstream.New(c.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := cluster.Ensure(ctx, js, 3, ttl); err != nil {
		b.Fatal(err)
	}
	log := cluster.NewLog(js, "a", 1, 0, forever)
	rec := []byte(noise(1024))
	for b.Loop() {
		if _, err := log.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLeaseRenewalAnswerLost: a renewal that landed but whose answer was
// lost (it timed out) leaves the leader a revision behind; its next
// renewal, refused, finds the lease still its own and goes on from there.
// A lease another server wrote over is lost.
func TestLeaseRenewalAnswerLost(t *testing.T) {
	js := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := cluster.TryLease(ctx, js, cluster.LeaderInfo{Name: "a"}, ttl)
	if err != nil || lease == nil {
		t.Fatalf("TryLease: %v %v", lease, err)
	}
	kv, err := js.KeyValue(ctx, cluster.LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	// The renewal as it lands, written here so that the leader never hears of it.
	e, err := kv.Get(ctx, cluster.LeaseKey)
	if err != nil {
		t.Fatal(err)
	}
	mine := e.Value()
	lost, err := kv.Update(ctx, cluster.LeaseKey, mine, e.Revision())
	if err != nil {
		t.Fatal(err)
	}
	kctx, stopKeeping := context.WithCancel(ctx)
	defer stopKeeping()
	kept := make(chan error, 1)
	go func() { kept <- lease.Keep(kctx) }()

	// Two renewals after the lost answer: the leader went on.
	for {
		select {
		case err := <-kept:
			t.Fatalf("Keep returned after a renewal whose answer was lost: %v", err)
		case <-ctx.Done():
			t.Fatal("the leader renewed nothing after the lost answer")
		case <-time.After(50 * time.Millisecond):
		}
		e, err := kv.Get(ctx, cluster.LeaseKey)
		if err != nil {
			t.Fatal(err)
		}
		if e.Revision() >= lost+2 {
			if string(e.Value()) != string(mine) {
				t.Fatalf("the lease holds %s, want the leader's %s", e.Value(), mine)
			}
			break
		}
	}
	if !lease.Valid() {
		t.Error("the leader no longer takes its renewed lease as held")
	}

	// Another server's value over it: the leader learns it lost the lease.
	e, err = kv.Get(ctx, cluster.LeaseKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(ctx, cluster.LeaseKey, []byte(`{"name":"b"}`), e.Revision()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-kept:
		if !errors.Is(err, cluster.ErrDeposed) {
			t.Errorf("Keep after b wrote the lease: %v, want ErrDeposed", err)
		}
	case <-ctx.Done():
		t.Error("the leader did not learn that b holds the lease")
	}
}

// TestLeaseTakesTheBucketsShorterTTL: the lease bucket's TTL is set by the
// server that started last; a leader started with a longer --lease-ttl
// reckons its lease by the bucket's, by which it expires.
func TestLeaseTakesTheBucketsShorterTTL(t *testing.T) {
	js := setup(t) // the bucket's TTL: ttl
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lease, err := cluster.TryLease(ctx, js, cluster.LeaderInfo{Name: "a"}, 6*ttl)
	if err != nil || lease == nil {
		t.Fatalf("TryLease: %v %v", lease, err)
	}
	defer lease.Release(ctx)
	if left := time.Until(lease.ValidUntil()); left > ttl-2*time.Second {
		t.Errorf("the lease is held for %s more, past the bucket's TTL %s less the 2 s margin", left.Round(time.Millisecond), ttl)
	}
}
