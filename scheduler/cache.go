package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/docker"
	"github.com/kilnhq/kiln/store"
)

// The task cache (docs/artifacts.md#the-task-cache): a task whose `cache`
// is on gets a key when it is queued, the SHA-256 of everything that can
// change its result. When a live entry holds a result for the key and
// every artifact of it is still stored, the task instance succeeds at
// once with that result, without a worker; otherwise it runs, and its
// success is kept under the key of what ran.

// Results a try's CacheRecord gives when the cache was not consulted.
const (
	cacheHit        = "hit"
	cacheMiss       = "miss"
	cacheRunNoCache = "bypassed: the run was created with --no-cache"
	cacheCleared    = "bypassed: the task was cleared, which always runs it"
)

// resolveInputs fills the assignment's inputs from the artifacts of the
// upstream tasks, and what the task's templates see as .inputs.NAME.
func resolveInputs(ar *activeRun, t *dag.Task, ti *store.TaskInstance, v *dag.Values) ([]wire.Input, error) {
	if len(t.Inputs) == 0 {
		return nil, nil
	}
	v.Inputs = make(map[string]string, len(t.Inputs))
	out := make([]wire.Input, 0, len(t.Inputs))
	for _, in := range t.Inputs {
		from := in.Task + "." + in.Artifact
		up := ar.tis[in.Task]
		if ti.MapIndex >= 0 && t.MapGroup != "" && ar.dag.Task(in.Task).MapGroup == t.MapGroup {
			up = ar.tis[store.InstanceKey(in.Task, ti.MapIndex)] // the same branch's
		}
		if up == nil {
			return nil, fmt.Errorf("input %s (%s): the run has no task %s", in.Name, from, in.Task)
		}
		i := slices.IndexFunc(up.Artifacts, func(a store.Artifact) bool { return a.Name == in.Artifact })
		if i < 0 {
			return nil, fmt.Errorf("input %s (%s): task %s is %s and stored no artifact %s", in.Name, from, in.Task, up.State, in.Artifact)
		}
		out = append(out, wire.Input{Name: in.Name, From: from, Artifact: wireArtifact(up.Artifacts[i])})
		v.Inputs[in.Name] = wire.InputPlaceholder(in.Name)
	}
	return out, nil
}

func wireArtifact(a store.Artifact) wire.Artifact {
	return wire.Artifact{Name: a.Name, Path: a.Path, SHA256: a.SHA256, Size: a.Size, MediaType: a.MediaType, Dir: a.Dir}
}

func storeArtifact(a wire.Artifact) store.Artifact {
	return store.Artifact{Name: a.Name, Path: a.Path, SHA256: a.SHA256, Size: a.Size, MediaType: a.MediaType, Dir: a.Dir}
}

// cacheParts are the parts of a task's cache key but the plugin's build,
// from what was rendered for its try: the assignment a and the values v.
func cacheParts(ar *activeRun, t *dag.Task, v dag.Values, a *wire.Assignment, m *store.Manifest) (store.CacheParts, error) {
	p := store.CacheParts{
		Plugin: store.PluginRecord{Name: t.Plugin},
		Env:    map[string]string{},
		Inputs: map[string]string{},
	}
	var err error
	if p.With, err = hashJSON(m.With); err != nil {
		return p, fmt.Errorf("cache key: with: %w", err)
	}
	if p.OutputsRead, err = hashJSON(m.OutputsRead); err != nil {
		return p, fmt.Errorf("cache key: outputs read: %w", err)
	}
	for _, name := range m.Env {
		val := v.Env[name]
		if isSecret(val, a.Mask) {
			p.Env[name] = "secret"
			continue
		}
		p.Env[name] = hashString(val)
	}
	maps.Copy(p.Inputs, m.Inputs)
	if t.Cache.Key != nil {
		key, err := t.Cache.Key.Render(v.Data(ar.dag.Location))
		if err != nil {
			return p, fmt.Errorf("cache.key: %w", err)
		}
		p.Key = key
	}
	return p, nil
}

// isSecret reports whether an env value holds a secret's value.
func isSecret(val string, secrets []string) bool {
	return slices.ContainsFunc(secrets, func(s string) bool { return s != "" && strings.Contains(val, s) })
}

// cacheKey is the key of parts: the hex SHA-256 of their JSON, whose
// maps encode with sorted keys. Parts hold strings only, which always
// encode.
func cacheKey(p store.CacheParts) string {
	h, _ := hashJSON(p)
	return h
}

// hashJSON is the hex SHA-256 of v's JSON.
func hashJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

