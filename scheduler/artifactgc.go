package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// Reading and collecting the artifact store (docs/artifacts.md#retention):
// the API streams an object out of it, and garbage collection deletes the
// objects no run younger than the retention, no unfinished run and no
// live cache entry still refers to.

// OpenArtifact opens the object named sha in the artifact store for
// reading: the content streams from NATS as it is read, and a read that
// reaches the end fails if the content does not match the digest the
// store recorded. The caller closes it. An object that is not stored is an
// error wrapping store.ErrNotFound; a name that is not a SHA-256 one
// wrapping ErrInvalid.
func (s *Scheduler) OpenArtifact(ctx context.Context, sha string) (io.ReadCloser, *jetstream.ObjectInfo, error) {
	if err := wire.CheckSHA256(sha); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	obs, err := s.artifactStore()
	if err != nil {
		return nil, nil, err
	}
	res, err := obs.Get(ctx, sha)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, nil, fmt.Errorf("artifact %s: %w", sha, store.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading artifact %s: %w", sha, err)
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return nil, nil, fmt.Errorf("reading artifact %s: %w", sha, err)
	}
	return res, info, nil
}

// GCReport is what a pass of artifact garbage collection did, or with
// DryRun would do.
type GCReport struct {
	OlderThan time.Duration
	DryRun    bool
	// Kept and Deleted count the stored objects; KeptBytes and
	// FreedBytes add up their sizes.
	Kept, Deleted         int
	KeptBytes, FreedBytes int64
	// CacheEntriesDropped counts the task cache entries that held a
	// deleted artifact: expired entries, as live ones keep theirs.
	CacheEntriesDropped int
	// OrphanChunks counts the chunk sets of uploads that never finished,
	// purged from the store's stream.
	OrphanChunks int
}

// orphanGrace is how long an object that no try has recorded, or the
// chunks of an unfinished upload, are kept whatever the retention: the
// try that uploaded it may not have reported yet.
const orphanGrace = time.Hour

// CollectArtifacts deletes from the artifact store every object whose
// newest reference (a try that stored it or took it as an input, or a
// cache hit) is older than olderThan, unless a live cache entry or a task
// instance of a queued or running run holds it: a downstream task of that
// run may not have taken it yet.
// An object no try recorded, left by a try that failed after its upload,
// goes once it was stored longer ago than olderThan and orphanGrace. The
// store then forgets the deleted artifacts' references and the cache
// entries that held them. With dryRun nothing is deleted.
func (s *Scheduler) CollectArtifacts(ctx context.Context, olderThan time.Duration, dryRun bool) (GCReport, error) {
	r := GCReport{OlderThan: olderThan, DryRun: dryRun}
	if olderThan <= 0 {
		return r, fmt.Errorf("%w: the age of artifacts to collect must be above zero, got %v", ErrInvalid, olderThan)
	}
	obs, err := s.artifactStore()
	if err != nil {
		return r, err
	}
	now := s.clock.Now()
	cutoff := now.Add(-olderThan)
	orphanCutoff := cutoff
	if t := now.Add(-orphanGrace); t.Before(orphanCutoff) {
		orphanCutoff = t
	}
	// List first: a reference added while the objects are listed is then
	// read, so an object it names is kept.
	infos, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return r, fmt.Errorf("listing the artifact store: %w", err)
	}
	refs, held, err := s.cfg.Store.ArtifactRefs(now)
	if err != nil {
		return r, fmt.Errorf("reading artifact references: %w", err)
	}
	stored := make(map[string]bool, len(infos))
	nuids := make(map[string]bool, len(infos))
	var gone []string
	var errs []error
	for _, info := range infos {
		stored[info.Name], nuids[info.NUID] = true, true
		at, referenced := refs[info.Name]
		keep := held[info.Name] ||
			(referenced && !at.Before(cutoff)) ||
			(!referenced && !info.ModTime.Before(orphanCutoff))
		if keep {
			r.Kept++
			r.KeptBytes += int64(info.Size)
			continue
		}
		if !dryRun {
			if err := obs.Delete(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
				errs = append(errs, fmt.Errorf("deleting artifact %s: %w", info.Name, err))
				r.Kept++
				r.KeptBytes += int64(info.Size)
				continue
			}
		}
		gone = append(gone, info.Name)
		r.Deleted++
		r.FreedBytes += int64(info.Size)
	}
	// References to objects no longer stored (deleted by hand, or by a
	// pass that failed before the store forgot them) go too once old.
	for sha, at := range refs {
		if !stored[sha] && at.Before(cutoff) {
			gone = append(gone, sha)
		}
	}
	if !dryRun && len(gone) > 0 {
		n, err := s.cfg.Store.ForgetArtifacts(ctx, gone)
		if err != nil {
			errs = append(errs, fmt.Errorf("forgetting collected artifacts: %w", err))
		}
		r.CacheEntriesDropped = n
	}
	n, err := s.purgeOrphanChunks(ctx, nuids, orphanCutoff, dryRun)
	r.OrphanChunks = n
	if err != nil {
		errs = append(errs, err)
	}
	return r, errors.Join(errs...)
}

