package scheduler

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// versionKeeper stores every new content of a DAG file as a DAG version
// (docs/reproducibility.md#dag-versions) before the loop sees it, so that
// a run always names a version the store holds. It runs on the goroutine
// that loads the folder, never on the loop: it compresses sources, asks
// git and commits.
type versionKeeper struct {
	store  *store.Store
	folder *dag.Folder
	stored map[string]bool // hashes known to be stored
	// last is the newest version stored of each DAG, with its source:
	// the next version is compressed against it.
	last map[string]*keptVersion
	// inFile is the version each file (relative path) held at its last
	// load, as the store has it: a file whose content goes back to an
	// earlier version is noted, so that its last good version is that
	// one.
	inFile map[string]string
}

type keptVersion struct {
	v   *store.DAGVersion
	src []byte
}

func newVersionKeeper(st *store.Store, folder *dag.Folder) (*versionKeeper, error) {
	stored, err := st.DAGVersionHashes()
	if err != nil {
		return nil, fmt.Errorf("reading the DAG versions: %w", err)
	}
	k := &versionKeeper{store: st, folder: folder, stored: stored, last: map[string]*keptVersion{}, inFile: map[string]string{}}
	// A file broken since before a restart stands in with its last good
	// version.
	folder.SetFallback(func(path string) []byte {
		v, err := st.LatestVersionOfFile(folder.Rel(path))
		if err != nil {
			return nil
		}
		src, err := st.DAGSource(v.Hash)
		if err != nil {
			return nil
		}
		return src
	})
	return k, nil
}

// keep stores the versions of set not stored yet, and notes files that
// went back to a stored version.
func (k *versionKeeper) keep(ctx context.Context, set *dag.Set, now time.Time) error {
	var fresh []*dag.DAG
	b := &store.Batch{}
	noted := map[string]string{}
	for _, d := range set.DAGs {
		if !k.stored[d.Hash] {
			fresh = append(fresh, d)
			continue
		}
		rel := k.folder.Rel(d.File)
		if k.heldBy(rel) != d.Hash {
			b.NoteDAGVersionInFile(rel, d.Hash, now.UTC())
			noted[rel] = d.Hash
		}
	}
	if len(fresh) == 0 && b.Len() == 0 {
		return nil
	}
	gits := k.gitStates(ctx)
	kept := make([]*keptVersion, 0, len(fresh))
	for _, d := range fresh {
		rel := k.folder.Rel(d.File)
		v := &store.DAGVersion{Hash: d.Hash, DAGID: d.ID, File: rel, FirstSeen: now.UTC()}
		for _, g := range gits {
			if under(d.File, g.dir) {
				v.GitCommit = g.commit
				v.GitDirty = g.dirty[filepath.Clean(d.File)]
				break
			}
		}
		base := k.base(d.ID)
		if base != nil {
			b.PutDAGVersion(v, d.Source, base.v, base.src)
		} else {
			b.PutDAGVersion(v, d.Source, nil, nil)
		}
		kept = append(kept, &keptVersion{v: v, src: d.Source})
	}
	if err := k.store.Commit(ctx, b); err != nil {
		return fmt.Errorf("storing DAG versions: %w", err)
	}
	for _, kv := range kept {
		k.stored[kv.v.Hash] = true
		k.last[kv.v.DAGID] = kv
		k.inFile[kv.v.File] = kv.v.Hash
	}
	maps.Copy(k.inFile, noted)
	return nil
}

// heldBy is the version the file at rel held at its last load, read from
// the store the first time.
func (k *versionKeeper) heldBy(rel string) string {
	if h, ok := k.inFile[rel]; ok {
		return h
	}
	if v, err := k.store.LatestVersionOfFile(rel); err == nil {
		k.inFile[rel] = v.Hash
	}
	return k.inFile[rel]
}

