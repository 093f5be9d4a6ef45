package dag

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options configure loading.
type Options struct {
	// Plugins knows the plugins tasks may name and their parameter
	// schemas. Nil means no plugin is known.
	Plugins Catalog
	// FileTimeout bounds the time a Folder takes to read and check one
	// file (docs/dag-format.md#files-and-folders); zero means 5 seconds.
	FileTimeout time.Duration
}

// LoadFile reads and loads one DAG file. The error, if any, is an ErrorList.
func LoadFile(path string, opts Options) (*DAG, error) {
	src, err := readDAGFile(path)
	if err != nil {
		return nil, ErrorList{err}
	}
	return Parse(path, src, opts)
}

// Parse loads a DAG from src. file names it in errors and, without an `id`
// key, gives the DAG its id (the file name without extension). The error,
// if any, is an ErrorList holding every problem found.
func Parse(file string, src []byte, opts Options) (*DAG, error) {
	if len(src) > maxFileSize {
		return nil, ErrorList{{File: file, Line: 1, Col: 1, Msg: tooLarge}}
	}
	return parseDAG(file, src, sha256.Sum256(src), opts)
}

func parseDAG(file string, src []byte, sum [sha256.Size]byte, opts Options) (*DAG, error) {
	root, yerr := parseYAML(src)
	if yerr != nil {
		yerr.File = file
		return nil, ErrorList{yerr}
	}
	catalog := opts.Plugins
	if catalog == nil {
		catalog = MapCatalog{}
	}
	d := &decoder{file: file, catalog: catalog, budget: nodeBudget, root: root, declared: map[string]bool{}}
	base := filepath.Base(file)
	g := d.decodeDAG(root, strings.TrimSuffix(base, filepath.Ext(base)))
	if len(d.errs) > 0 {
		d.errs.Sort()
		errs := slices.CompactFunc(d.errs, func(a, b *Error) bool { return *a == *b })
		if d.more {
			last := errs[len(errs)-1]
			errs = append(errs, &Error{File: file, Line: last.Line, Col: last.Col,
				Msg: fmt.Sprintf("too many problems: the first %d found are reported", maxErrors)})
		}
		return nil, errs
	}
	g.File = file
	g.Hash = hex.EncodeToString(sum[:])
	g.Source = src
	d.warns.Sort()
	g.Warnings = d.warns
	return g, nil
}
