package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestCacheEntries stores entries of two tasks, lists them by DAG and
// task, replaces one key's entry with another task's, and clears one
// task's: the index follows every change.
func TestCacheEntries(t *testing.T) {
	s := openTest(t)
	ctx := t.Context()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	entry := func(k, dagID, task string, at time.Time) *CacheEntry {
		return &CacheEntry{Key: hashOf(k), From: TryRef{DAGID: dagID, RunID: "r", TaskID: task, Try: 1}, Created: at,
			Artifacts: []Artifact{{Name: "model", SHA256: hashOf("model " + k)}}}
	}
	commit(t, s, func(b *Batch) {
		b.PutCacheEntry(entry("a", "ml", "train", t0))
		b.PutCacheEntry(entry("b", "ml", "train", t0.Add(time.Hour)))
		b.PutCacheEntry(entry("c", "ml", "features", t0))
		b.PutCacheEntry(entry("d", "etl", "load", t0))
	})
	keysOf := func(es []CacheEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Key)
		}
		return out
	}
	list := func(dagID, task string) []string {
		t.Helper()
		es, err := s.CacheEntries(dagID, task)
		if err != nil {
			t.Fatal(err)
		}
		return keysOf(es)
	}
	if got := list("ml", "train"); len(got) != 2 || got[0] != hashOf("b") || got[1] != hashOf("a") {
		t.Errorf("ml train: %v, want b then a (newest first)", got)
	}
	if got := list("ml", ""); len(got) != 3 {
		t.Errorf("ml: %v, want 3", got)
	}
	if got := list("", ""); len(got) != 4 {
		t.Errorf("all: %v, want 4", got)
	}
	// Another task's try with the same key takes the entry over.
	commit(t, s, func(b *Batch) { b.PutCacheEntry(entry("a", "etl", "load", t0.Add(2*time.Hour))) })
	if got := list("ml", "train"); len(got) != 1 || got[0] != hashOf("b") {
		t.Errorf("ml train after the take-over: %v, want b", got)
	}
	if e, err := s.CacheEntry(hashOf("a")); err != nil || e.From.DAGID != "etl" {
		t.Errorf("entry a: %+v, %v; want etl's", e, err)
	}
	n, err := s.ClearCache(ctx, "etl", "load")
	if err != nil || n != 2 {
		t.Fatalf("clear etl load: %d, %v; want 2", n, err)
	}
	if _, err := s.CacheEntry(hashOf("d")); !errors.Is(err, ErrNotFound) {
		t.Errorf("entry d after clearing: %v, want ErrNotFound", err)
	}
	if got := list("", ""); len(got) != 2 {
		t.Errorf("all after clearing: %v, want 2", got)
	}
}

// TestArtifactRefs keeps the newest reference of each artifact, tells
// the artifacts of live cache entries and of unfinished runs' task
// instances, and forgets collected artifacts with the entries that held
// them.
func TestArtifactRefs(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	a, b := Artifact{Name: "a", SHA256: hashOf("a")}, Artifact{Name: "b", SHA256: hashOf("b")}
	running, done := Artifact{Name: "running", SHA256: hashOf("running")}, Artifact{Name: "done", SHA256: hashOf("done")}
	runningRun, doneRun := newRun("etl", day(1), RunRunning), newRun("etl", day(0), RunSuccess)
	commit(t, s, func(bt *Batch) {
		bt.PutRun(runningRun)
		bt.PutRun(doneRun)
		bt.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: runningRun.RunID, TaskID: "extract", State: TaskSuccess, Artifacts: []Artifact{running}})
		bt.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: runningRun.RunID, TaskID: "load", State: TaskQueued})
		bt.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: doneRun.RunID, TaskID: "extract", State: TaskSuccess, Artifacts: []Artifact{done}})
		bt.RefArtifacts([]Artifact{a, b}, t0.Add(time.Hour))
		bt.RefArtifacts([]Artifact{a}, t0) // older: kept as it was
		bt.PutCacheEntry(&CacheEntry{Key: hashOf("k1"), From: TryRef{DAGID: "d", TaskID: "t"}, Created: t0, Artifacts: []Artifact{a}})
		bt.PutCacheEntry(&CacheEntry{Key: hashOf("k2"), From: TryRef{DAGID: "d", TaskID: "t"}, Created: t0, Expires: t0.Add(time.Hour), Artifacts: []Artifact{b}})
	})
	refs, held, err := s.ArtifactRefs(t0.Add(2 * time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !refs[a.SHA256].Equal(t0.Add(time.Hour)) || !refs[b.SHA256].Equal(t0.Add(time.Hour)) {
		t.Errorf("refs %v, want both at t0+1h", refs)
	}
	if !held[a.SHA256] || held[b.SHA256] || !held[running.SHA256] || held[done.SHA256] || len(held) != 2 {
		t.Errorf("held: %v, want a (a live entry's) and running (a running run's task's) only: b's entry expired, done's run finished", held)
	}
	n, err := s.ForgetArtifacts(t.Context(), []string{a.SHA256})
	if err != nil || n != 1 {
		t.Fatalf("forgetting a: %d entries, %v; want 1", n, err)
	}
	refs, _, _ = s.ArtifactRefs(t0)
	if _, ok := refs[a.SHA256]; ok || len(refs) != 1 {
		t.Errorf("refs after forgetting a: %v", refs)
	}
	if es, _ := s.CacheEntries("d", "t"); len(es) != 1 || es[0].Key != hashOf("k2") {
		t.Errorf("entries after forgetting a: %+v, want k2 only", es)
	}
}
