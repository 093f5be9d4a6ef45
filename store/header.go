package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
)

// A bbolt file starts with two meta pages, written in turn by successive
// commits: each says how big a page is, how many pages the file holds
// (the high water mark) and where the root bucket and the free list are,
// under an FNV-64a checksum. bbolt reads the valid one with the higher
// transaction id and trusts it: if the file is shorter than the pages the
// meta page counts, bbolt reads past the end of its memory map, a fault
// that Go cannot recover from. So Open reads the meta pages itself first,
// and refuses such a file with a message instead of crashing on it.
//
// The layout (bbolt v1.5.0, internal/common/page.go and meta.go), in the
// machine's byte order: a 16-byte page header (id, flags, count,
// overflow), then magic uint32, version uint32, page size uint32, flags
// uint32, root page uint64, root sequence uint64, free list page uint64,
// page count uint64, transaction id uint64, checksum uint64 of the bytes
// before it.
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	pageHeaderLen  = 16
	metaLen        = 64
	metaSummedLen  = 56                // the bytes the checksum covers
	noFreelistPage = ^uint64(0)        // the free list is not stored
	minPageSize    = 1024              // the smallest page size bbolt reads
	maxPageOffset  = minPageSize << 14 // the largest page size bbolt reads
)

// meta is what Open needs of a meta page.
type meta struct {
	pageSize uint64
	root     uint64
	freelist uint64
	pages    uint64 // the high water mark: pages in use, from page 0
	txid     uint64
}

// parseMeta reads the meta page at the start of b; ok is false when it is
// not a valid one (wrong magic or version, or a bad checksum).
func parseMeta(b []byte) (m meta, ok bool) {
	if len(b) < pageHeaderLen+metaLen {
		return meta{}, false
	}
	b = b[pageHeaderLen : pageHeaderLen+metaLen]
	ne := binary.NativeEndian
	sum := fnv.New64a()
	sum.Write(b[:metaSummedLen])
	if ne.Uint32(b[0:]) != boltMagic || ne.Uint32(b[4:]) != boltVersion || ne.Uint64(b[56:]) != sum.Sum64() {
		return meta{}, false
	}
	return meta{
		pageSize: uint64(ne.Uint32(b[8:])),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		pages:    ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}, true
}

// readMetaAt reads the meta page at off, if the file has one there.
func readMetaAt(f *os.File, off int64) (meta, bool) {
	buf := make([]byte, pageHeaderLen+metaLen)
	if _, err := f.ReadAt(buf, off); err != nil {
		return meta{}, false
	}
	return parseMeta(buf)
}

// checkHeader reads the meta pages of the store file at path and returns
// the problems that keep bbolt from opening it safely: an empty file, no
// valid meta page, or a file shorter than its meta page says. It fails
// with an error wrapping fs.ErrNotExist for a missing file.
//
// The meta pages are read before the file's size: bbolt grows the file
// before it writes a meta page that counts the new pages, so a process
// that has the file open and commits meanwhile cannot make a sound file
// look truncated.
func checkHeader(path string) (meta, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return meta{}, nil, err
	}
	defer f.Close()
	var metas []meta
	m0, ok0 := readMetaAt(f, 0)
	if ok0 {
		metas = append(metas, m0)
		if m1, ok := readMetaAt(f, int64(m0.pageSize)); ok {
			metas = append(metas, m1)
		}
	} else {
		// As bbolt does: without page 0, look for page 1 at every page
		// size it supports.
		for off := int64(minPageSize); off <= maxPageOffset; off <<= 1 {
			if m1, ok := readMetaAt(f, off); ok && int64(m1.pageSize) == off {
				metas = append(metas, m1)
				break
			}
		}
	}
	st, err := f.Stat()
	if err != nil {
		return meta{}, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	size := st.Size()
	if size == 0 {
		return meta{}, []string{"the file is empty (0 bytes): a store is never empty, even a new one"}, nil
	}
	if len(metas) == 0 {
		return meta{}, []string{fmt.Sprintf("neither of its two header (meta) pages is valid in its %d bytes: it is not a Kiln store, or its start was overwritten", size)}, nil
	}
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	var problems []string
	if want := m.pages * m.pageSize; uint64(size) < want {
		problems = append(problems, fmt.Sprintf("truncated: its header counts %d pages of %d bytes (%d bytes), the file has %d", m.pages, m.pageSize, want, size))
	}
	if m.root >= m.pages || (m.freelist != noFreelistPage && m.freelist >= m.pages) {
		problems = append(problems, fmt.Sprintf("its header points past its %d pages (root bucket at page %d, free list at page %d)", m.pages, m.root, m.freelist))
	}
	return m, problems, nil
}
