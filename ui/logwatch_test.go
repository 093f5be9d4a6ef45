package ui

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// poked waits for lw to be poked, failing the test after 10 s.
func poked(t *testing.T, lw *logWatch, what string) {
	t.Helper()
	select {
	case <-lw.C:
		lw.update()
	case <-time.After(10 * time.Second):
		t.Fatalf("no poke after %s", what)
	}
}

// TestLogWatch follows two logs whose folders do not exist yet: each watch
// moves down as the folders appear, writes to the files poke it, and the
// one watcher they share is gone once both stop.
func TestLogWatch(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	root := t.TempDir()
	var fw folderWatch
	path := filepath.Join(root, "etl", "run", "load", "1.log")
	other := filepath.Join(root, "etl", "run", "load", "2.log")
	lw, lw2 := fw.watchLog(path), fw.watchLog(other)
	if lw.dir != root || lw2.dir != root {
		t.Fatalf("watching %q and %q, want the nearest folder that exists, %q", lw.dir, lw2.dir, root)
	}

	if err := os.Mkdir(filepath.Join(root, "etl"), 0o755); err != nil {
		t.Fatal(err)
	}
	poked(t, lw, "creating the DAG's folder")
	if want := filepath.Join(root, "etl"); lw.dir != want {
		t.Errorf("watching %q, want %q", lw.dir, want)
	}
	// Folders made at once, between two looks: update finds them.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	poked(t, lw, "creating the task's folder")
	if want := filepath.Dir(path); lw.dir != want {
		t.Fatalf("watching %q, want the log's folder %q", lw.dir, want)
	}

	for _, data := range []string{"first\n", "second\n"} {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(data)
		f.Close()
		poked(t, lw, "writing "+data)
	}
	lw2.update()
	if lw2.dir != lw.dir {
		t.Errorf("the second log watches %q, want %q", lw2.dir, lw.dir)
	}

	lw.close()
	lw2.close()
	fw.op.Lock()
	defer fw.op.Unlock()
	if fw.w != nil || len(fw.subs) != 0 {
		t.Errorf("after both stopped: watcher %v, folders %v; want none", fw.w, fw.subs)
	}
}
