package store

import (
	"context"
	"io"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the store file at path to w, after
// checking the store as Open does: a damaged store is refused with a
// *DamagedError rather than copied. Like Check it opens the file
// read-only, and fails with an error wrapping ErrLocked while another
// process (a kiln server) has it open: [Store.WriteBackup] copies an open
// store. It returns the bytes written.
func Backup(path string, w io.Writer) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultCheckBudget)
	defer cancel()
	db, r, err := openChecked(ctx, path, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: defaultLockTimeout}, false)
	if err != nil {
		return 0, err
	}
	if db != nil {
		defer db.Close()
	}
	if err := r.damaged(); err != nil {
		return 0, err
	}
	return writeBackup(db.View, func(*bolt.Tx) io.Writer { return w })
}

// WriteBackup writes a consistent copy of the store file while the store
// is in use: start is given the copy's size in bytes and returns where to
// write it. The copy is one read transaction, so commits go on
// meanwhile, but one that must grow the file waits for it to end. It
// returns the bytes written.
func (s *Store) WriteBackup(start func(size int64) io.Writer) (int64, error) {
	return writeBackup(s.view, func(tx *bolt.Tx) io.Writer { return start(tx.Size()) })
}

// WriteSnapshot is WriteBackup for a replicated store: start is given the
// copy's size and the log sequence it holds (see [Store.AppliedSeq]).
func (s *Store) WriteSnapshot(start func(size int64, seq uint64) io.Writer) (int64, error) {
	return writeBackup(s.view, func(tx *bolt.Tx) io.Writer {
		return start(tx.Size(), readU64(tx.Bucket(bucketMeta).Get(metaLogSeq)))
	})
}

func writeBackup(view func(func(*bolt.Tx) error) error, start func(tx *bolt.Tx) io.Writer) (int64, error) {
	var n int64
	err := view(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(start(tx))
		return err
	})
	return n, err
}
