package worker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// Artifacts are objects of the JetStream object store wire.ArtifactsBucket,
// named by their SHA-256. The worker looks objects up through the object
// store's API, but sends and reads their chunks itself, in the same
// layout, to bound what a transfer holds in flight and in memory.

// artifactsStream is the stream behind the artifact store.
const artifactsStream = "OBJ_" + wire.ArtifactsBucket

// chunkSize is the size of the chunks an artifact is stored in, the
// object store's default.
const chunkSize = 128 << 10

// artifactStore returns the object store of artifacts, looked up once.
// The scheduler creates it; a worker only uses it.
func (w *Worker) artifactStore(ctx context.Context) (jetstream.ObjectStore, error) {
	w.objMu.Lock()
	defer w.objMu.Unlock()
	if w.obs != nil {
		return w.obs, nil
	}
	obs, err := w.js.ObjectStore(ctx, wire.ArtifactsBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, fmt.Errorf("the artifact store %s does not exist: the scheduler makes it when it starts", wire.ArtifactsBucket)
	}
	if err != nil {
		return nil, fmt.Errorf("opening the artifact store %s: %w", wire.ArtifactsBucket, err)
	}
	w.obs = obs
	return obs, nil
}

// uploadWindow bounds the bytes of an upload that await JetStream's
// acknowledgement at once: the object store's own Put sends up to 4,000
// chunks ahead, more than a server's stream takes in at once (it answers
// 429, nats-io/nats.go#1908).
const uploadWindow = 8 << 20

// upload stores what r holds as the object name in the artifact store, in
// the object store's layout: chunks on a subject of their own, then the
// metadata that names them, which replaces the object's earlier metadata
// (nats-io/nats.go, jetstream/object.go). It returns the size and SHA-256
// of what it read. On a failure the chunks sent stay behind, and so do
// the chunks of an object it replaces: a worker may not purge
// (docs/artifacts.md#security); the scheduler's garbage collection
// removes them.
func (w *Worker) upload(ctx context.Context, name string, r io.Reader) (int64, string, error) {
	id := rand.Text()
	chunks := "$O." + wire.ArtifactsBucket + ".C." + id
	h := sha256.New()
	window := make([]jetstream.PubAckFuture, 0, uploadWindow/chunkSize)
	wait := func(f jetstream.PubAckFuture) error {
		select {
		case <-f.Ok():
			return nil
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	buf := make([]byte, chunkSize)
	var size int64
	var n uint32
	for {
		k, readErr := io.ReadFull(r, buf)
		if k > 0 {
			h.Write(buf[:k])
			if len(window) == cap(window) {
				if err := wait(window[0]); err != nil {
					return 0, "", err
				}
				window = append(window[:0], window[1:]...)
			}
			// The data is copied into the connection's buffer before
			// PublishMsgAsync returns, so buf is free again.
			f, err := w.js.PublishMsgAsync(&nats.Msg{Subject: chunks, Data: buf[:k]})
			if err != nil {
				return 0, "", err
			}
			window = append(window, f)
			size += int64(k)
			n++
		}
		if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) {
			break
		}
		if readErr != nil {
			return 0, "", readErr
		}
	}
	for _, f := range window {
		if err := wait(f); err != nil {
			return 0, "", err
		}
	}
	meta, err := json.Marshal(jetstream.ObjectInfo{
		ObjectMeta: jetstream.ObjectMeta{Name: name, Opts: &jetstream.ObjectMetaOptions{ChunkSize: chunkSize}},
		Bucket:     wire.ArtifactsBucket,
		NUID:       id,
		Size:       uint64(size),
		Chunks:     n,
		Digest:     jetstream.GetObjectDigestValue(h),
	})
	if err != nil {
		return 0, "", err
	}
	m := nats.NewMsg("$O." + wire.ArtifactsBucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name)))
	m.Header.Set(jetstream.MsgRollup, jetstream.MsgRollupSubject)
	m.Data = meta
	if _, err := w.js.PublishMsg(ctx, m); err != nil {
		return 0, "", err
	}
	return size, hex.EncodeToString(h.Sum(nil)), nil
}

// digestHex is the hex SHA-256 an object's Digest holds; "" when it
// holds none.
func digestHex(info *jetstream.ObjectInfo) string {
	b, err := jetstream.DecodeObjectDigest(info.Digest)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(b)
}

// full reports whether a store error says that JetStream has no room: the
// bucket's bound (maximum bytes, with new messages refused), or the
// server's or the account's storage.
func full(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case jsInsufficientResources, jsAccountResourcesExceeded, jsStorageResourcesExceeded:
		return true
	case jsStreamStoreFailed:
		return strings.Contains(apiErr.Description, "maximum bytes exceeded")
	}
	return false
}

// JetStream error codes that mean a full store (nats-server's
// jetstream_errors_generated.go); jetstream does not name them.
const (
	jsAccountResourcesExceeded jetstream.ErrorCode = 10002
	jsInsufficientResources    jetstream.ErrorCode = 10023
	jsStorageResourcesExceeded jetstream.ErrorCode = 10047
	jsStreamStoreFailed        jetstream.ErrorCode = 10077
)

// downloadWindow bounds the bytes of a download the worker holds at
// once: received and not yet written. The object store's own Get lets the
// server send up to 32 MiB ahead.
const downloadWindow = 4 << 20

// download returns the content of the object info describes, read through
// an ordered consumer of its chunks. It ends where the stored chunks end,
// however many the object's metadata counts: what was read is checked
// against the SHA-256 wanted, not against the metadata.
func (w *Worker) download(ctx context.Context, info *jetstream.ObjectInfo) (io.ReadCloser, error) {
	if info.Size == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	cons, err := w.js.OrderedConsumer(ctx, artifactsStream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"$O." + wire.ArtifactsBucket + ".C." + info.NUID},
	})
	if err != nil {
		return nil, err
	}
	msgs, err := cons.Messages(jetstream.PullMaxBytes(downloadWindow))
	if err != nil {
		return nil, err
	}
	r := &chunkReader{ctx: ctx, msgs: msgs}
	if ci := cons.CachedInfo(); ci != nil {
		r.left = ci.NumPending
	}
	return r, nil
}

// chunkReader reads an object's chunks in order.
type chunkReader struct {
	ctx  context.Context
	msgs jetstream.MessagesContext
	left uint64 // chunks still to read
	cur  []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if r.left == 0 {
			return 0, io.EOF
		}
		m, err := r.msgs.Next(jetstream.NextContext(r.ctx))
		if err != nil {
			if r.ctx.Err() != nil {
				err = context.Cause(r.ctx)
			}
			return 0, err
		}
		r.cur = m.Data()
		r.left--
		if md, err := m.Metadata(); err == nil {
			r.left = md.NumPending
		}
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *chunkReader) Close() error {
	r.msgs.Stop()
	return nil
}
