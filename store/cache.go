package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Artifact is a file or folder a try stored in the artifact store
// (docs/artifacts.md), named there by its SHA256.
type Artifact struct {
	Name      string `json:"name"`
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
	Dir       bool   `json:"dir,omitempty"`
}

// TryRef names one try of one task instance.
type TryRef struct {
	DAGID string `json:"dag_id"`
	RunID string `json:"run_id"`
	// TaskID is the task instance's key: the task id, with [i] for an
	// instance of a mapped task (InstanceKey).
	TaskID string `json:"task_id"`
	Try    int    `json:"try"`
}

// CacheEntry is a successful try's result kept in the task cache under
// its cache key (docs/artifacts.md#the-task-cache).
type CacheEntry struct {
	Key string `json:"key"`
	// From is the try whose result this is.
	From TryRef `json:"from"`
	// Created is when that try ended; Expires when the entry stops
	// serving (zero: never), from the task's ttl at the time.
	Created   time.Time      `json:"created"`
	Expires   time.Time      `json:"expires,omitzero"`
	Outputs   map[string]any `json:"outputs,omitempty"`
	Artifacts []Artifact     `json:"artifacts,omitempty"`
}

// Live reports whether the entry may serve at now.
func (e *CacheEntry) Live(now time.Time) bool { return e.Expires.IsZero() || now.Before(e.Expires) }

var (
	bucketCache        = []byte("cache")         // key -> CacheEntry
	bucketCacheByTask  = []byte("cache_by_task") // dag, task, key -> nil
	bucketArtifactRefs = []byte("artifact_refs") // sha256 -> time of the newest try that stored or took it
)

// cacheBuckets are created by migration #6.
var cacheBuckets = [][]byte{bucketCache, bucketCacheByTask, bucketArtifactRefs}

// PutCacheEntry stores e under its key, replacing the entry there.
func (b *Batch) PutCacheEntry(e *CacheEntry) {
	what := "cache entry " + e.Key
	if !isHash(e.Key) {
		b.fail(fmt.Errorf("putting %s: the key is not a hex SHA-256", what))
		return
	}
	if err := firstErr(checkID("DAG id", e.From.DAGID), checkID("task id", e.From.TaskID)); err != nil {
		b.fail(fmt.Errorf("putting %s: %w", what, err))
		return
	}
	val, err := json.Marshal(e)
	if err != nil {
		b.fail(fmt.Errorf("encoding %s: %w", what, err))
		return
	}
	k := []byte(e.Key)
	index := byTaskKey(e.From, e.Key)
	b.add(Change{}, func(tx *bolt.Tx) (bool, error) {
		entries := tx.Bucket(bucketCache)
		if old := entries.Get(k); old != nil {
			var was CacheEntry
			if err := json.Unmarshal(old, &was); err == nil {
				if err := del(tx.Bucket(bucketCacheByTask), byTaskKey(was.From, e.Key)); err != nil {
					return false, err
				}
			}
		}
		if err := put(tx.Bucket(bucketCacheByTask), index, nil); err != nil {
			return false, err
		}
		return putIfChanged(entries, k, val)
	})
}

// RefArtifacts notes that a try at the given time stored or took the
// artifacts: garbage collection keeps an artifact whose newest reference
// is younger than the retention (docs/artifacts.md#retention).
func (b *Batch) RefArtifacts(arts []Artifact, at time.Time) {
	if len(arts) == 0 {
		return
	}
	shas := make([][]byte, 0, len(arts))
	for _, a := range arts {
		if !isHash(a.SHA256) {
			b.fail(fmt.Errorf("referencing artifact %s: %q is not a hex SHA-256", a.Name, a.SHA256))
			return
		}
		shas = append(shas, []byte(a.SHA256))
	}
	t := appendTime(nil, at)
	b.add(Change{}, func(tx *bolt.Tx) (bool, error) {
		refs := tx.Bucket(bucketArtifactRefs)
		changed := false
		for _, sha := range shas {
			if old := refs.Get(sha); len(old) == timeLen && !decodeTime(old).Before(at) {
				continue
			}
			if err := put(refs, sha, t); err != nil {
				return false, err
			}
			changed = true
		}
		return changed, nil
	})
}

// CacheEntry returns the entry under key, or ErrNotFound.
func (s *Store) CacheEntry(key string) (*CacheEntry, error) {
	var e *CacheEntry
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCache).Get([]byte(key))
		if v == nil {
			return ErrNotFound
		}
		e = new(CacheEntry)
		return json.Unmarshal(v, e)
	})
	return e, err
}