func hashString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// consultCache gives the try tr of ti its cache record and, on a hit,
// ends the task instance with the cached result and reports true. It
// runs on the loop: it reads the store and the loop's views of the
// artifact store and the workers, and makes no network call.
func (s *Scheduler) consultCache(ar *activeRun, t *dag.Task, ti *store.TaskInstance, tr *store.Try, v dag.Values, a *wire.Assignment, now time.Time) (hit bool, err error) {
	parts, err := cacheParts(ar, t, v, a, tr.Manifest)
	if err != nil {
		return false, err
	}
	rec := &store.CacheRecord{Parts: parts}
	tr.Manifest.Cache = rec
	switch {
	case ar.run.NoCache:
		rec.Result = cacheRunNoCache
		return false, nil
	case ti.NoCache:
		rec.Result = cacheCleared
		return false, nil
	}
	if why := uncacheable(t.Plugin, a.With); why != "" {
		rec.Result = "not consulted: " + why
		return false, nil
	}
	build, ok := s.registry.build(ti.Queue, t.Plugin, now)
	if !ok {
		rec.Result = fmt.Sprintf("not consulted: the live workers of queue %s do not agree on one build of plugin %s, or none reported it", ti.Queue, t.Plugin)
		return false, nil
	}
	rec.Parts.Plugin.Version, rec.Parts.Plugin.SHA256 = build.Version, build.SHA256
	rec.Key = cacheKey(rec.Parts)
	e, err := s.cfg.Store.CacheEntry(rec.Key)
	switch {
	case isNotFound(err):
		rec.Result = cacheMiss
		return false, nil
	case err != nil:
		s.log.Warn("reading the task cache", "key", rec.Key, "err", err)
		rec.Result = "not consulted: " + err.Error()
		return false, nil
	}
	if ttl := t.Cache.TTL; ttl > 0 && !now.Before(e.Created.Add(ttl)) {
		rec.Result = fmt.Sprintf("miss: the result of %s expired at %s (ttl %s)", tryRefString(e.From), e.Created.Add(ttl).UTC().Format(time.RFC3339), ttl)
		return false, nil
	}
	for _, art := range e.Artifacts {
		if !s.stored.has(art.SHA256, art.Size) {
			rec.Result = fmt.Sprintf("miss: artifact %s of the result of %s is no longer stored", art.Name, tryRefString(e.From))
			return false, nil
		}
	}
	rec.Result = cacheHit
	s.takeCached(ti, tr, e, now)
	return true, nil
}

// takeCached ends ti's current try tr with the cached result e.
func (s *Scheduler) takeCached(ti *store.TaskInstance, tr *store.Try, e *store.CacheEntry, now time.Time) {
	from := e.From
	k := tryKeyOf(ti)
	// Written off the loop: creating a log file costs more than the rest
	// of a hit.
	s.t.notes = append(s.t.notes, tryNote{k, fmt.Sprintf("kiln: cached: the result of %s (cache key %s); the task did not run", tryRefString(from), e.Key)})
	at := timePtr(now.UTC())
	tr.State = store.TaskSuccess
	tr.StartDate, tr.EndDate = at, at
	tr.Outputs = maps.Clone(e.Outputs)
	tr.Artifacts = slices.Clone(e.Artifacts)
	tr.CachedFrom = &from
	s.putTry(tr)
	s.forget(k)
	ti.Pokes, ti.FirstPoke = 0, nil
	ti.StartDate = at
	ti.Outputs = tr.Outputs
	ti.Artifacts = tr.Artifacts
	ti.CachedFrom = &from
	s.t.refs = append(s.t.refs, artifactRefs{tr.Artifacts, now})
	s.metrics.cacheHits.Inc()
	s.endTI(ti, store.TaskSuccess, "", now)
}

// keepInCache stores a successful try's result in the cache under the
// key of what ran: the parts rendered when it was queued, with the plugin
// build its worker reported.
func (s *Scheduler) keepInCache(t *dag.Task, tr *store.Try, now time.Time) {
	m := tr.Manifest
	if t == nil || t.Cache == nil || m == nil || m.Cache == nil || m.Plugin.SHA256 == "" || uncacheable(t.Plugin, m.With) != "" {
		return
	}
	m.Cache.Parts.Plugin.Version, m.Cache.Parts.Plugin.SHA256 = m.Plugin.Version, m.Plugin.SHA256
	m.Cache.Key = cacheKey(m.Cache.Parts)
	e := &store.CacheEntry{
		Key:       m.Cache.Key,
		From:      store.TryRef{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.Key(), Try: tr.Number},
		Created:   now.UTC(),
		Outputs:   tr.Outputs,
		Artifacts: tr.Artifacts,
	}
	if t.Cache.TTL > 0 {
		e.Expires = e.Created.Add(t.Cache.TTL)
	}
	s.t.cache = append(s.t.cache, e)
}

// uncacheable says why a task's result cannot be cached although its
// `cache` asks for it, or "": a container's image given by tag can move to
// other content, which the key would not see (docs/artifacts.md#what-the-key-covers).
func uncacheable(plugin string, with map[string]any) string {
	if plugin != docker.Name {
		return ""
	}
	image, _ := with["image"].(string)
	if pinned, err := docker.Pinned(image); err != nil || !pinned {
		return fmt.Sprintf("image %s is given by tag, which can move; give it by digest (NAME@sha256:…) or ID (sha256:…) for the task to be cached", image)
	}
	return ""
}

// tryRefString names a try as `kiln tasks show` takes it.
func tryRefString(r store.TryRef) string {
	return fmt.Sprintf("%s/%s/%s#%d", r.DAGID, r.RunID, r.TaskID, r.Try)
}

// artifactRefs are artifacts a try stored or took, at a time: the turn
// commits them as references (store.Batch.RefArtifacts).
type artifactRefs struct {
	arts []store.Artifact
	at   time.Time
}

// checkArtifacts checks the artifacts a worker reported for a successful
// try against those the task declares.
func checkArtifacts(t *dag.Task, got []wire.Artifact) ([]store.Artifact, error) {
	if t == nil || len(t.Artifacts) == 0 {
		return nil, nil
	}
	out := make([]store.Artifact, 0, len(got))
	for _, a := range got {
		if _, ok := t.Artifacts[a.Name]; !ok {
			return nil, fmt.Errorf("the worker reported artifact %q, which the task does not declare", a.Name)
		}
		if err := wire.CheckSHA256(a.SHA256); err != nil {
			return nil, fmt.Errorf("artifact %s: %w", a.Name, err)
		}
		out = append(out, storeArtifact(a))
	}
	for _, name := range slices.Sorted(maps.Keys(t.Artifacts)) {
		if !slices.ContainsFunc(out, func(a store.Artifact) bool { return a.Name == name }) {
			return nil, fmt.Errorf("artifact %s (%s): the worker reported none; is it older than the scheduler?", name, t.Artifacts[name])
		}
	}
	slices.SortFunc(out, func(a, b store.Artifact) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
