package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"
)

// readAll reads what the cursor has now, failing the test on an error.
func readAll(t *testing.T, c *ChangeCursor) []Change {
	t.Helper()
	var out []Change
	for {
		n := len(out)
		var err error
		if out, err = c.Read(out); err != nil {
			t.Fatalf("Read: %v", err)
		}
		if len(out) == n {
			return out
		}
	}
}

func TestFeedPublishesWhatChanged(t *testing.T) {
	s := openTest(t)
	r := newRun("etl", day(1), RunQueued)
	c := s.ChangesAfter(s.LastChange())
	commit(t, s, func(b *Batch) {
		b.PutRun(r)
		b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: r.RunID, TaskID: "load", State: TaskRunning, TryNumber: 1})
		b.PutTry(&Try{MapIndex: NoMapIndex, DAGID: "etl", RunID: r.RunID, TaskID: "load", Number: 1, State: TaskRunning})
		b.PutBackfill(&Backfill{ID: "bf-1", DAGID: "etl", State: BackfillRunning})
		b.PutPool(Pool{Name: "gpu", Slots: 1})             // not in the feed
		b.PutDAGState(&DAGState{DAGID: "etl", Seen: true}) // not in the feed
	})
	// Commit returns once the changes are in the feed.
	got := readAll(t, c)
	want := []Change{
		{Kind: ChangeRun, DAGID: "etl", RunID: r.RunID, State: "queued"},
		{Kind: ChangeTask, DAGID: "etl", RunID: r.RunID, TaskID: "load", Try: 1, State: "running"},
		{Kind: ChangeTry, DAGID: "etl", RunID: r.RunID, TaskID: "load", Try: 1, State: "running"},
		{Kind: ChangeBackfill, DAGID: "etl", BackfillID: "bf-1", State: "running"},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Change{}, "Seq")); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	for i, ch := range got {
		if want := c.Seq() - uint64(len(got)-1-i); ch.Seq != want {
			t.Errorf("change %d: seq %d, want %d (one more than the one before)", i, ch.Seq, want)
		}
	}
	if c.Seq() != s.LastChange() {
		t.Errorf("cursor at %d, newest change %d", c.Seq(), s.LastChange())
	}

	// Writing what is stored already changes nothing and publishes nothing;
	// a batch that fails publishes nothing either.
	commit(t, s, func(b *Batch) { b.PutRun(r) })
	var bad Batch
	r2 := newRun("etl", day(2), RunQueued)
	bad.PutRun(r2)
	bad.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: "nope", TaskID: "x"})
	if err := s.Commit(t.Context(), &bad); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Commit: %v, want ErrNotFound", err)
	}
	// Deleting a run is a change of the run with no state.
	commit(t, s, func(b *Batch) { b.DeleteRun("etl", r.RunID) })
	got = readAll(t, c)
	want = []Change{{Kind: ChangeRun, DAGID: "etl", RunID: r.RunID}}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Change{}, "Seq")); diff != "" {
		t.Errorf("changes after a no-op, a failed batch and a delete (-want +got):\n%s", diff)
	}
}

// TestFeedConcurrentReaders has writers commit while readers follow the
// feed: every reader sees every change once, in order.
func TestFeedConcurrentReaders(t *testing.T) {
	s := openTest(t)
	const writers, perWriter, readers = 8, 50, 4
	runs := make([]*Run, writers)
	commit(t, s, func(b *Batch) {
		for w := range runs {
			runs[w] = newRun(fmt.Sprintf("dag%d", w), day(1), RunRunning)
			b.PutRun(runs[w])
		}
	})
	start := s.LastChange()
	const total = writers * perWriter

	var wg sync.WaitGroup
	seen := make([][]Change, readers)
	for i := range readers {
		wg.Go(func() {
			c := s.ChangesAfter(start)
			var got []Change
			for len(got) < total {
				<-c.Wait()
				var err error
				if got, err = c.Read(got); err != nil {
					t.Errorf("reader %d: %v", i, err)
					return
				}
			}
			seen[i] = got
		})
	}
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				var b Batch
				b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: runs[w].DAGID, RunID: runs[w].RunID, TaskID: fmt.Sprintf("t%03d", i), State: TaskQueued})
				if err := s.Commit(context.Background(), &b); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, got := range seen {
		if len(got) != total {
			t.Errorf("reader %d saw %d changes, want %d", i, len(got), total)
			continue
		}
		next := map[string]int{} // per DAG: the task expected next
		for j, c := range got {
			if c.Seq != start+1+uint64(j) {
				t.Fatalf("reader %d: change %d has seq %d, want %d", i, j, c.Seq, start+1+uint64(j))
			}
			if want := fmt.Sprintf("t%03d", next[c.DAGID]); c.TaskID != want {
				t.Errorf("reader %d: %s's task %s came when %s was due", i, c.DAGID, c.TaskID, want)
			}
			next[c.DAGID]++
		}
	}
}

