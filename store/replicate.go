package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Replication (docs/operations.md#cluster-mode). In cluster mode the
// store of the leading server appends what each transaction wrote to a
// replicated log before it commits, and records the log sequence of that
// record in the same transaction; the stores of the standbys apply the
// records in log order. What travels is the transaction's effect, key by
// key, not the calls that made it: applying a record needs no decision,
// so a standby's file holds the same keys and values as the leader's
// whatever code or clock made them.
//
// Every write of a transaction goes through put and del, which note it
// when the transaction is being recorded.

// A Log is where a leading store appends its records (see [Store.Lead]).
// Append returns the record's sequence in the log once the log has it for
// good, or an error: then the transaction is rolled back, and the records
// after it belong to whoever appended them.
type Log interface {
	Append(ctx context.Context, record []byte) (seq uint64, err error)
}

// ErrStandby is returned by Commit on a store that follows a log
// (see [Store.Follow]): its writes come from the leader's records only.
var ErrStandby = errors.New("this server is a standby: writes go through the leader")

// replication modes of a store.
const (
	modeStandalone = iota
	modeFollower
	modeLeader
)

type replication struct {
	mode atomic.Int32
	log  Log
	// applied is the log sequence of the last record in the file.
	applied atomic.Uint64
	// broken, once set, is why a leading store commits nothing more: an
	// append failed, or a transaction failed after its record was
	// appended. Either way the log may hold what the file does not, and
	// only a restart, which reads the log, can tell.
	broken atomic.Pointer[error]
}

// Follow makes the store a standby's: Commit refuses writes, and
// [Store.ApplyRecord] applies the leader's records.
func (s *Store) Follow() { s.repl.mode.Store(modeFollower) }

// Lead makes the store the leader's: from now on each transaction is
// appended to l before it commits.
func (s *Store) Lead(l Log) {
	s.repl.log = l
	s.repl.mode.Store(modeLeader)
}

// SkipSync makes commits skip fsync, for the store of a cluster's server,
// whose log holds every commit durably already (the leader appends before
// it commits): a process that dies loses nothing, since the kernel has
// its writes. The caller must distrust the file after a crash of the host
// (cmd/kiln does, by its boot id). Call it before the first commit;
// Close then syncs.
func (s *Store) SkipSync() { s.db.NoSync = true }

// AppliedSeq returns the log sequence of the last record the file holds,
// written or applied; 0 for a store that never replicated.
func (s *Store) AppliedSeq() uint64 { return s.repl.applied.Load() }

// loadApplied reads the applied sequence at Open.
func (s *Store) loadApplied() error {
	return s.view(func(tx *bolt.Tx) error {
		s.repl.applied.Store(readU64(tx.Bucket(bucketMeta).Get(metaLogSeq)))
		return nil
	})
}

var metaLogSeq = []byte("log_seq")

// recorders holds the recorder of each transaction being recorded, by
// transaction, for put and del, which see only a bucket; recording counts
// them, so that a store that does not replicate only reads a counter.
var (
	recorders sync.Map // *bolt.Tx → *recorder
	recording atomic.Int32
)

// A recorder notes the writes of one transaction.
type recorder struct {
	tx     *bolt.Tx
	names  map[*bolt.Bucket][]byte
	writes []recordedWrite
}

type recordedWrite struct {
	del        bool
	bucket     []byte
	key, value []byte
}

func newRecorder(tx *bolt.Tx) *recorder {
	r := &recorder{tx: tx, names: map[*bolt.Bucket][]byte{}}
	recorders.Store(tx, r)
	recording.Add(1)
	return r
}

func (r *recorder) stop() {
	recorders.Delete(r.tx)
	recording.Add(-1)
}

// recorderOf returns the recorder of bk's transaction, or nil.
func recorderOf(bk *bolt.Bucket) *recorder {
	if recording.Load() == 0 {
		return nil
	}
	r, _ := recorders.Load(bk.Tx())
	rec, _ := r.(*recorder)
	return rec
}

// name returns the name of a top-level bucket of the transaction. bbolt
// hands out one *Bucket per name and write transaction.
func (r *recorder) name(bk *bolt.Bucket) []byte {
	if n, ok := r.names[bk]; ok {
		return n
	}
	_ = r.tx.ForEach(func(name []byte, b *bolt.Bucket) error {
		r.names[b] = name
		return nil
	})
	n, ok := r.names[bk]
	if !ok {
		panic("store: a write to a bucket that is not a top-level bucket of its transaction")
	}
	return n
}

// put writes k=v in bk, noted if the transaction is recorded. Like
// bbolt's, k and v must stay unchanged until the transaction ends.
func put(bk *bolt.Bucket, k, v []byte) error {
	if err := bk.Put(k, v); err != nil {
		return err
	}
	if r := recorderOf(bk); r != nil {
		r.writes = append(r.writes, recordedWrite{bucket: r.name(bk), key: k, value: v})
	}
	return nil
}

// del deletes k from bk, noted if the transaction is recorded.
func del(bk *bolt.Bucket, k []byte) error {
	if err := bk.Delete(k); err != nil {
		return err
	}
	if r := recorderOf(bk); r != nil {
		r.writes = append(r.writes, recordedWrite{del: true, bucket: r.name(bk), key: k})
	}
	return nil
}

// recordVersion is the first byte of every record; a standby refuses a
// record of a version it does not know (upgrade it first:
// docs/operations.md#upgrades-and-sizing).
const recordVersion = 1

// encode makes the record of the writes and of changes, the change feed's
// entries for them: version, count, then each write as op (1 put, 2
// delete), bucket, key and value, each length-prefixed; then the changes
// as JSON.
func (r *recorder) encode(changes []Change) ([]byte, error) {
	size := 16
	for _, w := range r.writes {
		size += 1 + 3*binary.MaxVarintLen32 + len(w.bucket) + len(w.key) + len(w.value)
	}
	b := make([]byte, 0, size)
	b = append(b, recordVersion)
	b = binary.AppendUvarint(b, uint64(len(r.writes)))
	for _, w := range r.writes {
		op := byte(1)
		if w.del {
			op = 2
		}
		b = append(b, op)
		b = appendBytes(b, w.bucket)
		b = appendBytes(b, w.key)
		if !w.del {
			b = appendBytes(b, w.value)
		}
	}
	ch, err := json.Marshal(changes)
	if err != nil {
		return nil, err
	}
	return appendBytes(b, ch), nil
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// decodeRecord reads a record made by encode.
func decodeRecord(b []byte) ([]recordedWrite, []Change, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return nil, nil, fmt.Errorf("record of an unknown version (this program reads version %d): upgrade kiln", recordVersion)
	}
	d := decoder{b: b[1:]}
	n := d.uvarint()
	if n > uint64(len(b)) {
		return nil, nil, errors.New("damaged record: too many writes")
	}
	writes := make([]recordedWrite, 0, n)
	for range n {
		var w recordedWrite
		switch op := d.byte(); op {
		case 1:
		case 2:
			w.del = true
		default:
			return nil, nil, fmt.Errorf("damaged record: write op %d", op)
		}
		w.bucket, w.key = d.bytes(), d.bytes()
		if !w.del {
			w.value = d.bytes()
		}
		writes = append(writes, w)
	}
	ch := d.bytes()
	if d.err != nil || len(d.b) != 0 {
		return nil, nil, errors.New("damaged record: it ends early or late")
	}
	var changes []Change
	if err := json.Unmarshal(ch, &changes); err != nil {
		return nil, nil, fmt.Errorf("damaged record: changes: %w", err)
	}
	return writes, changes, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.err = errors.New("short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("bad length")
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errors.New("short")
		d.b = nil
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

// ApplyRecord applies the leader's record at log sequence seq to a
// standby's store, with the sequence, in one transaction, and publishes
// its changes to the change feed. A record at or below the applied
// sequence is already in the file and is skipped; a record that does not
// decode, or names a bucket the file lacks, is an error and applies
// nothing. A nil record writes nothing but the sequence (a record that
// opens a leader's term).
func (s *Store) ApplyRecord(ctx context.Context, seq uint64, record []byte) error {
	if s.repl.mode.Load() != modeFollower {
		return errors.New("applying a log record to a store that does not follow a log")
	}
	if seq <= s.repl.applied.Load() {
		return nil
	}
	var writes []recordedWrite
	var changes []Change
	if record != nil {
		var err error
		if writes, changes, err = decodeRecord(record); err != nil {
			return fmt.Errorf("log record %d: %w", seq, err)
		}
	}
	apply := func(tx *bolt.Tx) (bool, error) {
		meta := tx.Bucket(bucketMeta)
		if readU64(meta.Get(metaLogSeq)) >= seq {
			return false, nil
		}
		for _, w := range writes {
			bk := tx.Bucket(w.bucket)
			if bk == nil {
				return false, fmt.Errorf("log record %d writes to bucket %q, which this file lacks: upgrade kiln", seq, w.bucket)
			}
			var err error
			if w.del {
				err = bk.Delete(w.key)
			} else {
				err = bk.Put(w.key, w.value)
			}
			if err != nil {
				return false, fmt.Errorf("log record %d: %w", seq, err)
			}
		}
		s.changes = append(s.changes, changes...)
		return true, meta.Put(metaLogSeq, u64(seq))
	}
	return s.commit(ctx, []op{{apply: apply}}, seq)
}
