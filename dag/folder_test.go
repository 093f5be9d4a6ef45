package dag_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
)

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// touch moves a file's modification time forward, as an edit would.
func touch(t testing.TB, path string, content string) {
	t.Helper()
	writeFile(t, path, content)
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
}

func simpleDAG(id, command string) string {
	return fmt.Sprintf("id: %s\ntasks:\n  - id: a\n    plugin: shell\n    with: {command: %q}\n", id, command)
}

func ids(s *dag.Set) string {
	var out []string
	for _, g := range s.DAGs {
		out = append(out, g.ID)
	}
	return strings.Join(out, ",")
}

func TestFolderLoadAndReload(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.yaml"), simpleDAG("a", "true"))
	writeFile(t, filepath.Join(dir, "team/deep/b.yml"), simpleDAG("b", "true"))
	writeFile(t, filepath.Join(dir, "_draft.yaml"), "not: [valid")
	writeFile(t, filepath.Join(dir, ".git/c.yaml"), "not: [valid")
	writeFile(t, filepath.Join(dir, "_wip/c.yaml"), "not: [valid")
	writeFile(t, filepath.Join(dir, "README.md"), "# not a DAG")
	writeFile(t, filepath.Join(dir, "broken.yaml"), simpleDAG("broken", "true")+"    retries: lots\n")

	f := dag.NewFolder(builtin, dir)
	s, err := f.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(s); got != "a,b" {
		t.Errorf("DAGs = %s, want a,b", got)
	}
	if s.Parsed != 3 {
		t.Errorf("Parsed = %d, want 3 (ignored files and folders are not read)", s.Parsed)
	}
	if len(s.ImportErrors) != 1 || s.ImportErrors[0].File != filepath.Join(dir, "broken.yaml") || s.ImportErrors[0].Stale {
		t.Fatalf("ImportErrors = %+v, want broken.yaml only, not stale", s.ImportErrors)
	}
	if e := s.ImportErrors[0].Errors[0]; e.Line != 6 || e.Col != 14 {
		t.Errorf("broken.yaml error at %d:%d, want 6:14: %v", e.Line, e.Col, e)
	}
	oldB := s.Get("b")

	// Nothing changed: nothing is parsed and the same DAG values come back.
	s, err = f.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Parsed != 0 || s.Get("b") != oldB {
		t.Errorf("unchanged reload parsed %d files, same b: %v", s.Parsed, s.Get("b") == oldB)
	}

	// Rewriting a file with the same content changes its mtime only.
	touch(t, filepath.Join(dir, "team/deep/b.yml"), simpleDAG("b", "true"))
	if s, _ = f.Load(ctx); s.Parsed != 0 {
		t.Errorf("same-content rewrite parsed %d files, want 0", s.Parsed)
	}

	// Breaking a good file keeps its last good version running.
	touch(t, filepath.Join(dir, "a.yaml"), "id: a\ntasks: [}")
	s, err = f.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Parsed != 1 || ids(s) != "a,b" {
		t.Errorf("after breaking a.yaml: parsed %d, DAGs %s; want 1 and a,b", s.Parsed, ids(s))
	}
	var stale bool
	for _, ie := range s.ImportErrors {
		if ie.File == filepath.Join(dir, "a.yaml") {
			stale = ie.Stale
		}
	}
	if !stale {
		t.Errorf("a.yaml import error not marked stale: %+v", s.ImportErrors)
	}

	// Fixing it, changing b and removing broken.yaml.
	touch(t, filepath.Join(dir, "a.yaml"), simpleDAG("a", "echo fixed"))
	touch(t, filepath.Join(dir, "team/deep/b.yml"), simpleDAG("b", "echo changed"))
	if err := os.Remove(filepath.Join(dir, "broken.yaml")); err != nil {
		t.Fatal(err)
	}
	s, err = f.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Parsed != 2 || ids(s) != "a,b" || len(s.ImportErrors) != 0 {
		t.Errorf("after fixes: parsed %d, DAGs %s, errors %v", s.Parsed, ids(s), s.ImportErrors)
	}
	if s.Get("b") == oldB || s.Get("b").Hash == oldB.Hash {
		t.Error("b was not reloaded after its content changed")
	}
}

func TestFolderDuplicateDAGID(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "one.yaml"), simpleDAG("same", "true"))
	writeFile(t, filepath.Join(dir, "two.yaml"), simpleDAG("same", "false"))
	s, err := dag.NewFolder(builtin, dir).Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.DAGs) != 1 || s.DAGs[0].File != filepath.Join(dir, "one.yaml") {
		t.Fatalf("DAGs = %v, want the one from one.yaml", ids(s))
	}
	want := fmt.Sprintf("%s:1:5: duplicate DAG id \"same\": already defined in %s", filepath.Join(dir, "two.yaml"), filepath.Join(dir, "one.yaml"))
	if len(s.ImportErrors) != 1 || s.ImportErrors[0].Errors.Error() != want {
		t.Errorf("ImportErrors = %v, want %s", s.ImportErrors, want)
	}
}

func TestFolderMissingRoot(t *testing.T) {
	_, err := dag.NewFolder(builtin, filepath.Join(t.TempDir(), "nope")).Load(context.Background())
	if err == nil {
		t.Fatal("want an error for a missing folder")
	}
}