func TestFeedLost(t *testing.T) {
	s := openTest(t)
	r := newRun("etl", day(1), RunRunning)
	commit(t, s, func(b *Batch) { b.PutRun(r) })
	behind := s.ChangesAfter(s.LastChange())
	ahead := s.ChangesAfter(s.LastChange() + 5) // a number this store never gave
	commit(t, s, func(b *Batch) {
		for i := range feedSize + 10 {
			b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: r.RunID, TaskID: fmt.Sprintf("t%05d", i), State: TaskQueued})
		}
	})
	for name, c := range map[string]*ChangeCursor{"behind": behind, "ahead": ahead, "from zero": s.ChangesAfter(0)} {
		select {
		case <-c.Wait():
		default:
			t.Errorf("%s: Wait is not ready", name)
		}
		if got, err := c.Read(nil); !errors.Is(err, ErrChangesLost) || len(got) != 0 {
			t.Errorf("%s: Read = %d changes, %v; want none and ErrChangesLost", name, len(got), err)
		}
		if c.Seq() != s.LastChange() {
			t.Errorf("%s: cursor at %d after the loss, want the newest change %d", name, c.Seq(), s.LastChange())
		}
		// It reads on from there.
		r.State = RunSuccess
		commit(t, s, func(b *Batch) { b.PutRun(r) })
		got := readAll(t, c)
		if len(got) != 1 || got[0].RunID != r.RunID || got[0].State != "success" {
			t.Errorf("%s: after the loss read %+v, want the run's success", name, got)
		}
		r.State = RunRunning
		commit(t, s, func(b *Batch) { b.PutRun(r) })
	}

	// A reader that keeps up with the ring's size loses nothing.
	c := s.ChangesAfter(s.LastChange())
	commit(t, s, func(b *Batch) {
		for i := range feedSize {
			b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: r.RunID, TaskID: fmt.Sprintf("t%05d", i), State: TaskRunning})
		}
	})
	if got := readAll(t, c); len(got) != feedSize {
		t.Errorf("read %d changes, want %d", len(got), feedSize)
	}
}

// TestFeedWaitAndClose checks that waiting readers wake on a commit and on
// Close, and that none is left behind.
func TestFeedWaitAndClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	s, err := Open(filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	c := s.ChangesAfter(s.LastChange())
	wait := c.Wait()
	select {
	case <-wait:
		t.Fatal("Wait is ready with nothing committed")
	default:
	}
	if got, err := c.Read(nil); err != nil || len(got) != 0 {
		t.Fatalf("Read with nothing new = %v, %v", got, err)
	}

	const readers = 3
	woke := make(chan []Change, readers)
	for range readers {
		go func() {
			c := s.ChangesAfter(c.Seq())
			<-c.Wait()
			got, _ := c.Read(nil)
			woke <- got
		}()
	}
	commit(t, s, func(b *Batch) { b.PutRun(newRun("etl", day(1), RunQueued)) })
	<-wait
	for range readers {
		select {
		case got := <-woke:
			if len(got) != 1 || got[0].Kind != ChangeRun {
				t.Errorf("a woken reader read %+v, want the run", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a reader did not wake up")
		}
	}

	// Close wakes readers; once they have read everything, Read says the
	// store is closed.
	waiting := make(chan error, 1)
	go func() {
		c := s.ChangesAfter(s.LastChange())
		<-c.Wait()
		_, err := c.Read(nil)
		waiting <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close: %v, want ErrClosed", err)
	}
	if got, err := c.Read(nil); len(got) != 1 || err != nil {
		t.Errorf("a cursor behind reads on after Close: %v, %v", got, err)
	}
	if _, err := c.Read(nil); !errors.Is(err, ErrClosed) {
		t.Errorf("then Read: %v, want ErrClosed", err)
	}
}

// BenchmarkFeedPublish measures what the writer pays per transaction for
// the feed: numbering four changes into the ring, with and without a
// reader waiting to be woken.
func BenchmarkFeedPublish(b *testing.B) {
	changes := make([]Change, 4)
	for i := range changes {
		changes[i] = Change{Kind: ChangeTask, DAGID: "etl", RunID: "scheduled__2026-01-01T00:00:00Z", TaskID: fmt.Sprintf("t%d", i), Try: 1, State: "running"}
	}
	b.Run("no_reader", func(b *testing.B) {
		f := newFeed(time.Now())
		for b.Loop() {
			f.publish(changes)
		}
	})
	b.Run("reader_waiting", func(b *testing.B) {
		f := newFeed(time.Now())
		c := &ChangeCursor{f: f, seq: f.last}
		buf := make([]Change, 0, maxRead)
		for b.Loop() {
			wait := c.Wait()
			f.publish(changes)
			<-wait
			buf, _ = c.Read(buf[:0])
		}
	})
}
