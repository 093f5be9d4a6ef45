package store

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
)

// TestLayoutMatchesMigrations checks that the check's bucket list says
// which buckets each schema version has, as the migrations make them.
func TestLayoutMatchesMigrations(t *testing.T) {
	for v := range len(migrations) + 1 {
		db, err := bolt.Open(filepath.Join(t.TempDir(), "kiln.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		err = db.Update(func(tx *bolt.Tx) error {
			if err := migrate(tx, migrations[:v]); err != nil {
				return err
			}
			return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				got = append(got, string(name))
				return nil
			})
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, l := range layout {
			if l.since <= uint64(v) {
				want = append(want, string(l.name))
			}
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("schema version %d: buckets (-layout +migrations):\n%s", v, diff)
		}
	}
}

// TestOpenCheckBudget checks that a check that runs out of time lets the
// store open and says it was partial.
func TestOpenCheckBudget(t *testing.T) {
	s := openTest(t)
	putRuns(t, s, "etl", day0, 600, func(int) RunState { return RunSuccess })
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := open(path, options{lockTimeout: defaultLockTimeout, migrations: migrations, checkBudget: 1})
	if err != nil {
		t.Fatalf("open with a spent budget: %v", err)
	}
	defer s.Close()
	if r := s.OpenCheck(); !r.Partial || len(r.Problems) > 0 {
		t.Errorf("OpenCheck = %s, problems %q; want partial, none", &r, r.Problems)
	}
}
