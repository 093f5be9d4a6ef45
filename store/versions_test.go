package store

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func version(dagID, file, src string, seen time.Time) (*DAGVersion, []byte) {
	sum := sha256.Sum256([]byte(src))
	return &DAGVersion{Hash: hex.EncodeToString(sum[:]), DAGID: dagID, File: file, FirstSeen: seen}, []byte(src)
}

func TestDAGVersionsKeepEachContentOnce(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	v1, src1 := version("etl", "etl.yaml", "id: etl\n# one\n", t0)
	v2, src2 := version("etl", "etl.yaml", "id: etl\n# two\n", t0.Add(time.Hour))
	commit(t, s, func(b *Batch) { b.PutDAGVersion(v1, src1, nil, nil) })
	commit(t, s, func(b *Batch) { b.PutDAGVersion(v2, src2, v1, src1) })
	// The first content again, later and elsewhere: the first sighting stays.
	again, _ := version("etl", "moved/etl.yaml", string(src1), t0.Add(2*time.Hour))
	commit(t, s, func(b *Batch) { b.PutDAGVersion(again, src1, nil, nil) })

	vs, err := s.DAGVersions("etl")
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Hash != v2.Hash || vs[1].Hash != v1.Hash {
		t.Fatalf("versions %+v, want v2 then v1", vs)
	}
	if vs[1].File != "etl.yaml" || !vs[1].FirstSeen.Equal(t0) || vs[1].Size != len(src1) {
		t.Errorf("v1 kept as %+v, want its first sighting", vs[1])
	}
	for _, want := range []struct {
		hash string
		src  []byte
	}{{v1.Hash, src1}, {v2.Hash, src2}} {
		got, err := s.DAGSource(want.hash)
		if err != nil || string(got) != string(want.src) {
			t.Errorf("source %q, %v; want %q", got, err, want.src)
		}
	}
	if vs[0].Base != v1.Hash || vs[0].Depth != 1 {
		t.Errorf("v2 stored against %q at depth %d, want against v1 at depth 1", vs[0].Base, vs[0].Depth)
	}
	latest, err := s.LatestVersionOfFile("etl.yaml")
	if err != nil || latest.Hash != v2.Hash {
		t.Errorf("latest of etl.yaml: %+v, %v; want v2", latest, err)
	}
	if _, err := s.LatestVersionOfFile("etl.yml"); !errors.Is(err, ErrNotFound) {
		t.Errorf("latest of an unknown file: %v, want ErrNotFound", err)
	}
	if _, err := s.DAGVersion(strings.Repeat("0", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown hash: %v, want ErrNotFound", err)
	}
	// Another DAG whose id has the first as a prefix is not listed with it.
	v3, src3 := version("etl.b", "etl.b.yaml", "id: etl.b\n", t0)
	commit(t, s, func(b *Batch) { b.PutDAGVersion(v3, src3, nil, nil) })
	if vs, _ := s.DAGVersions("etl"); len(vs) != 2 {
		t.Errorf("etl has %d versions after etl.b's, want 2", len(vs))
	}
}

func TestDAGVersionRefusesABadHash(t *testing.T) {
	var b Batch
	b.PutDAGVersion(&DAGVersion{Hash: "abc", DAGID: "etl"}, []byte("id: etl\n"), nil, nil)
	if b.Err() == nil {
		t.Fatal("a version with a short hash was accepted")
	}
}

// BenchmarkDAGVersionsStoreSize: the store's growth for 1,000 DAGs × 10
// edits of a 20-task file.
func BenchmarkDAGVersionsStoreSize(b *testing.B) {
	for range b.N {
		// Measured, not timed: the store's size is the figure.
		s := openTest(b)
		before := fileSize(b, s)
		t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		prev := make([]*DAGVersion, 1000)
		prevSrc := make([][]byte, 1000)
		for e := range 10 {
			commit(b, s, func(bt *Batch) {
				for d := range 1000 {
					v, src := version(dagName(d), dagName(d)+".yaml", dagSource(d, e), t0.Add(time.Duration(e)*time.Minute))
					bt.PutDAGVersion(v, src, prev[d], prevSrc[d])
					prev[d], prevSrc[d] = v, src
				}
			})
		}
		b.ReportMetric(float64(fileSize(b, s)-before)/(1<<20), "MiB")
		s.Close()
	}
}

// fileSize is the bytes of the store's pages in use: its high-water mark
// less its free pages. The file itself grows in steps of up to 16 MiB.
func fileSize(t testing.TB, s *Store) int64 {
	t.Helper()
	var size int64
	if err := s.db.View(func(tx *bolt.Tx) error {
		size = tx.Size()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	st := s.db.Stats()
	return size - int64(st.FreePageN+st.PendingPageN)*int64(s.db.Info().PageSize)
}

func dagName(d int) string { return fmt.Sprintf("pipeline_%04d", d) }

// dagSource is a 20-task DAG file like the loader's benchmark folder's,
// about 3 KB; edit e changes one task's command.
func dagSource(d, e int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\ndescription: nightly load of source %d into the warehouse\nschedule: \"%d 3 * * *\"\ntimezone: Europe/Berlin\nstart_date: 2026-01-01\n", dagName(d), d, d%60)
	b.WriteString("params:\n  region: {type: string, default: eu-west-1}\n  limit: {type: integer, default: 1000}\nenv:\n  WAREHOUSE: analytics\ntasks:\n")
	for i := range 20 {
		fmt.Fprintf(&b, "  - id: step_%02d\n    plugin: shell\n", i)
		if i > 0 {
			fmt.Fprintf(&b, "    depends_on: [step_%02d]\n", i-1)
		}
		fmt.Fprintf(&b, "    with:\n      command: python -m jobs.step_%02d --date {{ .ds }} --region {{ .params.region }} --limit {{ .params.limit }} --rev %d\n", i, d*7+i+e*(i%3))
	}
	return b.String()
}
