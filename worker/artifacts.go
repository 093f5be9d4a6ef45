package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	"time"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// tarMediaType is the media type of a folder artifact, stored as a tar.
const tarMediaType = "application/x-tar"

// artifact is a declared artifact found in the try's working directory.
type artifact struct {
	name, path string
	dir        bool
	work       *os.Root // the try's working directory
	abs        string   // the working directory's path joined with path
}

// findArtifact finds the declared artifact name at path p (relative to the
// working directory dir, opened as work). It refuses a path that leads
// out of dir, by its name or through a symlink, and one that is missing
// or is neither a file nor a folder.
func findArtifact(work *os.Root, dir, name, p string) (*artifact, error) {
	if !filepath.IsLocal(p) {
		return nil, fmt.Errorf("artifact %s: %s is outside the task's working directory", name, p)
	}
	abs := filepath.Join(dir, p)
	if _, err := os.Stat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("artifact %s: %s was not written", name, p)
	}
	if err := within(dir, "the task's working directory", abs); err != nil {
		return nil, fmt.Errorf("artifact %s: %s %w", name, p, err)
	}
	fi, err := work.Stat(p) // through the root: nothing outside dir
	if err != nil {
		return nil, fmt.Errorf("artifact %s: %w", name, err)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("artifact %s: %s is a %s, not a file or folder", name, p, kindOf(fi.Mode().Type()))
	}
	return &artifact{name: name, path: p, dir: fi.IsDir(), work: work, abs: abs}, nil
}

// open returns the artifact's content: the file, or the tar of the folder,
// made as it is read.
func (a *artifact) open() (io.ReadCloser, error) {
	if !a.dir {
		return a.work.Open(a.path)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, a.abs)) }()
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
		logs.note(fmt.Sprintf("kiln: artifact %s: %s, %s, SHA-256 %s, %s", name, a.path, humanize.IBytes(uint64(stored.Size)), stored.SHA256, how))
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
		return stored, false, fmt.Errorf("artifact %s (%s, %s): %w", a.name, a.path, humanize.IBytes(uint64(stored.Size)), err)
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
		return fmt.Errorf("%w: %s of its bound of %s are in use", wire.ErrArtifactsFull, humanize.IBytes(uint64(used)), humanize.IBytes(uint64(bound)))
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
		return fmt.Errorf("artifact %s (%s, %s): %w: %v", a.name, a.path, humanize.IBytes(uint64(want.Size)), wire.ErrArtifactsFull, err)
	case err != nil:
		return fmt.Errorf("artifact %s: storing it: %w", a.name, err)
	case size != want.Size || sum != want.SHA256:
		return fmt.Errorf("artifact %s: %s changed while it was being stored: is a process of the task still writing it?", a.name, a.path)
	}
	return nil
}

// took is the time since start, rounded for a log line.
func took(start time.Time) string {
	return time.Since(start).Round(time.Millisecond).String()
}
