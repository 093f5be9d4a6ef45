package store

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DAGVersion is one content of a DAG file, kept once by its SHA-256
// (docs/reproducibility.md#dag-versions). Its source is stored apart,
// compressed, and read with [Store.DAGSource].
type DAGVersion struct {
	Hash  string `json:"hash"` // hex SHA-256 of the file's bytes
	DAGID string `json:"dag_id"`
	// File is the file's path relative to the DAGs folder when the
	// version was first seen.
	File      string    `json:"file"`
	FirstSeen time.Time `json:"first_seen"`
	Size      int       `json:"size"` // bytes of source
	// GitCommit is the commit checked out in the DAGs folder's git work
	// tree when the version was first seen, and GitDirty whether the file
	// differed from it; empty when the folder is not in one.
	GitCommit string `json:"git_commit,omitempty"`
	GitDirty  bool   `json:"git_dirty,omitempty"`
	// Base is the version whose source the stored source is compressed
	// against, Depth the length of that chain; empty and 0 for a source
	// stored whole.
	Base  string `json:"base,omitempty"`
	Depth int    `json:"depth,omitempty"`
}

// maxSourceSize bounds a stored source, as the loader bounds a DAG file.
const maxSourceSize = 1 << 20

// maxDeltaDepth bounds the chain of versions a stored source is
// compressed against, and so the reads that decoding it takes.
const maxDeltaDepth = 8

// PutDAGVersion stores a DAG version with its source unless its hash is
// stored already: the first sighting of a content is the one kept. base,
// if not nil, is a stored version of the same DAG, likely close to this
// one (the one it replaced), and baseSource its source: the source is then
// compressed with baseSource as the dictionary, which makes a small edit
// cost a few dozen bytes instead of a whole file.
//
// The compression is done here, by the caller's goroutine, not in the
// commit.
func (b *Batch) PutDAGVersion(v *DAGVersion, source []byte, base *DAGVersion, baseSource []byte) {
	if err := checkID("DAG id", v.DAGID); err != nil {
		b.fail(fmt.Errorf("putting DAG version %s: %w", v.Hash, err))
		return
	}
	if !isHash(v.Hash) {
		b.fail(fmt.Errorf("putting DAG version of %s: %q is not a hex SHA-256", v.DAGID, v.Hash))
		return
	}
	if len(source) > maxSourceSize {
		b.fail(fmt.Errorf("putting DAG version %s: %d bytes of source, more than %d", v.Hash, len(source), maxSourceSize))
		return
	}
	v.Size = len(source)
	if base != nil && (base.Depth >= maxDeltaDepth || !isHash(base.Hash)) {
		base, baseSource = nil, nil
	}
	v.Base, v.Depth = "", 0
	if base != nil {
		v.Base, v.Depth = base.Hash, base.Depth+1
	}
	meta, err := json.Marshal(v)
	if err != nil {
		b.fail(fmt.Errorf("encoding DAG version %s: %w", v.Hash, err))
		return
	}
	src, err := compress(source, baseSource)
	if err != nil {
		b.fail(fmt.Errorf("compressing DAG version %s: %w", v.Hash, err))
		return
	}
	k := []byte(v.Hash)
	byDAG := append(appendTime(prefix(v.DAGID), v.FirstSeen), sep)
	byDAG = append(byDAG, v.Hash...)
	byFile := append(appendTime(prefix(v.File), v.FirstSeen), sep)
	byFile = append(byFile, v.Hash...)
	b.add(Change{}, func(tx *bolt.Tx) (bool, error) {
		versions := tx.Bucket(bucketDAGVersions)
		if versions.Get(k) != nil {
			return false, nil
		}
		if v.Base != "" && versions.Get([]byte(v.Base)) == nil {
			return false, fmt.Errorf("putting DAG version %s: its base %s is not stored", v.Hash, v.Base)
		}
		for _, w := range []struct {
			bucket, k, v []byte
		}{
			{bucketDAGVersions, k, meta},
			{bucketDAGSources, k, src},
			{bucketDAGVersionsByDAG, byDAG, []byte{}},
			{bucketDAGVersionsByFile, byFile, []byte{}},
		} {
			if err := put(tx.Bucket(w.bucket), w.k, w.v); err != nil {
				return false, fmt.Errorf("putting DAG version %s: %w", v.Hash, err)
			}
		}
		return true, nil
	})
}

// NoteDAGVersionInFile records that the file at path (relative to the
// DAGs folder) holds the stored version hash again, as of at: a file
// reverted to an earlier content. LatestVersionOfFile then names it.
func (b *Batch) NoteDAGVersionInFile(path, hash string, at time.Time) {
	if !isHash(hash) {
		b.fail(fmt.Errorf("noting DAG version of %s: %q is not a hex SHA-256", path, hash))
		return
	}
	k := append(appendTime(prefix(path), at), sep)
	k = append(k, hash...)
	b.add(Change{}, func(tx *bolt.Tx) (bool, error) {
		if tx.Bucket(bucketDAGVersions).Get([]byte(hash)) == nil {
			return false, fmt.Errorf("noting DAG version %s of %s: not stored", hash, path)
		}
		return true, put(tx.Bucket(bucketDAGVersionsByFile), k, []byte{})
	})
}

