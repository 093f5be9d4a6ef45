package dag

import (
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

	mu    sync.Mutex
	files map[string]*fileState
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
	return &Folder{roots: roots, opts: opts, files: map[string]*fileState{}}
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
	for _, root := range f.roots {
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
			return nil, fmt.Errorf("loading DAGs from %s: %w", root, err)
		}
	}
	return out, nil
}

// reload reads the changed files and parses those whose content changed,
// both on all cores: a cold load reads every file, and reading them one by
// one before parsing would leave the other cores idle meanwhile. It returns
// how many files were parsed.
func (f *Folder) reload(ctx context.Context, changed []scanned) (int, error) {
	type job struct {
		s       scanned
		oldHash *[sha256.Size]byte // of the content already loaded, if any
		hash    [sha256.Size]byte
		same    bool // the content did not change, only its size or time
		dag     *DAG
		errs    ErrorList
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
				src, rerr := readDAGFile(j.s.path)
				if rerr != nil {
					j.errs = ErrorList{rerr}
					continue
				}
				j.hash = sha256.Sum256(src)
				if j.oldHash != nil && *j.oldHash == j.hash {
					j.same = true
					continue
				}
				g, err := parseDAG(j.s.path, src, j.hash, f.opts)
				if err != nil {
					j.errs = err.(ErrorList)
				}
				j.dag = g
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
