package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/store/storetest"
)

// TestOpenRefusesDamagedFiles damages a store holding data in each way
// storetest knows and checks that Open refuses it with a *DamagedError
// naming the file and the problem (a panic or a fault would end the test
// binary), and that Check lists the same problem.
func TestOpenRefusesDamagedFiles(t *testing.T) {
	for _, d := range storetest.Damages {
		t.Run(d.Name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kiln.db")
			storetest.Fill(t, path)
			d.Do(t, path)

			s, err := store.Open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded, want it to refuse the damaged file")
			}
			var de *store.DamagedError
			if !errors.As(err, &de) || !errors.Is(err, store.ErrDamaged) {
				t.Fatalf("Open: %v, want a *DamagedError", err)
			}
			if de.Path != path || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), d.Want) {
				t.Errorf("Open: %v, want it to name %s and say %q", err, path, d.Want)
			}

			r, err := store.Check(context.Background(), path)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if !strings.Contains(strings.Join(r.Problems, "\n"), d.Want) {
				t.Errorf("Check problems = %q, want one saying %q", r.Problems, d.Want)
			}
		})
	}
}

// TestHealthyStoreOpensWithItsData checks that a store with data passes
// both checks and keeps its data.
func TestHealthyStoreOpensWithItsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	storetest.Fill(t, path)

	r, err := store.Check(context.Background(), path)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if len(r.Problems) > 0 || r.Partial || !r.BoltChecked {
		t.Fatalf("Check = %s, problems %q; want a complete check with none", r, r.Problems)
	}
	if r.Values < storetest.Runs*(1+2*storetest.Tasks) {
		t.Errorf("Check decoded %d values, want at least one per run, task instance and try", r.Values)
	}

	s, err := store.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if oc := s.OpenCheck(); len(oc.Problems) > 0 || oc.Partial || oc.Keys != r.Keys || oc.Values != r.Values {
		t.Errorf("Open's check = %s, want the whole file (%d keys, %d values)", &oc, r.Keys, r.Values)
	}
	runs, total, err := s.ListRuns(store.RunQuery{DAGID: storetest.DAG, Limit: 1})
	if err != nil || total != storetest.Runs || len(runs) != 1 {
		t.Fatalf("ListRuns = %d runs of %d, %v; want 1 of %d", len(runs), total, err, storetest.Runs)
	}
	tis, err := s.TaskInstances(storetest.DAG, storetest.RunID(storetest.Runs/2))
	if err != nil || len(tis) != storetest.Tasks {
		t.Errorf("TaskInstances = %d, %v; want %d", len(tis), err, storetest.Tasks)
	}
	if users, err := s.Users(); err != nil || len(users) != 1 {
		t.Errorf("Users = %d, %v; want 1", len(users), err)
	}
}

// TestOnlyAMissingFileIsNew checks that Open creates a store where there
// is no file, leaving nothing else in the folder, and that Check fails on
// a missing file instead of creating one.
func TestOnlyAMissingFileIsNew(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kiln.db")
	if _, err := store.Check(context.Background(), path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Check of a missing file: %v, want os.ErrNotExist", err)
	}
	s, err := store.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "kiln.db" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("folder holds %q, want only kiln.db", names)
	}
}

// TestCheckWhileOpen checks that the offline check refuses a file a
// running store holds, saying so.
func TestCheckWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := store.Check(context.Background(), path); !errors.Is(err, store.ErrLocked) {
		t.Errorf("Check while open: %v, want ErrLocked", err)
	}
}

// TestReadOfPageDamagedAfterOpen damages a page of an open store, as a
// disk could, and checks that the reads that reach it fail with an error
// wrapping ErrDamaged instead of panicking.
func TestReadOfPageDamagedAfterOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kiln.db")
	storetest.Fill(t, path)
	// Damage a copy, to learn which bytes change without the open
	// store's lock in the way.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(damaged, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range storetest.Damages {
		if d.Name == "leaf page zeroed" {
			d.Do(t, damaged)
		}
	}
	bad, err := os.ReadFile(damaged)
	if err != nil {
		t.Fatal(err)
	}

	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bad, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// Read everything Fill wrote: the runs, their indexes (listings by
	// DAG and by queue time), their task instances and tries.
	failed := 0
	check := func(what string, err error) {
		if err != nil {
			if !errors.Is(err, store.ErrDamaged) {
				t.Fatalf("%s: %v, want an error wrapping ErrDamaged", what, err)
			}
			failed++
		}
	}
	for i := range storetest.Runs {
		_, err := s.TaskInstances(storetest.DAG, storetest.RunID(i))
		check(fmt.Sprintf("run %d's task instances", i), err)
		_, err = s.GetRun(storetest.DAG, storetest.RunID(i))
		check(fmt.Sprintf("run %d", i), err)
		_, err = s.Tries(storetest.DAG, storetest.RunID(i), "task_0")
		check(fmt.Sprintf("run %d's tries", i), err)
	}
	for _, q := range []store.RunQuery{{DAGID: storetest.DAG}, {}} {
		_, _, err := s.ListRuns(q)
		check(fmt.Sprintf("listing runs (%+v)", q), err)
	}
	if failed == 0 {
		t.Error("no read failed, want those reaching the zeroed page to")
	}
}

// TestBackup checks that Backup copies a sound store whole and refuses a
// damaged one, and that WriteBackup copies an open one.
func TestBackup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	storetest.Fill(t, path)
	wantSound := func(t *testing.T, copyPath string) {
		t.Helper()
		r, err := store.Check(context.Background(), copyPath)
		if err != nil || len(r.Problems) > 0 {
			t.Fatalf("Check of the copy: %v, problems %q", err, r.Problems)
		}
		if want := storetest.Runs * (1 + 2*storetest.Tasks); r.Values < want {
			t.Errorf("the copy holds %d values, want at least %d", r.Values, want)
		}
	}

	var b bytes.Buffer
	n, err := store.Backup(path, &b)
	if err != nil || n != int64(b.Len()) {
		t.Fatalf("Backup = %d, %v; wrote %d bytes", n, err, b.Len())
	}
	offline := filepath.Join(t.TempDir(), "offline.db")
	if err := os.WriteFile(offline, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	wantSound(t, offline)

	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	var size int64
	n, err = s.WriteBackup(func(sz int64) io.Writer { size = sz; return &b })
	if err != nil || n != size || n != int64(b.Len()) {
		t.Fatalf("WriteBackup = %d, %v; size %d, wrote %d bytes", n, err, size, b.Len())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	online := filepath.Join(t.TempDir(), "online.db")
	if err := os.WriteFile(online, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	wantSound(t, online)

	storetest.Damages[len(storetest.Damages)-1].Do(t, path)
	if _, err := store.Backup(path, io.Discard); !errors.Is(err, store.ErrDamaged) {
		t.Errorf("Backup of a damaged store: %v, want ErrDamaged", err)
	}
}

// TestManyProblemsAreCounted flips a byte of every run's JSON: the check
// lists the first problems and counts the rest.
func TestManyProblemsAreCounted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kiln.db")
	storetest.Fill(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.ReplaceAll(data, []byte(`"run_type":`), []byte(`"run_type";`))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := store.Check(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	const listed = 20
	want := fmt.Sprintf("and %d more problems", storetest.Runs-listed)
	if len(r.Problems) != listed+1 || r.Problems[listed] != want {
		t.Errorf("Check listed %d problems, the last %q; want %d and %q", len(r.Problems), r.Problems[len(r.Problems)-1], listed+1, want)
	}
}
