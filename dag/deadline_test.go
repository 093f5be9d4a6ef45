package dag_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kilnhq/kiln/dag"
)

// holdLoads makes f's loads of the file named base wait until release is
// closed. It returns how many such loads began and a channel that gets a
// value as each ends.
func holdLoads(f *dag.Folder, base string, release <-chan struct{}) (*atomic.Int32, <-chan struct{}) {
	var began atomic.Int32
	ended := make(chan struct{}, 8)
	dag.WrapLoads(f, func(path string) {
		if filepath.Base(path) == base {
			began.Add(1)
			<-release
		}
	}, func(path string) {
		if filepath.Base(path) == base {
			ended <- struct{}{}
		}
	})
	return &began, ended
}

// TestFolderFileTimeout: a file whose load overruns the per-file deadline
// is an import error and does not hold up the load of the folder; it is not
// loaded again until it changes, and its abandoned load ends on its own.
func TestFolderFileTimeout(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "good.yaml"), simpleDAG("good", "true"))
	writeFile(t, filepath.Join(dir, "slow.yaml"), simpleDAG("slow", "true"))
	opts := builtin
	opts.FileTimeout = 100 * time.Millisecond
	f := dag.NewFolder(opts, dir)
	release := make(chan struct{})
	began, ended := holdLoads(f, "slow.yaml", release)

	want := map[string]string{"slow.yaml": "took longer than 100ms to read and check, the limit for a DAG file; it is tried again when it changes"}
	s := loadPromptly(t, f)
	if diff := cmp.Diff(want, importErrors(s)); diff != "" {
		t.Errorf("import errors (-want +got):\n%s", diff)
	}
	if ids(s) != "good" {
		t.Errorf("DAGs = %s, want good", ids(s))
	}

	// Unchanged, it is not loaded again while its first load still runs.
	s = loadPromptly(t, f)
	if diff := cmp.Diff(want, importErrors(s)); diff != "" || began.Load() != 1 {
		t.Errorf("reload: %d loads of slow.yaml, import errors (-want +got):\n%s", began.Load(), diff)
	}

	// The abandoned load ends once it may; its result is dropped.
	close(release)
	select {
	case <-ended:
	case <-time.After(time.Minute):
		t.Fatal("the abandoned load did not end")
	}
	if s = loadPromptly(t, f); len(s.ImportErrors) != 1 || began.Load() != 1 {
		t.Errorf("after the abandoned load ended: import errors %v, %d loads; want the same error, 1 load", s.ImportErrors, began.Load())
	}

	// Any change, even of its time only, loads it again.
	touch(t, filepath.Join(dir, "slow.yaml"), simpleDAG("slow", "true"))
	if s = loadPromptly(t, f); ids(s) != "good,slow" || len(s.ImportErrors) != 0 || began.Load() != 2 {
		t.Errorf("after touching slow.yaml: DAGs %s, import errors %v, %d loads; want good,slow, none, 2", ids(s), s.ImportErrors, began.Load())
	}
}

// TestFolderLoadCancelled: cancelling a load that waits for a file ends it
// at once (SIGTERM during the first load must stop the server).
func TestFolderLoadCancelled(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "slow.yaml"), simpleDAG("slow", "true"))
	f := dag.NewFolder(builtin, dir) // the default deadline, 5 s, is not what ends it
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	dag.WrapLoads(f, func(string) {
		close(started)
		<-release
	}, func(string) {})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := f.Load(ctx)
		done <- err
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Load = %v, want context.Canceled", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Load did not end within 3 s of its context")
	}
}
