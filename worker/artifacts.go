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
	"io/fs"
	"maps"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// chunkSize is the size of the chunks an artifact is stored in, the
// object store's default.
const chunkSize = 128 << 10

// tarMediaType is the media type of a folder artifact, stored as a tar.
const tarMediaType = "application/x-tar"

// artifactsStream is the stream behind the artifact store.
const artifactsStream = "OBJ_" + wire.ArtifactsBucket

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

// artifact is a declared artifact found in the try's working directory.
type artifact struct {
	name, path string
	dir        bool
	work       *os.Root // the try's working directory
	full       string   // its path, symlinks followed
}

// findArtifact finds the declared artifact name at path p (relative to the
// working directory dir, opened as work). It refuses a path that leads
// out of dir, by its name or through a symlink, and one that is missing
// or is neither a file nor a folder.
func findArtifact(work *os.Root, dir, name, p string) (*artifact, error) {
	if filepath.IsAbs(p) || !filepath.IsLocal(p) && filepath.Clean(p) != "." {
		return nil, fmt.Errorf("artifact %s: %s is outside the task's working directory", name, p)
	}
	full := filepath.Join(dir, p)
	if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("artifact %s: %s was not written", name, p)
	}
	if err := within(dir, "the task's working directory", full); err != nil {
		return nil, fmt.Errorf("artifact %s: %s %w", name, p, err)
	}
	fi, err := work.Stat(p) // through the root: nothing outside dir
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", name, err)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("artifact %s: %s is a %s, not a file or folder", name, p, kindOf(fi.Mode().Type()))
	}
	return &artifact{name: name, path: p, dir: fi.IsDir(), work: work, full: full}, nil
}

// open returns the artifact's content: the file, or the tar of the folder,
// made as it is read.
func (a *artifact) open() (io.ReadCloser, error) {
	if !a.dir {
		return a.work.Open(a.path)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, a.full)) }()
	return pr, nil
}

// digest reads the artifact's content once: its SHA-256, size and media
// type.
func (a *artifact) digest() (wire.Artifact, error) {
	r, err := a.open()
	if err != nil {
		return wire.Artifact{}, err
	}
	defer r.Close()
	h := sha256.New()
	var head headBuffer
	n, err := io.Copy(io.MultiWriter(h, &head), r)
	if err != nil {
		return wire.Artifact{}, err
	}
	out := wire.Artifact{Name: a.name, Path: a.path, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Dir: a.dir}
	switch {
	case a.dir:
		out.MediaType = tarMediaType
	default:
		out.MediaType = mediaType(a.path, head.b)
	}
	return out, nil
}

// headBuffer keeps the first bytes written to it, for sniffing.
type headBuffer struct{ b []byte }

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := 512 - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// mediaType is a file's media type by its extension, or else by its first
// bytes.
func mediaType(p string, head []byte) string {
	if t := mime.TypeByExtension(filepath.Ext(p)); t != "" {
		return t
	}
	return http.DetectContentType(head)
}

// storeArtifacts stores the try's declared artifacts in the artifact
// store, in name order, and returns what the finished event records of
// them. Each is named by its SHA-256 and stored once: one already there
// is not sent again.
func (w *Worker) storeArtifacts(ctx context.Context, declared map[string]string, dir string, logs *logStream) ([]wire.Artifact, error) {
	if len(declared) == 0 {
		return nil, nil
	}
	work, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer work.Close()
	var out []wire.Artifact
	for _, name := range slices.Sorted(maps.Keys(declared)) {
		a, err := findArtifact(work, dir, name, declared[name])
		if err != nil {
			return nil, err
		}
		start := time.Now()
		stored, sent, err := w.storeArtifact(ctx, a)
		if err != nil {
			return nil, err
		}
		how := "already stored"
		if sent {
			how = "stored in " + took(start)
		}
		logs.note(fmt.Sprintf("kiln: artifact %s: %s, %s, SHA-256 %s, %s", name, a.path, sizeText(stored.Size), stored.SHA256, how))
		out = append(out, stored)
	}
	return out, nil
}

// storeArtifact hashes the artifact, then stores it unless the store
// holds it already. sent says whether it was sent.
func (w *Worker) storeArtifact(ctx context.Context, a *artifact) (stored wire.Artifact, sent bool, err error) {
	stored, err = a.digest()
	if err != nil {
		return stored, false, fmt.Errorf("artifact %s: reading %s: %w", a.name, a.path, err)
	}
	obs, err := w.artifactStore(ctx)
	if err != nil {
		return stored, false, fmt.Errorf("artifact %s: %w", a.name, err)
	}
	info, err := obs.GetInfo(ctx, stored.SHA256)
	switch {
	case err == nil && uint64(stored.Size) == info.Size && digestHex(info) == stored.SHA256:
		return stored, false, nil
	case err != nil && !errors.Is(err, jetstream.ErrObjectNotFound):
		return stored, false, fmt.Errorf("artifact %s: looking it up in the artifact store: %w", a.name, err)
	}
	if err := w.checkRoom(ctx, stored.Size); err != nil {
		return stored, false, fmt.Errorf("artifact %s (%s, %s): %w", a.name, a.path, sizeText(stored.Size), err)
	}
	// An object of that name with another content was altered in the
	// store: this upload puts it right.
	if err := w.putArtifact(ctx, a, stored); err != nil {
		return stored, false, err
	}
	return stored, true, nil
}

// chunkOverhead is about what JetStream stores for a chunk besides its
// data: subject, headers, record framing.
const chunkOverhead = 128

// checkRoom fails with wire.ErrArtifactsFull when an object of size
// bytes would not fit within the artifact store's bound. The upload would
// fail too, but only once it had filled the store with chunks that no
// object names, which only the scheduler's garbage collection removes. The
// server's own limits are only found by trying.
func (w *Worker) checkRoom(ctx context.Context, size int64) error {
	st, err := w.js.Stream(ctx, artifactsStream)
	if err != nil {
		return fmt.Errorf("reading the artifact store's bound: %w", err)
	}
	info := st.CachedInfo()
	bound, used := info.Config.MaxBytes, int64(info.State.Bytes)
	need := size + (size/chunkSize+1)*chunkOverhead
	if bound > 0 && used+need > bound {
		return fmt.Errorf("%w: %s of its bound of %s are in use", wire.ErrArtifactsFull, sizeText(used), sizeText(bound))
	}
	return nil
}

// putArtifact sends the artifact's content to the store as it reads it,
// a second time, and checks that it read the same as the first.
func (w *Worker) putArtifact(ctx context.Context, a *artifact, want wire.Artifact) error {
	r, err := a.open()
	if err != nil {
		return fmt.Errorf("artifact %s: reading %s: %w", a.name, a.path, err)
	}
	defer r.Close()
	size, sum, err := w.upload(ctx, want.SHA256, r)
	switch {
	case full(err):
		return fmt.Errorf("artifact %s (%s, %s): %w: %v", a.name, a.path, sizeText(want.Size), wire.ErrArtifactsFull, err)
	case err != nil:
		return fmt.Errorf("artifact %s: storing it: %w", a.name, err)
	case size != want.Size || sum != want.SHA256:
		return fmt.Errorf("artifact %s: %s changed while it was being stored: is a process of the task still writing it?", a.name, a.path)
	}
	return nil
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

// sizeText writes a size in bytes for people.
func sizeText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d bytes", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// took is the time since start, rounded for a log line.
func took(start time.Time) string {
	return time.Since(start).Round(time.Millisecond).String()
}