func isHash(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && len(s) == 2*sha256.Size
}

// DAGVersion returns the version with the given hash, or ErrNotFound.
func (s *Store) DAGVersion(hash string) (*DAGVersion, error) {
	var v DAGVersion
	err := s.view(func(tx *bolt.Tx) error {
		data := tx.Bucket(bucketDAGVersions).Get([]byte(hash))
		if data == nil {
			return fmt.Errorf("DAG version %s: %w", hash, ErrNotFound)
		}
		return json.Unmarshal(data, &v)
	})
	if err != nil {
		return nil, err
	}
	return &v, nil
}

// DAGSource returns the source of the version with the given hash, or
// ErrNotFound.
func (s *Store) DAGSource(hash string) ([]byte, error) {
	var src []byte
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		src, err = readSource(tx, hash, maxDeltaDepth)
		return err
	})
	return src, err
}

// readSource decodes a stored source, and first the sources it is
// compressed against, at most depth of them.
func readSource(tx *bolt.Tx, hash string, depth int) ([]byte, error) {
	meta := tx.Bucket(bucketDAGVersions).Get([]byte(hash))
	data := tx.Bucket(bucketDAGSources).Get([]byte(hash))
	if meta == nil || data == nil {
		return nil, fmt.Errorf("source of DAG version %s: %w", hash, ErrNotFound)
	}
	var v DAGVersion
	if err := json.Unmarshal(meta, &v); err != nil {
		return nil, fmt.Errorf("DAG version %s: %w", hash, err)
	}
	var dict []byte
	if v.Base != "" {
		if depth == 0 {
			return nil, fmt.Errorf("source of DAG version %s: compressed against a chain longer than %d versions", hash, maxDeltaDepth)
		}
		var err error
		if dict, err = readSource(tx, v.Base, depth-1); err != nil {
			return nil, err
		}
	}
	src, err := decompress(data, dict)
	if err != nil {
		return nil, fmt.Errorf("source of DAG version %s: %w", hash, err)
	}
	return src, nil
}

// DAGVersions returns the versions of a DAG, newest first.
func (s *Store) DAGVersions(dagID string) ([]*DAGVersion, error) {
	return s.versionsUnder(bucketDAGVersionsByDAG, prefix(dagID), 0)
}

// LatestDAGVersion returns the version of a DAG last first seen, or
// ErrNotFound.
func (s *Store) LatestDAGVersion(dagID string) (*DAGVersion, error) {
	vs, err := s.versionsUnder(bucketDAGVersionsByDAG, prefix(dagID), 1)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("DAG version of %s: %w", dagID, ErrNotFound)
	}
	return vs[0], nil
}

// LatestVersionOfFile returns the version the file at path (relative to
// the DAGs folder) held last, as first seen there or noted again
// (NoteDAGVersionInFile), or ErrNotFound.
func (s *Store) LatestVersionOfFile(path string) (*DAGVersion, error) {
	vs, err := s.versionsUnder(bucketDAGVersionsByFile, prefix(path), 1)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("DAG version of file %s: %w", path, ErrNotFound)
	}
	return vs[0], nil
}

// DAGVersionHashes returns the hashes of every stored version.
func (s *Store) DAGVersionHashes() (map[string]bool, error) {
	hashes := map[string]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDAGVersions).ForEach(func(k, _ []byte) error {
			hashes[string(k)] = true
			return nil
		})
	})
	return hashes, err
}

// versionsUnder reads the versions an index lists under pre, newest
// first; at most limit of them unless limit is 0.
func (s *Store) versionsUnder(index, pre []byte, limit int) ([]*DAGVersion, error) {
	var out []*DAGVersion
	err := s.view(func(tx *bolt.Tx) error {
		versions := tx.Bucket(bucketDAGVersions)
		c := tx.Bucket(index).Cursor()
		k, _ := c.Seek(append(bytes.Clone(pre), 0xff))
		if k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, pre); k, _ = c.Prev() {
			hash := k[len(pre)+timeLen+1:]
			var v DAGVersion
			data := versions.Get(hash)
			if data == nil {
				return fmt.Errorf("DAG version index names %s, which is not stored", hash)
			}
			if err := json.Unmarshal(data, &v); err != nil {
				return err
			}
			out = append(out, &v)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

func compress(src, dict []byte) ([]byte, error) {
	var buf bytes.Buffer
	w, err := flate.NewWriterDict(&buf, flate.DefaultCompression, dict)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decompress(data, dict []byte) ([]byte, error) {
	src, err := io.ReadAll(io.LimitReader(flate.NewReaderDict(bytes.NewReader(data), dict), maxSourceSize+1))
	if err != nil {
		return nil, err
	}
	if len(src) > maxSourceSize {
		return nil, errors.New("source larger than a DAG file may be")
	}
	return src, nil
}