// base is the version of dagID to compress a new one against: the newest
// stored, looked up once after a start.
func (k *versionKeeper) base(dagID string) *keptVersion {
	if kv, ok := k.last[dagID]; ok {
		return kv
	}
	k.last[dagID] = nil
	v, err := k.store.LatestDAGVersion(dagID)
	if err != nil {
		return nil
	}
	src, err := k.store.DAGSource(v.Hash)
	if err != nil {
		return nil
	}
	kv := &keptVersion{v: v, src: src}
	k.last[dagID] = kv
	return kv
}

// gitInfo is the state of the git work tree a root of the DAGs folder is
// in.
type gitInfo struct {
	dir    string // the root, or the folder of a root that is a file
	commit string
	dirty  map[string]bool // absolute paths that differ from commit
}

// gitStates is gitState for each root of the folder that is in a work
// tree.
func (k *versionKeeper) gitStates(ctx context.Context) []*gitInfo {
	if _, err := exec.LookPath("git"); err != nil {
		return nil
	}
	var out []*gitInfo
	for _, root := range k.folder.Roots() {
		dir, err := filepath.Abs(root)
		if err != nil {
			continue
		}
		if !isDir(dir) {
			dir = filepath.Dir(dir)
		}
		if g := gitState(ctx, dir); g != nil {
			out = append(out, g)
		}
	}
	return out
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// under reports whether path is dir or below it.
func under(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// gitTimeout bounds each git command.
const gitTimeout = 5 * time.Second

// gitState asks git for the commit checked out in the work tree dir is
// in, and for the files under dir that differ from it; nil when dir is
// not in a work tree or git cannot tell.
func gitState(ctx context.Context, dir string) *gitInfo {
	ctx, cancel := context.WithTimeout(ctx, gitTimeout)
	defer cancel()
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
	top, err := run("rev-parse", "--show-toplevel")
	if err != nil {
		return nil
	}
	head, err := run("rev-parse", "--verify", "-q", "HEAD")
	if err != nil {
		return nil // a work tree with no commit yet
	}
	status, err := run("status", "--porcelain=v1", "-z", "--untracked-files=all", "--", ".")
	if err != nil {
		return nil
	}
	root := strings.TrimSpace(string(top))
	info := &gitInfo{dir: dir, commit: strings.TrimSpace(string(head)), dirty: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(status))
	sc.Split(splitNUL)
	for sc.Scan() {
		entry := sc.Text()
		if len(entry) < 4 {
			continue
		}
		info.dirty[filepath.Join(root, filepath.FromSlash(entry[3:]))] = true
		if entry[0] == 'R' || entry[0] == 'C' {
			sc.Scan() // the entry's source path follows it
		}
	}
	if sc.Err() != nil {
		return nil
	}
	return info
}

func splitNUL(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// version returns the DAG of a run: the version it was created with. The
// current DAG serves when it is that version, or for a run of a store
// older than versions; else an active run on that version shares its DAG,
// or the version is read from the store and parsed.
func (s *Scheduler) version(r *store.Run) (*dag.DAG, error) {
	cur := s.dags[r.DAGID]
	if r.DAGHash == "" || (cur != nil && cur.Hash == r.DAGHash) {
		if cur == nil {
			return nil, fmt.Errorf("%w: DAG %s is not loaded", ErrNotFound, r.DAGID)
		}
		return cur, nil
	}
	for _, ar := range s.active {
		if ar.dag.Hash == r.DAGHash {
			return ar.dag, nil
		}
	}
	v, err := s.cfg.Store.DAGVersion(r.DAGHash)
	if err != nil {
		return nil, fmt.Errorf("the version %s the run was created with: %w", r.DAGHash, err)
	}
	src, err := s.cfg.Store.DAGSource(r.DAGHash)
	if err != nil {
		return nil, fmt.Errorf("the version %s the run was created with: %w", r.DAGHash, err)
	}
	path := v.File
	if cur != nil {
		path = cur.File
	}
	d, err := s.cfg.Folder.Parse(path, src)
	if err != nil {
		var list dag.ErrorList
		if errors.As(err, &list) && len(list) > 0 {
			err = list[0]
		}
		return nil, fmt.Errorf("the version %s the run was created with no longer loads: %w", r.DAGHash, err)
	}
	return d, nil
}