// CacheEntries returns the entries whose try belongs to dagID (all when
// empty) and taskID (all of the DAG when empty), newest first.
func (s *Store) CacheEntries(dagID, taskID string) ([]CacheEntry, error) {
	var out []CacheEntry
	err := s.view(func(tx *bolt.Tx) error {
		entries := tx.Bucket(bucketCache)
		return s.cacheKeys(tx, dagID, taskID, func(k []byte) error {
			v := entries.Get(k)
			if v == nil {
				return nil
			}
			var e CacheEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding cache entry %s: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b CacheEntry) int { return b.Created.Compare(a.Created) })
	return out, err
}

// ClearCache deletes the entries CacheEntries(dagID, taskID) would list
// and returns how many.
func (s *Store) ClearCache(ctx context.Context, dagID, taskID string) (int, error) {
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		var index, keys [][]byte
		err := s.cacheKeys(tx, dagID, taskID, func(k []byte) error {
			keys = append(keys, slices.Clone(k))
			return nil
		})
		if err != nil {
			return err
		}
		entries := tx.Bucket(bucketCache)
		for _, k := range keys {
			var e CacheEntry
			if v := entries.Get(k); v != nil && json.Unmarshal(v, &e) == nil {
				index = append(index, key(e.From.DAGID, e.From.TaskID, string(k)))
			}
			if err := del(entries, k); err != nil {
				return err
			}
			n++
		}
		for _, k := range index {
			if err := del(tx.Bucket(bucketCacheByTask), k); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// cacheKeys calls fn with the key of each cache entry of dagID and taskID
// (every one when dagID is empty).
func (s *Store) cacheKeys(tx *bolt.Tx, dagID, taskID string, fn func(k []byte) error) error {
	if dagID == "" {
		return tx.Bucket(bucketCache).ForEach(func(k, _ []byte) error { return fn(k) })
	}
	prefix := key(dagID, "")
	if taskID != "" {
		prefix = key(dagID, taskID, "")
	}
	c := tx.Bucket(bucketCacheByTask).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if i := bytes.LastIndexByte(k, sep); i >= 0 {
			if err := fn(k[i+1:]); err != nil {
				return err
			}
		}
	}
	return nil
}

// ArtifactRefs returns, for garbage collection, each artifact's SHA-256
// with the time of its newest reference, and the set of SHA-256 that must
// stay whatever their age: those live cache entries at now hold, and those
// the task instances of queued and running runs hold, which a downstream
// task of the run may still take as an input.
func (s *Store) ArtifactRefs(now time.Time) (refs map[string]time.Time, held map[string]bool, err error) {
	refs, held = map[string]time.Time{}, map[string]bool{}
	err = s.view(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketArtifactRefs).ForEach(func(k, v []byte) error {
			if len(v) == timeLen {
				refs[string(k)] = decodeTime(v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketCache).ForEach(func(k, v []byte) error {
			var e CacheEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding cache entry %s: %w", k, err)
			}
			if e.Live(now) {
				for _, a := range e.Artifacts {
					held[a.SHA256] = true
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		return activeArtifacts(tx, held)
	})
	return refs, held, err
}

// activeArtifacts adds to held the artifacts of the task instances of the
// queued and running runs.
func activeArtifacts(tx *bolt.Tx, held map[string]bool) error {
	tis := tx.Bucket(bucketTaskInstances)
	return tx.Bucket(bucketActiveRuns).ForEach(func(k, _ []byte) error {
		r, err := getRun(tx, k)
		if err != nil {
			return fmt.Errorf("active run %q: %w", k, err)
		}
		return scan(tis, prefix(r.DAGID, r.RunID), func(v []byte) error {
			var ti struct {
				Artifacts []Artifact `json:"artifacts"`
			}
			if err := json.Unmarshal(v, &ti); err != nil {
				return err
			}
			for _, a := range ti.Artifacts {
				held[a.SHA256] = true
			}
			return nil
		})
	})
}

// ForgetArtifacts deletes the references of artifacts removed from the
// artifact store, and the cache entries that held any of them, and
// returns how many entries went.
func (s *Store) ForgetArtifacts(ctx context.Context, shas []string) (int, error) {
	gone := map[string]bool{}
	for _, sha := range shas {
		gone[sha] = true
	}
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		refs := tx.Bucket(bucketArtifactRefs)
		for sha := range gone {
			if err := del(refs, []byte(sha)); err != nil {
				return err
			}
		}
		entries := tx.Bucket(bucketCache)
		var drop []CacheEntry
		err := entries.ForEach(func(k, v []byte) error {
			var e CacheEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decoding cache entry %s: %w", k, err)
			}
			if slices.ContainsFunc(e.Artifacts, func(a Artifact) bool { return gone[a.SHA256] }) {
				drop = append(drop, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range drop {
			if err := errors.Join(del(entries, []byte(e.Key)), del(tx.Bucket(bucketCacheByTask), byTaskKey(e.From, e.Key))); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// byTaskKey is the key of a cache entry in the by-task index: an
// instance of a mapped task counts as its task.
func byTaskKey(from TryRef, k string) []byte {
	taskID, _, _ := SplitInstanceKey(from.TaskID)
	return key(from.DAGID, taskID, k)
}
