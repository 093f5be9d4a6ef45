package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/diskfull"
	"github.com/kilnhq/kiln/internal/tmpfs"
	"github.com/kilnhq/kiln/store"
)

// TestCommitOnFullDisk fills the disk under a store with commits: the
// commit that finds no room fails with an error a caller can tell is a
// full disk, and once room is made, the store reopens sound with every
// run whose commit succeeded.
func TestCommitOnFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 4<<20)
	path := filepath.Join(dir, "kiln.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Leave the store about 1 MB.
	ballast := filepath.Join(dir, "ballast")
	tmpfs.Fill(t, ballast, 3<<20)

	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	committed := 0
	var commitErr error
	for i := 0; commitErr == nil && i < 1000; i++ {
		var b store.Batch
		for j := range 10 {
			ld := day.AddDate(0, 0, i*10+j)
			b.PutRun(&store.Run{
				DAGID: "etl", RunID: "manual__" + ld.Format(time.RFC3339), RunType: store.RunTypeManual, State: store.RunSuccess,
				LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld, QueuedAt: ld,
				Params: map[string]any{"pad": strings.Repeat("x", 4000)},
			})
		}
		if commitErr = s.Commit(context.Background(), &b); commitErr == nil {
			committed += 10
		}
	}
	if !diskfull.Is(commitErr) {
		t.Fatalf("after %d runs, Commit: %v, want a full disk (ENOSPC)", committed, commitErr)
	}
	if !strings.Contains(commitErr.Error(), path) {
		t.Errorf("Commit: %v, want it to name %s", commitErr, path)
	}
	if _, total, err := s.ListRuns(store.RunQuery{DAGID: "etl", Limit: 1}); err != nil || total != committed {
		t.Errorf("on the full disk, ListRuns total = %d, %v; want %d", total, err, committed)
	}
	if err := s.Close(); err != nil {
		t.Logf("Close on a full disk: %v", err)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	r, err := store.Check(context.Background(), path)
	if err != nil || len(r.Problems) > 0 {
		t.Fatalf("Check after the disk filled: %v, problems %q", err, r.Problems)
	}
	s, err = store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, total, err := s.ListRuns(store.RunQuery{DAGID: "etl", Limit: 1})
	if err != nil || total != committed {
		t.Errorf("reopened, ListRuns total = %d, %v; want the %d committed", total, err, committed)
	}
	var b store.Batch
	b.PutPool(store.Pool{Name: "after", Slots: 1})
	if err := s.Commit(context.Background(), &b); err != nil {
		t.Errorf("Commit once there is room again: %v", err)
	}
}
