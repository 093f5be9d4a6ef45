package dag

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Folder loads every DAG file under a directory and re-loads it cheaply:
// a file whose size and modification time did not change is not read
// again, and one whose content hash did not change is not parsed again.
// A Folder is safe for concurrent use; loads are serialised.
type Folder struct {
	roots []string
	opts  Options
	// load reads and parses one file (loadFile); tests wrap it.
	load func(path string, oldHash *[sha256.Size]byte) loaded

	mu       sync.Mutex
	files    map[string]*fileState
	fallback func(path string) []byte
}

// fileState is what the folder remembers of one file between loads.
type fileState struct {
	modTime time.Time
	size    int64
	hash    [sha256.Size]byte
	dag     *DAG      // nil when the current content has errors
	errs    ErrorList // problems of the current content
	good    *DAG      // the last version that loaded without errors
}

// Set is the result of loading a folder.
type Set struct {
	// DAGs are the DAGs to run, sorted by id. A file whose current content
	// has errors contributes its last good version, if any.
	DAGs []*DAG
	// ImportErrors lists the files with problems, sorted by file.
	ImportErrors []ImportError
	// Parsed counts the files parsed by this load (new or changed).
	Parsed int
}

// ImportError is a DAG file that could not be loaded as it is now.
type ImportError struct {
	File   string
	Errors ErrorList
	// Stale is true when an older version of the file is still in DAGs.
	Stale bool
}

// Get returns the DAG with the given id, or nil.
func (s *Set) Get(id string) *DAG {
	i, ok := slices.BinarySearchFunc(s.DAGs, id, func(d *DAG, id string) int { return strings.Compare(d.ID, id) })
	if !ok {
		return nil
	}
	return s.DAGs[i]
}

// NewFolder returns a loader for the DAG files under the given roots. A
// root is a folder, searched recursively, or a single DAG file, which is
// loaded whatever its name.
func NewFolder(opts Options, roots ...string) *Folder {
	f := &Folder{roots: roots, opts: opts, files: map[string]*fileState{}}
	f.load = func(path string, oldHash *[sha256.Size]byte) loaded { return loadFile(path, oldHash, opts) }
	return f
}

// Roots returns the folders and files the folder loads, as given.
func (f *Folder) Roots() []string { return slices.Clone(f.roots) }

// Parse parses src as the DAG file at path, with the folder's options: a
// version of the file from elsewhere than the disk, such as the store.
func (f *Folder) Parse(path string, src []byte) (*DAG, error) {
	return Parse(path, src, f.opts)
}

// SetFallback gives the folder where to find the last good version of a
// file it never loaded without errors, as after a restart: fn returns its
// source, or nil. A fallback that loads stands in for the file, marked
// stale, as a version loaded earlier would.
func (f *Folder) SetFallback(fn func(path string) []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fallback = fn
}

// IsDAGFile reports whether a path names a DAG file by its name: a .yaml
// or .yml file that, like every folder above it, does not start with . or _.
func IsDAGFile(name string) bool {
	ext := filepath.Ext(name)
	return (ext == ".yaml" || ext == ".yml") && !ignored(filepath.Base(name))
}

func ignored(base string) bool {
	return strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_")
}

// Load scans the folder and returns the current set of DAGs. Only an
// unreadable root is an error; problems in files are import errors.
func (f *Folder) Load(ctx context.Context) (*Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	paths, err := f.scan()
	if err != nil {
		return nil, err
	}
	// Forget removed files.
	seen := make(map[string]bool, len(paths))
	for _, p := range paths {
		seen[p.path] = true
	}
	for p := range f.files {
		if !seen[p] {
			delete(f.files, p)
		}
	}
	var changed []scanned
	for _, p := range paths {
		st := f.files[p.path]
		if st == nil || !st.modTime.Equal(p.modTime) || st.size != p.size {
			changed = append(changed, p)
		}
	}
	parsed, err := f.reload(ctx, changed)
	if err != nil {
		return nil, err
	}
	return f.assemble(parsed), nil
}

type scanned struct {
	path    string
	modTime time.Time
	size    int64
}

func (f *Folder) scan() ([]scanned, error) {
	var out []scanned
	seen := map[string]bool{}
	add := func(path string, e fs.DirEntry) {
		// Stat follows a symbolic link, so that an edit of the file it
		// leads to is noticed; a broken link is reported when read.
		info, err := os.Stat(path)
		if err != nil {
			if info, err = e.Info(); err != nil {
				return // gone since the folder was read
			}
		}
		if path = filepath.Clean(path); !seen[path] {
			seen[path] = true
			out = append(out, scanned{path: path, modTime: info.ModTime(), size: info.Size()})
		}
	}
	for _, given := range f.roots {
		root := given
		if linksToFolder(root) {
			// WalkDir does not follow a root that is a link; with a
			// trailing separator the root is the folder it leads to.
			root += string(filepath.Separator)
		}
		err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				if path == root {
					return err
				}
				return nil // a folder that vanished or cannot be read holds no DAGs
			}
			if path == root && !e.IsDir() {
				add(path, e)
				return nil
			}
			if path != root && ignored(e.Name()) {
				if e.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
			if e.IsDir() || !IsDAGFile(e.Name()) {
				return nil
			}
			add(path, e)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("loading DAGs from %s: %w", given, err)
		}
	}
	return out, nil
}

