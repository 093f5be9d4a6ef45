package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// openTest opens a store in a fresh temporary folder and closes it when
// the test ends.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "sub", "kiln.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// commit commits the writes fill adds, failing the test on error.
func commit(t testing.TB, s *Store, fill func(b *Batch)) {
	t.Helper()
	var b Batch
	fill(&b)
	if err := s.Commit(context.Background(), &b); err != nil {
		t.Fatalf("Commit: %v", err)
	}
}

var day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func day(n int) time.Time { return day0.AddDate(0, 0, n) }

// newRun returns a scheduled run of dagID at logical date ld.
func newRun(dagID string, ld time.Time, state RunState) *Run {
	return &Run{
		DAGID:             dagID,
		RunID:             RunTypeScheduled + "__" + ld.UTC().Format(time.RFC3339Nano),
		RunType:           RunTypeScheduled,
		State:             state,
		LogicalDate:       ld,
		DataIntervalStart: ld,
		DataIntervalEnd:   ld.AddDate(0, 0, 1),
		QueuedAt:          ld.AddDate(0, 0, 1),
		Params:            map[string]any{"region": "eu", "sample_frac": 0.5},
		DAGHash:           "3f2a9c",
	}
}

func TestOpenCreatesFolderAndReopenSeesData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "kiln.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	r := newRun("etl", day(1), RunSuccess)
	commit(t, s, func(b *Batch) {
		b.PutRun(r)
		b.PutPool(Pool{Name: "gpu", Slots: 2})
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	if _, err := s.GetRun("etl", r.RunID); err != nil {
		t.Errorf("GetRun after reopen: %v", err)
	}
	if p, err := s.GetPool("gpu"); err != nil || p.Slots != 2 {
		t.Errorf("GetPool after reopen = %+v, %v; want 2 slots", p, err)
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()

	start := time.Now()
	_, err = open(path, options{lockTimeout: 50 * time.Millisecond, migrations: migrations})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: got %v, want ErrLocked", err)
	}
	if want := fmt.Sprintf("store %s is locked by another process", path); !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second open took %v", d)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	s.Close()
	setSchemaVersion(t, path, uint64(SchemaVersion()+1))

	_, err = Open(path)
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open: got %v, want ErrNewerSchema", err)
	}
	want := fmt.Sprintf("file has schema version %d, this program knows up to %d", SchemaVersion()+1, SchemaVersion())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should name the file and say %q", err, want)
	}
}

func setSchemaVersion(t *testing.T, path string, v uint64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(metaSchemaVersion, u64(v))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func schemaVersion(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v uint64
	db.View(func(tx *bolt.Tx) error {
		v = readU64(tx.Bucket(bucketMeta).Get(metaSchemaVersion))
		return nil
	})
	return v
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	opts := options{lockTimeout: time.Second, migrations: migrations}
	reopen := func(o options) error {
		t.Helper()
		s, err := open(path, o)
		if err != nil {
			return err
		}
		return s.Close()
	}

	// A file at the current version, with data.
	s, err := open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	commit(t, s, func(b *Batch) { b.PutRun(newRun("etl", day(1), RunSuccess)) })
	s.Close()

	ran := 0
	upgraded := opts
	upgraded.migrations = append(migrations[:len(migrations):len(migrations)], migration{
		name: "add a bucket",
		up: func(tx *bolt.Tx) error {
			ran++
			_, err := tx.CreateBucket([]byte("extra"))
			return err
		},
	})
	failing := opts
	failing.migrations = append(migrations[:len(migrations):len(migrations)], migration{
		name: "break",
		up:   func(*bolt.Tx) error { return errors.New("boom") },
	})

	cur := uint64(len(migrations))
	steps := []struct {
		name        string
		opts        options
		wantErr     string
		wantRan     int
		wantVersion uint64
	}{
		{"failing migration leaves the file as it was", failing, fmt.Sprintf("migrating schema to version %d (break): boom", cur+1), 0, cur},
		{"upgrade runs the new migration", upgraded, "", 1, cur + 1},
		{"reopen does not run it again", upgraded, "", 1, cur + 1},
		{"old code refuses the upgraded file", opts, "schema version newer", 1, cur + 1},
	}
	for _, st := range steps {
		err := reopen(st.opts)
		switch {
		case st.wantErr == "" && err != nil:
			t.Errorf("%s: %v", st.name, err)
		case st.wantErr != "" && (err == nil || !strings.Contains(err.Error(), st.wantErr)):
			t.Errorf("%s: got error %v, want %q", st.name, err, st.wantErr)
		}
		if ran != st.wantRan {
			t.Errorf("%s: migration ran %d times, want %d", st.name, ran, st.wantRan)
		}
		if v := schemaVersion(t, path); v != st.wantVersion {
			t.Errorf("%s: schema version %d, want %d", st.name, v, st.wantVersion)
		}
	}

	// The data survived the upgrade.
	s, err = open(path, upgraded)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.CountRuns("etl"); err != nil || n != 1 {
		t.Errorf("CountRuns after upgrade = %d, %v; want 1", n, err)
	}
}

func TestClosedStore(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	var b Batch
	b.PutPool(Pool{Name: "p", Slots: 1})
	if err := s.Commit(context.Background(), &b); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.Pools(); !errors.Is(err, ErrClosed) {
		t.Errorf("Pools after Close: got %v, want ErrClosed", err)
	}
}