// purgeOrphanChunks purges the chunks of uploads that never stored their
// object's metadata (a worker that died half-way) and whose last chunk is
// older than cutoff; known are the NUIDs of the stored objects. It
// returns how many chunk sets it purged, or with dryRun would.
func (s *Scheduler) purgeOrphanChunks(ctx context.Context, known map[string]bool, cutoff time.Time, dryRun bool) (int, error) {
	stream, err := s.js.Stream(ctx, "OBJ_"+wire.ArtifactsBucket)
	if err != nil {
		return 0, fmt.Errorf("opening the artifact store's stream: %w", err)
	}
	prefix := "$O." + wire.ArtifactsBucket + ".C."
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return 0, fmt.Errorf("reading the artifact store's chunks: %w", err)
	}
	n := 0
	var errs []error
	for subject := range info.State.Subjects {
		if known[strings.TrimPrefix(subject, prefix)] {
			continue
		}
		last, err := stream.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged since
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading chunks %s: %w", subject, err))
			continue
		}
		if !last.Time.Before(cutoff) {
			continue // an upload may be under way
		}
		if !dryRun {
			if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
				errs = append(errs, fmt.Errorf("purging chunks %s: %w", subject, err))
				continue
			}
		}
		n++
	}
	return n, errors.Join(errs...)
}

// artifactGCDelays are when the periodic collection runs: once first
// after the start, then every every.
var artifactGCDelays = struct{ first, every time.Duration }{time.Minute, time.Hour}

// collectArtifactsEvery collects the artifact store with the configured
// retention, shortly after the start and then hourly, until ctx ends;
// without a retention it returns at once.
func (s *Scheduler) collectArtifactsEvery(ctx context.Context) {
	if s.cfg.ArtifactRetention <= 0 {
		return
	}
	wait := artifactGCDelays.first
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.clock.After(wait):
		}
		wait = artifactGCDelays.every
		start := time.Now()
		r, err := s.CollectArtifacts(ctx, s.cfg.ArtifactRetention, false)
		if ctx.Err() != nil {
			return
		}
		args := []any{"retention", s.cfg.ArtifactRetention.String(), "kept", r.Kept, "deleted", r.Deleted,
			"freed_bytes", r.FreedBytes, "cache_entries_dropped", r.CacheEntriesDropped, "orphan_chunks", r.OrphanChunks,
			"took", time.Since(start).Round(time.Millisecond)}
		if err != nil {
			s.log.Warn("collecting artifacts", append(args, "err", err)...)
			continue
		}
		s.log.Info("collected artifacts", args...)
	}
}

// ClearCache deletes the task cache's entries of a DAG's task (every
// task of the DAG when taskID is empty, every DAG's when dagID is) and
// returns how many; the tasks run again the next time.
func (s *Scheduler) ClearCache(ctx context.Context, dagID, taskID string) (int, error) {
	if dagID == "" && taskID != "" {
		return 0, fmt.Errorf("%w: a task id needs its DAG id", ErrInvalid)
	}
	return s.cfg.Store.ClearCache(ctx, dagID, taskID)
}
