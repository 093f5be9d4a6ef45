package scheduler

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/store"
)

// TestRevertedFileKeepsItsLastVersion: a file that goes back to an earlier
// content (a git revert) holds that version again, so a later break
// stands in with it, not with the one in between.
func TestRevertedFileKeepsItsLastVersion(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dags := filepath.Join(dir, "dags")
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	folder := dag.NewFolder(dag.Options{Plugins: plugins.Builtin()}, dags)
	k, err := newVersionKeeper(st, folder)
	if err != nil {
		t.Fatal(err)
	}
	a := "id: rev\ntasks:\n  - {id: x, plugin: shell, with: {command: a}}\n"
	b := "id: rev\ntasks:\n  - {id: x, plugin: shell, with: {command: b}}\n"
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	for i, src := range []string{a, b, a} {
		path := filepath.Join(dags, "rev.yaml")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		later := now.Add(time.Duration(i) * time.Hour)
		if err := os.Chtimes(path, later, later); err != nil {
			t.Fatal(err)
		}
		set, err := folder.Load(t.Context())
		if err != nil || len(set.DAGs) != 1 {
			t.Fatalf("load %d: %v, %d DAGs", i, err, len(set.DAGs))
		}
		if err := k.keep(t.Context(), set, later); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte(a))
	v, err := st.LatestVersionOfFile("rev.yaml")
	if err != nil || v.Hash != hex.EncodeToString(sum[:]) {
		t.Errorf("the file's last version: %+v, %v; want the reverted-to content", v, err)
	}
	if vs, _ := st.DAGVersions("rev"); len(vs) != 2 {
		t.Errorf("%d versions stored, want the 2 contents once each", len(vs))
	}
}