// linksToFolder reports whether path is a symbolic link to a folder.
func linksToFolder(path string) bool {
	l, err := os.Lstat(path)
	if err != nil || l.Mode()&fs.ModeSymlink == 0 {
		return false
	}
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// reload reads the changed files and parses those whose content changed,
// both on all cores: a cold load reads every file, and reading them one by
// one before parsing would leave the other cores idle meanwhile. It returns
// how many files were parsed.
func (f *Folder) reload(ctx context.Context, changed []scanned) (int, error) {
	type job struct {
		s       scanned
		oldHash *[sha256.Size]byte // of the content already loaded, if any
		loaded
	}
	jobs := make([]job, len(changed))
	for i, c := range changed {
		jobs[i].s = c
		if st := f.files[c.path]; st != nil {
			jobs[i].oldHash = &st.hash
		}
	}
	var wg sync.WaitGroup
	next := make(chan *job)
	for range min(runtime.GOMAXPROCS(0), len(jobs)) {
		wg.Go(func() {
			for j := range next {
				j.loaded = f.loadWithin(ctx, j.s.path, j.oldHash)
			}
		})
	}
	for i := range jobs {
		if ctx.Err() != nil {
			break
		}
		next <- &jobs[i]
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	parsed := 0
	for i := range jobs {
		j := &jobs[i]
		st := f.files[j.s.path]
		if j.same {
			st.modTime, st.size = j.s.modTime, j.s.size
			continue
		}
		if st == nil {
			st = &fileState{}
			f.files[j.s.path] = st
		}
		st.modTime, st.size, st.hash = j.s.modTime, j.s.size, j.hash
		st.dag, st.errs = j.dag, j.errs
		if j.dag != nil {
			st.good = j.dag
		} else if st.good == nil && f.fallback != nil {
			if src := f.fallback(j.s.path); src != nil {
				st.good, _ = Parse(j.s.path, src, f.opts)
			}
		}
		parsed++
	}
	return parsed, nil
}

// assemble builds the set from the remembered files, reporting DAG ids
// defined by more than one file on every file but the first (by path).
func (f *Folder) assemble(parsed int) *Set {
	paths := make([]string, 0, len(f.files))
	for p := range f.files {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	s := &Set{Parsed: parsed}
	owner := map[string]string{}
	for _, p := range paths {
		st := f.files[p]
		g, errs := st.dag, st.errs
		if g == nil {
			g = st.good
		}
		if g != nil {
			if first, dup := owner[g.ID]; dup {
				errs = append(slices.Clip(errs), &Error{File: p, Line: g.idLine, Col: g.idCol,
					Msg: fmt.Sprintf("duplicate DAG id %q: already defined in %s", g.ID, first)})
				g = nil
			} else {
				owner[g.ID] = p
				s.DAGs = append(s.DAGs, g)
			}
		}
		if len(errs) > 0 {
			s.ImportErrors = append(s.ImportErrors, ImportError{File: p, Errors: errs, Stale: g != nil})
		}
	}
	slices.SortFunc(s.DAGs, func(a, b *DAG) int { return strings.Compare(a.ID, b.ID) })
	return s
}

// Rel returns path relative to the folder root it is under, for showing
// to users of the API and the UI, who need not learn the server's layout;
// a path under no root is returned as it is.
func (f *Folder) Rel(path string) string {
	for _, root := range f.roots {
		if rel, err := filepath.Rel(root, path); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			if rel == "." {
				return filepath.Base(path)
			}
			return rel
		}
	}
	return path
}

// loaded is what loading one file found.
type loaded struct {
	hash [sha256.Size]byte
	same bool // the content did not change, only its size or time
	dag  *DAG
	errs ErrorList
}

// loadFile reads a file and parses it unless its content hashes to oldHash.
func loadFile(path string, oldHash *[sha256.Size]byte, opts Options) loaded {
	src, rerr := readDAGFile(path)
	if rerr != nil {
		return loaded{errs: ErrorList{rerr}}
	}
	l := loaded{hash: sha256.Sum256(src)}
	if oldHash != nil && *oldHash == l.hash {
		l.same = true
		return l
	}
	g, err := parseDAG(path, src, l.hash, opts)
	if err != nil {
		l.errs = err.(ErrorList)
	}
	l.dag = g
	return l
}

// defaultFileTimeout is the default of Options.FileTimeout.
const defaultFileTimeout = 5 * time.Second

// loadWithin loads one file on a goroutine of its own and waits for it no
// longer than the file timeout, so that one file can never stall a load. A
// file that takes longer is an import error, and its load is abandoned: it
// goes on until it ends, and its result is dropped. That costs at most
// what reading and checking any file costs, bounded by maxFileSize and
// maxDepth, and it happens again only when the file changes: the file is
// remembered with the error and no hash, so any change parses it again.
// A load stopped by ctx is abandoned likewise.
func (f *Folder) loadWithin(ctx context.Context, path string, oldHash *[sha256.Size]byte) loaded {
	if oldHash != nil {
		h := *oldHash // the folder's copy changes while an abandoned load may still read it
		oldHash = &h
	}
	done := make(chan loaded, 1) // buffered, so that an abandoned load can end
	go func() { done <- f.load(path, oldHash) }()
	timeout := cmp.Or(f.opts.FileTimeout, defaultFileTimeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case l := <-done:
		return l
	case <-timer.C:
		return loaded{errs: ErrorList{{File: path, Line: 1, Col: 1,
			Msg: fmt.Sprintf("took longer than %s to read and check, the limit for a DAG file; it is tried again when it changes", timeout)}}}
	case <-ctx.Done():
		return loaded{} // the caller returns ctx.Err()
	}
}
