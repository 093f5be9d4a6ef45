package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/plugintest"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/store"
)

// Tests of the artifact store's reading and garbage collection, with a
// real scheduler over a real embedded NATS and a real store. The objects'
// times are the NATS server's, so the scheduler's clock is moved ahead
// instead to make them old.

// aheadClock is the real clock moved ahead by a duration the test sets.
type aheadClock struct{ ahead atomic.Int64 }

func (c *aheadClock) Now() time.Time                         { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *aheadClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (c *aheadClock) set(d time.Duration)                    { c.ahead.Store(int64(d)) }

// gcEnv is a running scheduler with no DAGs and no workers, the artifact
// store it opened, and its store.
type gcEnv struct {
	t     *testing.T
	s     *Scheduler
	st    *store.Store
	js    jetstream.JetStream
	obs   jetstream.ObjectStore
	clock *aheadClock
	log   *plugintest.LogBuffer
}

// startGC starts a scheduler with the given retention; before it starts,
// fill may put objects into the artifact store, which it creates.
func startGC(t *testing.T, retention time.Duration, fill func(e *gcEnv)) *gcEnv {
	t.Helper()
	dir := t.TempDir()
	ns, err := embednats.Start(embednats.Options{StoreDir: filepath.Join(dir, "nats"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	st, err := store.Open(filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := wire.EnsureBuckets(t.Context(), js, -1, 1); err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(t.Context(), wire.ArtifactsBucket)
	if err != nil {
		t.Fatal(err)
	}
	e := &gcEnv{t: t, st: st, js: js, obs: obs, clock: &aheadClock{}, log: &plugintest.LogBuffer{}}
	if fill != nil {
		fill(e)
	}
	dags := filepath.Join(dir, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	e.s, err = New(Config{
		Store: st, NATS: nc, DataDir: dir, Clock: e.clock,
		Folder:            dag.NewFolder(dag.Options{Plugins: plugins.Builtin()}, dags),
		Logger:            slog.New(slog.NewTextHandler(e.log, nil)),
		ArtifactRetention: retention,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("scheduler: %v", err)
		}
	})
	e.waitFor("the scheduler to open the artifact store", func() bool {
		_, err := e.s.artifactStore()
		return err == nil
	})
	return e
}

func (e *gcEnv) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// put stores content as a worker does, under its SHA-256.
func (e *gcEnv) put(name, content string) store.Artifact {
	e.t.Helper()
	sum := sha256.Sum256([]byte(content))
	sha := hex.EncodeToString(sum[:])
	if _, err := e.obs.Put(e.t.Context(), jetstream.ObjectMeta{Name: sha}, strings.NewReader(content)); err != nil {
		e.t.Fatal(err)
	}
	return store.Artifact{Name: name, Path: name + ".bin", SHA256: sha, Size: int64(len(content)), MediaType: "application/octet-stream"}
}

func (e *gcEnv) commit(fill func(b *store.Batch)) {
	e.t.Helper()
	var b store.Batch
	fill(&b)
	if err := e.st.Commit(e.t.Context(), &b); err != nil {
		e.t.Fatal(err)
	}
}

func (e *gcEnv) stored(a store.Artifact) bool {
	e.t.Helper()
	_, err := e.obs.GetInfo(e.t.Context(), a.SHA256)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return true
}

// cacheKey is a cache key made up for a test entry.
func entryKey(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestOpenArtifact(t *testing.T) {
	t.Parallel()
	e := startGC(t, 0, nil)
	a := e.put("model", "weights")
	rc, info, err := e.s.OpenArtifact(t.Context(), a.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "weights" || info.Size != 7 || info.Name != a.SHA256 {
		t.Errorf("OpenArtifact = %q (%v), size %d, name %s; want weights, 7 bytes, named by its hash", got, err, info.Size, info.Name)
	}
	if _, _, err := e.s.OpenArtifact(t.Context(), entryKey("never stored")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an object not stored: %v, want store.ErrNotFound", err)
	}
	if _, _, err := e.s.OpenArtifact(t.Context(), "../../etc/passwd"); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "64 lower-case hex digits") {
		t.Errorf("a name that is no hash: %v, want ErrInvalid saying what a hash is", err)
	}
}

// TestCollectArtifacts runs collections over objects of every kind: kept
// for a young reference, a live cache entry or the orphans' grace;
// deleted for an old reference (with the expired cache entry that held
// it), or as an old orphan; and the chunks of an upload that never
// finished.
func TestCollectArtifacts(t *testing.T) {
	t.Parallel()
	e := startGC(t, 0, nil)
	young, old := e.put("young", "young"), e.put("old", "old and unused")
	live, expired := e.put("live", "held by a live cache entry"), e.put("expired", "held by an expired one")
	orphan := e.put("orphan", "uploaded by a try that failed after")
	if _, err := e.js.Publish(t.Context(), "$O."+wire.ArtifactsBucket+".C.unfinishedupload", []byte("half an upload")); err != nil {
		t.Fatal(err)
	}
	const day = 24 * time.Hour
	e.clock.set(2 * day) // every object was stored two days ago
	now := e.clock.Now()
	from := store.TryRef{DAGID: "ml", RunID: "manual__1", TaskID: "train", Try: 1}
	e.commit(func(b *store.Batch) {
		b.RefArtifacts([]store.Artifact{young}, now.Add(-time.Hour))
		b.RefArtifacts([]store.Artifact{old, live, expired}, now.Add(-30*day))
		b.PutCacheEntry(&store.CacheEntry{Key: entryKey("live"), From: from, Created: now.Add(-30 * day), Artifacts: []store.Artifact{live}})
		b.PutCacheEntry(&store.CacheEntry{Key: entryKey("expired"), From: from, Created: now.Add(-30 * day), Expires: now.Add(-day), Artifacts: []store.Artifact{expired}})
	})

	want := GCReport{OlderThan: day, DryRun: true, Kept: 2, Deleted: 3, OrphanChunks: 1,
		KeptBytes: young.Size + live.Size, FreedBytes: old.Size + expired.Size + orphan.Size}
	r, err := e.s.CollectArtifacts(t.Context(), day, true)
	if err != nil || r != want {
		t.Fatalf("dry run: %+v, %v; want %+v", r, err, want)
	}
	for _, a := range []store.Artifact{young, old, live, expired, orphan} {
		if !e.stored(a) {
			t.Errorf("dry run deleted %s", a.Name)
		}
	}

	want.DryRun, want.CacheEntriesDropped = false, 1
	if r, err := e.s.CollectArtifacts(t.Context(), day, false); err != nil || r != want {
		t.Fatalf("collection: %+v, %v; want %+v", r, err, want)
	}
	for _, a := range []store.Artifact{young, live} {
		if !e.stored(a) {
			t.Errorf("%s was deleted, want it kept", a.Name)
		}
	}
	for _, a := range []store.Artifact{old, expired, orphan} {
		if e.stored(a) {
			t.Errorf("%s is still stored, want it deleted", a.Name)
		}
		if _, _, err := e.s.OpenArtifact(t.Context(), a.SHA256); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("opening the deleted %s: %v, want store.ErrNotFound", a.Name, err)
		}
	}
	refs, _, err := e.st.ArtifactRefs(now)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := refs[old.SHA256]; ok || len(refs) != 2 {
		t.Errorf("references after the collection: %v, want those of young and live only", refs)
	}
	if _, err := e.st.CacheEntry(entryKey("expired")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the expired entry that held a deleted artifact: %v, want it gone", err)
	}
	if _, err := e.st.CacheEntry(entryKey("live")); err != nil {
		t.Errorf("the live entry: %v, want it kept", err)
	}
	chunks, err := e.js.Stream(t.Context(), "OBJ_"+wire.ArtifactsBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := chunks.Info(t.Context(), jetstream.WithSubjectFilter("$O."+wire.ArtifactsBucket+".C.unfinishedupload"))
	if err != nil || len(info.State.Subjects) != 0 {
		t.Errorf("the unfinished upload's chunks: %v, %v; want them purged", info.State.Subjects, err)
	}
	if r, err := e.s.CollectArtifacts(t.Context(), day, false); err != nil || r.Deleted != 0 || r.Kept != 2 || r.OrphanChunks != 0 {
		t.Errorf("a second collection: %+v, %v; want nothing more to delete", r, err)
	}
}

// TestCollectArtifactsKeepsUnfinishedRuns: an artifact whose only
// reference is older than the retention stays while a task instance of a
// queued or running run holds it, as a downstream task of the run may
// not have taken it yet; once the run is finished it goes.
func TestCollectArtifactsKeepsUnfinishedRuns(t *testing.T) {
	t.Parallel()
	e := startGC(t, 0, nil)
	extracted := e.put("rows", "extracted two days ago")
	const day = 24 * time.Hour
	e.clock.set(2 * day)
	now := e.clock.Now()
	run := &store.Run{DAGID: "etl", RunID: "manual__1", RunType: store.RunTypeManual, State: store.RunRunning,
		LogicalDate: now.Add(-2 * day), QueuedAt: now.Add(-2 * day)}
	e.commit(func(b *store.Batch) {
		b.PutRun(run)
		b.PutTaskInstance(&store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: "etl", RunID: run.RunID, TaskID: "extract", State: store.TaskSuccess, Artifacts: []store.Artifact{extracted}})
		b.PutTaskInstance(&store.TaskInstance{MapIndex: store.NoMapIndex, DAGID: "etl", RunID: run.RunID, TaskID: "load", State: store.TaskScheduled})
		b.RefArtifacts([]store.Artifact{extracted}, now.Add(-2*day))
	})
	if r, err := e.s.CollectArtifacts(t.Context(), day, false); err != nil || r.Kept != 1 || r.Deleted != 0 {
		t.Fatalf("collection while the run runs: %+v, %v; want the artifact kept", r, err)
	}
	if !e.stored(extracted) {
		t.Fatal("the input of the run's waiting task was deleted")
	}
	run.State = store.RunFailed
	e.commit(func(b *store.Batch) { b.PutRun(run) })
	if r, err := e.s.CollectArtifacts(t.Context(), day, false); err != nil || r.Deleted != 1 {
		t.Fatalf("collection after the run failed: %+v, %v; want the artifact deleted", r, err)
	}
	if e.stored(extracted) {
		t.Error("the artifact of the finished run is still stored")
	}
}

// TestCollectArtifactsGrace: an object no try recorded is kept for an
// hour whatever the retention, as its try may not have reported yet; one
// that a try recorded goes as soon as the retention says.
func TestCollectArtifactsGrace(t *testing.T) {
	t.Parallel()
	e := startGC(t, 0, nil)
	recorded, unrecorded := e.put("recorded", "recorded"), e.put("unrecorded", "not recorded yet")
	e.clock.set(10 * time.Minute)
	e.commit(func(b *store.Batch) { b.RefArtifacts([]store.Artifact{recorded}, e.clock.Now().Add(-5*time.Minute)) })
	r, err := e.s.CollectArtifacts(t.Context(), time.Minute, false)
	if err != nil || r.Deleted != 1 || r.Kept != 1 {
		t.Fatalf("collection: %+v, %v; want one deleted, one kept", r, err)
	}
	if e.stored(recorded) || !e.stored(unrecorded) {
		t.Errorf("recorded stored %t, unrecorded stored %t; want the recorded one deleted and the other kept",
			e.stored(recorded), e.stored(unrecorded))
	}
	if _, err := e.s.CollectArtifacts(t.Context(), 0, false); !errors.Is(err, ErrInvalid) {
		t.Errorf("a retention of 0: %v, want ErrInvalid", err)
	}
}

// TestCollectArtifactsPeriodically: with a retention, the scheduler
// collects on its own soon after it starts, and logs the pass.
func TestCollectArtifactsPeriodically(t *testing.T) {
	saved := artifactGCDelays
	artifactGCDelays.first = 10 * time.Millisecond
	t.Cleanup(func() { artifactGCDelays = saved })
	var old store.Artifact
	e := startGC(t, 24*time.Hour, func(e *gcEnv) {
		e.clock.set(48 * time.Hour)
		old = e.put("old", "an orphan two days old")
	})
	e.waitFor("a collection pass in the log", func() bool { return strings.Contains(e.log.String(), "collected artifacts") })
	if e.stored(old) {
		t.Error("the old orphan is still stored after the pass")
	}
	if line := e.log.String(); !strings.Contains(line, "retention=24h0m0s kept=0 deleted=1 freed_bytes=22") {
		t.Errorf("log = %q, want the pass's counts", line)
	}
}
