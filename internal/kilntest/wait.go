package kilntest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// WaitTimeout bounds every wait of this package: generous, for a loaded
// machine running the race detector; a test that passes waits far less.
const WaitTimeout = 30 * time.Second

// WaitFor polls cond until it holds, and fails the test if it does not
// within WaitTimeout.
func (k *Kiln) WaitFor(what string, cond func() bool) {
	k.t.Helper()
	k.waitFor(what, cond)
}

func (k *Kiln) waitFor(what string, cond func() bool) {
	k.t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			k.t.Fatalf("kilntest: timed out after %v waiting for %s", WaitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// WriteDAG writes a file into the DAGs folder, name relative to it, and
// waits until the scheduler has taken this content in: as a DAG, or as an
// import error of the file.
func (k *Kiln) WriteDAG(name, src string) {
	k.t.Helper()
	path := k.writeFile(name, src)
	sum := sha256.Sum256([]byte(src))
	hash := hex.EncodeToString(sum[:])
	k.waitFor("the scheduler to load "+name, func() bool {
		for _, info := range k.DAGs() {
			if info.DAG.File == path && info.DAG.Hash == hash && !info.Stale {
				return true
			}
		}
		return k.hasImportError(path)
	})
}

// hasImportError reports whether the file at path has an import error;
// the scheduler names the files relative to the DAGs folder.
func (k *Kiln) hasImportError(path string) bool {
	rel, err := filepath.Rel(k.dagsDir, path)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(k.ImportErrors(), func(ie dag.ImportError) bool { return ie.File == rel })
}

// writeFile writes a file of the DAGs folder as a deploy would: whole at
// once (a rename), so that the scheduler never loads half of it, and with
// a modification time past any before, so that the loader sees it changed
// even within the file system's time resolution.
func (k *Kiln) writeFile(name, src string) string {
	k.t.Helper()
	path := filepath.Join(k.dagsDir, name)
	tmp := filepath.Join(filepath.Dir(path), ".kilntest-"+filepath.Base(path)) // the loader skips dot files
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		k.t.Fatal(err)
	}
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		k.t.Fatal(err)
	}
	k.mtime = k.mtime.Add(time.Second)
	if now := time.Now().Truncate(time.Second); k.mtime.Before(now) {
		k.mtime = now
	}
	if err := os.Chtimes(tmp, k.mtime, k.mtime); err != nil {
		k.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		k.t.Fatal(err)
	}
	return path
}

// WaitRun waits until a run is in one of states, by default any finished
// one, and returns it.
func (k *Kiln) WaitRun(dagID, runID string, states ...store.RunState) *store.Run {
	k.t.Helper()
	var r *store.Run
	k.waitFor("run "+runID+" of "+dagID+" to be "+join(states, "finished"), func() bool {
		var err error
		r, err = k.Store().GetRun(dagID, runID)
		if errors.Is(err, store.ErrNotFound) {
			return false
		}
		if err != nil {
			k.t.Fatal(err)
		}
		if len(states) == 0 {
			return r.State.Finished()
		}
		return slices.Contains(states, r.State)
	})
	return r
}

// WaitTask waits until a task instance is in one of states, by default
// any finished one, and returns it.
func (k *Kiln) WaitTask(dagID, runID, taskID string, states ...store.TaskState) *store.TaskInstance {
	k.t.Helper()
	var ti *store.TaskInstance
	k.waitFor("task "+taskID+" of run "+runID+" to be "+join(states, "finished"), func() bool {
		var err error
		ti, err = k.Store().GetTaskInstance(dagID, runID, taskID)
		if errors.Is(err, store.ErrNotFound) {
			return false
		}
		if err != nil {
			k.t.Fatal(err)
		}
		if len(states) == 0 {
			return ti.State.Finished()
		}
		return slices.Contains(states, ti.State)
	})
	return ti
}

// WaitPaused waits until the scheduler's view of a DAG (DAG, DAGs) shows
// it paused or not. SetPaused answers once the change is committed, and
// the view is published right after, so a read just after the answer may
// not see it yet.
func (k *Kiln) WaitPaused(dagID string, paused bool) {
	k.t.Helper()
	k.waitFor(fmt.Sprintf("DAG %s to be paused=%v", dagID, paused), func() bool {
		info, ok := k.DAG(dagID)
		return ok && info.Paused == paused
	})
}

// WaitBackfill waits until cond holds for a stored backfill, and returns
// it.
func (k *Kiln) WaitBackfill(id, what string, cond func(*store.Backfill) bool) *store.Backfill {
	k.t.Helper()
	var bf *store.Backfill
	k.waitFor("backfill "+id+": "+what, func() bool {
		var err error
		bf, err = k.Store().GetBackfill(id)
		if errors.Is(err, store.ErrNotFound) {
			return false
		}
		if err != nil {
			k.t.Fatal(err)
		}
		return cond(bf)
	})
	return bf
}

// WaitLog waits until a try's log holds want, and returns the log.
func (k *Kiln) WaitLog(key wire.TryKey, want string) string {
	k.t.Helper()
	var log string
	k.waitFor("the log of "+key.String()+" to hold "+want, func() bool {
		b, err := os.ReadFile(k.LogPath(key))
		log = string(b)
		return err == nil && strings.Contains(log, want)
	})
	return log
}

func join[S ~string](states []S, none string) string {
	if len(states) == 0 {
		return none
	}
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = string(s)
	}
	return strings.Join(out, " or ")
}
