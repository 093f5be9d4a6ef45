package store

import (
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// maxGroup caps the batches in one transaction so that one commit stays a
// bounded amount of work; it is also the queue's capacity.
const maxGroup = 1024

// A commitRequest is a batch waiting for the writer.
type commitRequest struct {
	ctx  context.Context
	ops  []op
	seq  uint64     // a standby's log record: its sequence (replicate.go)
	done chan error // buffered: the writer never waits for the caller
}

// Commit writes the batch durably (fsync) and returns once it is on disk,
// or with the reason it was not written: then none of it was.
//
// Batches committed at the same time share one transaction (see the package
// comment); a batch that fails is left out and does not fail the others. If
// ctx is done before the batch joins a transaction, Commit returns ctx.Err()
// and writes nothing; once it has joined one, Commit waits for the outcome
// (about one fsync), so its answer is never "unknown".
//
// A standby's store refuses every batch with ErrStandby; a leader's
// appends each transaction to its log first (replicate.go).
func (s *Store) Commit(ctx context.Context, b *Batch) error {
	if b.err != nil {
		return fmt.Errorf("batch not committed: %w", b.err)
	}
	if s.repl.mode.Load() == modeFollower {
		return ErrStandby
	}
	if err := s.repl.broken.Load(); err != nil {
		return fmt.Errorf("this store commits nothing more: %w", *err)
	}
	return s.commit(ctx, b.ops, 0)
}

// commit hands ops to the writer and waits for the outcome; seq is that
// of a standby's log record, 0 for anything else.
func (s *Store) commit(ctx context.Context, ops []op, seq uint64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &commitRequest{ctx: ctx, ops: ops, seq: seq, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if len(ops) == 0 {
		s.mu.RUnlock()
		return nil
	}
	select {
	case s.queue <- req:
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	s.mu.RUnlock()
	return <-req.done
}

// writeLoop is the single writer: it takes whatever is queued, up to
// maxGroup batches, and commits it in one transaction. It returns when the
// queue is closed and drained.
func (s *Store) writeLoop() {
	defer close(s.done)
	group := make([]*commitRequest, 0, maxGroup)
	for req := range s.queue {
		group = append(group[:0], req)
	fill:
		for len(group) < maxGroup {
			select {
			case r, ok := <-s.queue:
				if !ok {
					break fill
				}
				group = append(group, r)
			default:
				break fill
			}
		}
		s.commitGroup(group)
		clear(group)
	}
}

// appendRecord appends the record of what rec noted, and the changes it
// made, to the leader's log.
func (s *Store) appendRecord(rec *recorder) (uint64, error) {
	b, err := rec.encode(s.changes)
	if err != nil {
		return 0, fmt.Errorf("encoding the log record: %w", err)
	}
	seq, err := s.repl.log.Append(context.Background(), b)
	if err != nil {
		return 0, fmt.Errorf("appending to the log: %w", err)
	}
	return seq, nil
}

// commitGroup applies the batches of group in one transaction and answers
// each. When a batch fails, the transaction is rolled back and run again
// without it. Once the transaction has committed, what it changed goes to
// the change feed.
func (s *Store) commitGroup(group []*commitRequest) {
	live := make([]*commitRequest, 0, len(group))
	for _, r := range group {
		if err := r.ctx.Err(); err != nil {
			r.done <- err
			continue
		}
		live = append(live, r)
	}
	for len(live) > 0 {
		failed := -1
		var seq uint64
		// A panic (bbolt's, on a damaged page) fails the transaction
		// like an I/O error.
		err := guard(func() error {
			return s.db.Update(func(tx *bolt.Tx) error {
				s.changes = s.changes[:0]
				var rec *recorder
				if s.repl.mode.Load() == modeLeader {
					rec = newRecorder(tx)
					defer rec.stop()
				}
				// Task instances and tries come mostly in key order (a
				// run's, a mapped task's instances): pages filled to 90 %
				// instead of half halve the pages such a commit writes.
				for _, name := range [][]byte{bucketTaskInstances, bucketTries} {
					tx.Bucket(name).FillPercent = 0.9
				}
				for i, r := range live {
					for _, o := range r.ops {
						changed, err := o.apply(tx)
						if err != nil {
							failed = i
							return err
						}
						if changed && o.change.Kind != "" {
							s.changes = append(s.changes, o.change)
						}
					}
					seq = max(seq, r.seq)
				}
				if rec != nil && len(rec.writes) > 0 {
					var err error
					if seq, err = s.appendRecord(rec); err != nil {
						return err
					}
					return tx.Bucket(bucketMeta).Put(metaLogSeq, u64(seq))
				}
				return nil
			})
		})
		switch {
		case err == nil:
			if seq > s.repl.applied.Load() {
				s.repl.applied.Store(seq)
			}
			s.feed.publish(s.changes)
			clear(s.changes) // let go of the ids
			s.stats.txs.Add(1)
			s.stats.batches.Add(uint64(len(live)))
			for _, r := range live {
				r.done <- nil
			}
			return
		case failed < 0:
			// The commit itself failed (I/O error, disk full, a damaged
			// page), or the log's append: every batch in it is lost alike.
			err = fmt.Errorf("committing to store %s: %w", s.path, err)
			if s.repl.mode.Load() == modeLeader {
				s.repl.broken.Store(&err)
			}
			s.stats.failed.Add(uint64(len(live)))
			for _, r := range live {
				r.done <- err
			}
			return
		default:
			s.stats.failed.Add(1)
			live[failed].done <- err
			live = slices.Delete(live, failed, failed+1)
		}
	}
}
