package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/store"
)

// Snapshot writes a consistent copy of st to the object store as
// SnapshotName, with the log sequence it holds, and returns that
// sequence. The copy is one read transaction of st: commits go on.
func Snapshot(ctx context.Context, js jetstream.JetStream, st *store.Store) (seq uint64, size int64, err error) {
	obs, err := js.ObjectStore(ctx, SnapshotBucket)
	if err != nil {
		return 0, 0, fmt.Errorf("opening %s: %w", SnapshotBucket, err)
	}
	pr, pw := io.Pipe()
	put := make(chan error, 1)
	started := false
	size, err = st.WriteSnapshot(func(_ int64, s uint64) io.Writer {
		seq, started = s, true
		go func() {
			meta := jetstream.ObjectMeta{
				Name:        SnapshotName,
				Description: "Kiln store snapshot",
				Headers:     nats.Header{HeaderSnapshotSeq: []string{strconv.FormatUint(s, 10)}},
			}
			_, err := obs.Put(ctx, meta, pr)
			pr.CloseWithError(err) // unblocks the writer if Put gave up early
			put <- err
		}()
		return pw
	})
	pw.CloseWithError(err)
	if started {
		if perr := <-put; err == nil {
			err = perr
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("writing a snapshot to %s: %w", SnapshotBucket, err)
	}
	return seq, size, nil
}

// SnapshotSeq returns the log sequence the latest snapshot holds; ok is
// false when there is none.
func SnapshotSeq(ctx context.Context, js jetstream.JetStream) (seq uint64, ok bool, err error) {
	obs, err := js.ObjectStore(ctx, SnapshotBucket)
	if err != nil {
		return 0, false, err
	}
	info, err := obs.GetInfo(ctx, SnapshotName)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	seq, err = strconv.ParseUint(info.Headers.Get(HeaderSnapshotSeq), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("snapshot without its sequence: %w", err)
	}
	return seq, true, nil
}

// Restore writes the latest snapshot to path, replacing what is there in
// one rename, and returns the log sequence it holds; ok is false when
// there is no snapshot (path is left alone).
func Restore(ctx context.Context, js jetstream.JetStream, path string) (seq uint64, ok bool, err error) {
	obs, err := js.ObjectStore(ctx, SnapshotBucket)
	if err != nil {
		return 0, false, err
	}
	r, err := obs.Get(ctx, SnapshotName)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading the snapshot: %w", err)
	}
	defer r.Close()
	info, err := r.Info()
	if err != nil {
		return 0, false, err
	}
	seq, err = strconv.ParseUint(info.Headers.Get(HeaderSnapshotSeq), 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("snapshot without its sequence: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return 0, false, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".snapshot-*")
	if err != nil {
		return 0, false, err
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, r) // the object store checks the digest at the end
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading the snapshot: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return 0, false, err
	}
	return seq, true, nil
}

// Trim deletes the log's messages up to and including seq: a snapshot
// holds them.
func Trim(ctx context.Context, js jetstream.JetStream, seq uint64) error {
	st, err := js.Stream(ctx, LogStream)
	if err != nil {
		return err
	}
	return st.Purge(ctx, jetstream.WithPurgeSequence(seq+1))
}
