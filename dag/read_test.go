package dag_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kilnhq/kiln/dag"
)

// loadPromptly loads f and fails the test if that does not end within a
// minute: a FIFO named like a DAG file used to block a load for ever.
func loadPromptly(t *testing.T, f *dag.Folder) *dag.Set {
	t.Helper()
	type result struct {
		s   *dag.Set
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := f.Load(context.Background())
		done <- result{s, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.s
	case <-time.After(time.Minute):
		t.Fatal("Load did not return within a minute")
		return nil
	}
}

// importErrors maps each file with an import error (its base name) to its
// problems.
func importErrors(s *dag.Set) map[string]string {
	out := map[string]string{}
	for _, ie := range s.ImportErrors {
		var msgs []string
		for _, e := range ie.Errors {
			msgs = append(msgs, e.Msg)
		}
		out[filepath.Base(ie.File)] = strings.Join(msgs, "\n")
	}
	return out
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

const mustBeRegular = ": a DAG file must be a regular file or a symbolic link to one"

// TestFolderReadsOnlyRegularFiles puts beside a good DAG everything else a
// name ending in .yaml can be. Each is an import error saying what it is,
// none blocks or fills the memory, and the good DAGs still load.
func TestFolderReadsOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	writeFile(t, filepath.Join(dir, "good.yaml"), simpleDAG("good", "true"))
	mkfifo(t, filepath.Join(dir, "fifo.yaml"))
	symlink(t, "/dev/zero", filepath.Join(dir, "zero.yaml"))
	symlink(t, outside, filepath.Join(dir, "folder.yaml"))
	symlink(t, filepath.Join(outside, "missing.yaml"), filepath.Join(dir, "dangling.yaml"))
	ln, err := net.Listen("unix", filepath.Join(dir, "socket.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A symbolic link to a regular file loads like the file.
	writeFile(t, filepath.Join(outside, "target.yaml"), simpleDAG("linked", "true"))
	symlink(t, filepath.Join(outside, "target.yaml"), filepath.Join(dir, "link.yaml"))

	f := dag.NewFolder(builtin, dir)
	s := loadPromptly(t, f)
	want := map[string]string{
		"fifo.yaml":     "not a regular file but a named pipe (FIFO)" + mustBeRegular,
		"zero.yaml":     "not a regular file but a symbolic link to /dev/zero, a character device" + mustBeRegular,
		"folder.yaml":   "not a regular file but a symbolic link to " + outside + ", a folder" + mustBeRegular,
		"socket.yaml":   "not a regular file but a socket" + mustBeRegular,
		"dangling.yaml": "reading: stat " + filepath.Join(dir, "dangling.yaml") + ": no such file or directory",
	}
	if diff := cmp.Diff(want, importErrors(s)); diff != "" {
		t.Errorf("import errors (-want +got):\n%s", diff)
	}
	if got := ids(s); got != "good,linked" {
		t.Errorf("DAGs = %s, want good,linked", got)
	}

	// Editing the file a link leads to is noticed, though the link itself
	// does not change.
	touch(t, filepath.Join(outside, "target.yaml"), simpleDAG("linked", "echo changed"))
	old := s.Get("linked")
	if s = loadPromptly(t, f); s.Parsed != 1 || s.Get("linked") == nil || s.Get("linked").Hash == old.Hash {
		t.Errorf("after editing the link's target: parsed %d, linked %+v; want it parsed again", s.Parsed, s.Get("linked"))
	}
}

// TestFolderFIFOAtReload: a FIFO that appears while the server runs is an
// import error at the next reload, which goes on; replaced by a DAG file,
// it loads.
func TestFolderFIFOAtReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good.yaml"), simpleDAG("good", "true"))
	f := dag.NewFolder(builtin, dir)
	if s := loadPromptly(t, f); ids(s) != "good" {
		t.Fatalf("DAGs = %s, want good", ids(s))
	}
	fifo := filepath.Join(dir, "x.yaml")
	mkfifo(t, fifo)
	s := loadPromptly(t, f)
	if got := importErrors(s)["x.yaml"]; got != "not a regular file but a named pipe (FIFO)"+mustBeRegular {
		t.Errorf("x.yaml: %q, want a FIFO refused", got)
	}
	if ids(s) != "good" {
		t.Errorf("DAGs = %s, want good", ids(s))
	}
	if err := os.Remove(fifo); err != nil {
		t.Fatal(err)
	}
	touch(t, fifo, simpleDAG("x", "true"))
	if s = loadPromptly(t, f); ids(s) != "good,x" || len(s.ImportErrors) != 0 {
		t.Errorf("after replacing the FIFO: DAGs %s, import errors %v; want good,x and none", ids(s), s.ImportErrors)
	}
}

// TestFolderFileSizeCap: a DAG file may be 1 MiB, not a byte more.
func TestFolderFileSizeCap(t *testing.T) {
	const limit = 1 << 20
	dir := t.TempDir()
	dagOfSize := func(id string, size int) string {
		src := simpleDAG(id, "true") + "# "
		return src + strings.Repeat("x", size-len(src)-1) + "\n"
	}
	writeFile(t, filepath.Join(dir, "at_limit.yaml"), dagOfSize("at_limit", limit))
	writeFile(t, filepath.Join(dir, "over_limit.yaml"), dagOfSize("over_limit", limit+1))
	s := loadPromptly(t, dag.NewFolder(builtin, dir))
	want := map[string]string{"over_limit.yaml": "larger than 1048576 bytes (1 MiB), the limit for a DAG file"}
	if diff := cmp.Diff(want, importErrors(s)); diff != "" {
		t.Errorf("import errors (-want +got):\n%s", diff)
	}
	if ids(s) != "at_limit" {
		t.Errorf("DAGs = %s, want at_limit", ids(s))
	}
	// Parse, given the bytes, applies the same cap.
	if _, err := dag.Parse("p.yaml", []byte(dagOfSize("p", limit+1)), builtin); err == nil || !strings.Contains(err.Error(), "larger than 1048576 bytes") {
		t.Errorf("Parse of 1 MiB + 1 byte: %v, want the size cap", err)
	}
}

// TestLoadFileRefusesAFIFO: LoadFile (kiln dags next FILE) checks what it
// opens as the folder does.
func TestLoadFileRefusesAFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "x.yaml")
	mkfifo(t, fifo)
	done := make(chan error, 1)
	go func() {
		_, err := dag.LoadFile(fifo, builtin)
		done <- err
	}()
	select {
	case err := <-done:
		if want := fifo + ":1:1: not a regular file but a named pipe (FIFO)" + mustBeRegular; err == nil || err.Error() != want {
			t.Errorf("LoadFile = %v, want %s", err, want)
		}
	case <-time.After(time.Minute):
		t.Fatal("LoadFile of a FIFO did not return within a minute")
	}
}

// TestFolderRootLinksToAFolder: a DAGs folder given as a symbolic link to
// a folder (a deployment that switches releases by a link) is walked, and
// its files are named under the link.
func TestFolderRootLinksToAFolder(t *testing.T) {
	real := t.TempDir()
	writeFile(t, filepath.Join(real, "team/a.yaml"), simpleDAG("a", "true"))
	link := filepath.Join(t.TempDir(), "dags")
	symlink(t, real, link)
	s := loadPromptly(t, dag.NewFolder(builtin, link))
	if ids(s) != "a" || len(s.ImportErrors) != 0 {
		t.Fatalf("DAGs %s, import errors %v; want a and none", ids(s), s.ImportErrors)
	}
	if got, want := s.Get("a").File, filepath.Join(link, "team/a.yaml"); got != want {
		t.Errorf("File = %s, want %s", got, want)
	}
}
