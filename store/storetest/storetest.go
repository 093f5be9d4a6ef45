// Package storetest makes store files for tests: one holding data, and
// copies of it damaged the way disks, file systems and people damage
// them — cut short, a page zeroed, a byte flipped — so that tests of the
// store and of the kiln binary see Kiln refuse them
// (docs/operations.md#damaged-or-full-data-folder).
package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/bcrypt"

	"github.com/kilnhq/kiln/store"
)

// DAG is the DAG of the runs Fill writes.
const DAG = "etl"

// Runs is how many runs Fill writes, each with Tasks task instances and
// one try of each.
const (
	Runs  = 300
	Tasks = 3
)

// Day0 is the logical date of Fill's first run; run i is i days later.
var Day0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// RunID is the id of Fill's run i.
func RunID(i int) string {
	return store.RunTypeScheduled + "__" + Day0.AddDate(0, 0, i).Format(time.RFC3339)
}

// Fill creates a store at path holding Runs runs of DAG (a few hundred
// pages), a pool and a user, and closes it.
func Fill(t testing.TB, path string) {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Fatalf("closing %s: %v", path, err)
		}
	}()
	const per = 50 // runs per commit, so that the file has free pages too
	for i := 0; i < Runs; i += per {
		var b store.Batch
		for j := i; j < i+per; j++ {
			ld := Day0.AddDate(0, 0, j)
			end := ld.Add(time.Hour)
			b.PutRun(&store.Run{
				DAGID: DAG, RunID: RunID(j), RunType: store.RunTypeScheduled, State: store.RunSuccess,
				LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld.AddDate(0, 0, 1),
				QueuedAt: ld, StartDate: &ld, EndDate: &end, DAGHash: "3f2a9c",
			})
			for k := range Tasks {
				task := fmt.Sprintf("task_%d", k)
				b.PutTaskInstance(&store.TaskInstance{MapIndex: store.NoMapIndex,
					DAGID: DAG, RunID: RunID(j), TaskID: task, State: store.TaskSuccess, TryNumber: 1, MaxTries: 1,
					Queue: "default", Pool: store.DefaultPool, PoolSlots: 1, QueuedAt: &ld, StartDate: &ld, EndDate: &end,
				})
				code := 0
				b.PutTry(&store.Try{MapIndex: store.NoMapIndex,
					DAGID: DAG, RunID: RunID(j), TaskID: task, Number: 1, State: store.TaskSuccess,
					QueuedAt: ld, StartDate: &ld, EndDate: &end, ExitCode: &code,
				})
			}
		}
		if err := s.Commit(context.Background(), &b); err != nil {
			t.Fatalf("filling %s: %v", path, err)
		}
	}
	s.SetPasswordCost(bcrypt.MinCost)
	var b store.Batch
	b.PutPool(store.Pool{Name: "gpu", Slots: 2})
	if err := s.Commit(context.Background(), &b); err != nil {
		t.Fatalf("filling %s: %v", path, err)
	}
	if _, err := s.AddUser(context.Background(), "ada", store.RoleAdmin, "correct horse battery", Day0); err != nil {
		t.Fatalf("filling %s: %v", path, err)
	}
}

// A Damage changes a store file made by Fill and says what it did.
type Damage struct {
	Name string
	// Want is a piece of the problem a check must report.
	Want string
	Do   func(t testing.TB, path string)
}

// Damages are the kinds of damage Kiln must refuse.
var Damages = []Damage{
	{"empty", "the file is empty (0 bytes)", func(t testing.TB, path string) { truncate(t, path, 0) }},
	{"shorter than a page", "truncated", func(t testing.TB, path string) { truncate(t, path, 100) }},
	{"truncated", "truncated", func(t testing.TB, path string) { truncate(t, path, size(t, path)/2) }},
	{"meta pages zeroed", "neither of its two header (meta) pages is valid", func(t testing.TB, path string) {
		write(t, path, 0, make([]byte, 2*pageSize(t, path)))
	}},
	{"leaf page zeroed", "self identifies as 0", func(t testing.TB, path string) {
		ps := pageSize(t, path)
		write(t, path, livePage(t, path, "leaf")*ps, make([]byte, ps))
	}},
	{"page reference flipped", "invalid memory address", func(t testing.TB, path string) {
		// The first child of a branch page now points a terabyte
		// past the end of the file.
		ps := pageSize(t, path)
		const firstChild = 16 + 8 // page header, then pos, ksize, pgid
		id := binary.NativeEndian.AppendUint64(nil, 1<<28)
		write(t, path, livePage(t, path, "branch")*ps+firstChild, id)
	}},
	{"value byte flipped", "does not decode", func(t testing.TB, path string) {
		// One bit of a run's JSON: `"run_type":` becomes `"run_type";`.
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		needle := []byte(`"run_type":`)
		ps := pageSize(t, path)
		live := livePages(t, path)
		for off := 0; ; {
			i := bytes.Index(data[off:], needle)
			if i < 0 {
				t.Fatalf("%s: no run on a live page", path)
			}
			off += i
			if live[int64(off)/ps] == "leaf" {
				at := int64(off + len(needle) - 1)
				write(t, path, at, []byte{data[at] ^ 0x01})
				return
			}
			off += len(needle)
		}
	}},
}

func size(t testing.TB, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func truncate(t testing.TB, path string, n int64) {
	t.Helper()
	if err := os.Truncate(path, n); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func pageSize(t testing.TB, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return int64(db.Info().PageSize)
}

// livePages returns the type of every page in use that is not free, by
// page number; the pages an overflowing page spans are left out.
func livePages(t testing.TB, path string) map[int64]string {
	t.Helper()
	db, err := bolt.Open(path, 0, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pages := map[int64]string{}
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return err
			}
			if p.Type != "free" {
				pages[int64(id)] = p.Type
			}
			id += 1 + p.OverflowCount
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// livePage returns the live page of type typ nearest the middle of the
// file.
func livePage(t testing.TB, path, typ string) int64 {
	t.Helper()
	pages := livePages(t, path)
	var best int64 = -1
	mid := size(t, path) / pageSize(t, path) / 2
	for id, ty := range pages {
		if ty == typ && (best < 0 || abs(id-mid) < abs(best-mid)) {
			best = id
		}
	}
	if best < 0 {
		t.Fatalf("%s: no live %s page", path, typ)
	}
	return best
}

func abs(n int64) int64 { return max(n, -n) }
