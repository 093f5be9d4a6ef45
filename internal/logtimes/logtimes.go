// Package logtimes records when the pieces of a try's log were received,
// so that each line can be shown with its receive time
// (docs/operations.md#the-data-folder).
//
// The times live in a file beside the log, LOG.times, made of 16-byte
// records in the order received: the byte offset in the log where a
// received piece starts and the time it was received in Unix
// milliseconds, both big-endian int64. A record is written only when the
// second changed since the previous one, so the file grows by at most 16
// bytes a second whatever the task prints, and a line's time is exact to
// the second. A record for an offset at or before the previous record's
// (a piece sent again) is not written: the first receipt counts. The log
// itself is left as it was, so logs written before Kiln kept times read
// the same, with no times.
package logtimes

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

// Suffix is added to a log's path to name its times file.
const Suffix = ".times"

const recordSize = 16

// Layout is how a line's time is written: RFC 3339 in UTC, to the second.
const Layout = "2006-01-02T15:04:05Z"

// Width is the length of a stamp: a time in Layout and a space.
const Width = len(Layout) + 1

// Record is one received piece.
type Record struct {
	Offset int64
	Time   time.Time
}

// Append records that the piece of the log at logPath starting at offset
// was received at t, unless the previous record is of the same second or
// covers the offset already. The caller serialises calls for one log.
func Append(logPath string, offset int64, t time.Time) error {
	f, err := os.OpenFile(logPath+Suffix, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	err = appendTo(f, offset, t)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func appendTo(f *os.File, offset int64, t time.Time) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	end := st.Size() - st.Size()%recordSize // a torn last record is overwritten
	var rec [recordSize]byte
	if end > 0 {
		if _, err := f.ReadAt(rec[:], end-recordSize); err != nil {
			return err
		}
		last := decode(rec[:])
		if offset <= last.Offset || t.Unix() == last.Time.Unix() {
			return nil
		}
	}
	binary.BigEndian.PutUint64(rec[:8], uint64(offset))
	binary.BigEndian.PutUint64(rec[8:], uint64(t.UnixMilli()))
	_, err = f.WriteAt(rec[:], end)
	return err
}

func decode(b []byte) Record {
	return Record{
		Offset: int64(binary.BigEndian.Uint64(b[:8])),
		Time:   time.UnixMilli(int64(binary.BigEndian.Uint64(b[8:]))).UTC(),
	}
}

// Index is a log's records, their offsets increasing. Its zero value
// knows no times.
type Index struct {
	path string
	read int64 // bytes of the times file read
	recs []Record
}

// Open reads the times of the log at logPath; a log without a times file
// has none.
func Open(logPath string) (*Index, error) {
	ix := &Index{path: logPath + Suffix}
	return ix, ix.Update()
}

// Update reads the records written since the last read.
func (ix *Index) Update() error {
	f, err := os.Open(ix.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading log times: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, ix.read, 1<<40))
	if err != nil {
		return fmt.Errorf("reading log times: %w", err)
	}
	b = b[:len(b)-len(b)%recordSize]
	ix.read += int64(len(b))
	for ; len(b) > 0; b = b[recordSize:] {
		r := decode(b)
		if n := len(ix.recs); n == 0 || r.Offset > ix.recs[n-1].Offset {
			ix.recs = append(ix.recs, r)
		}
	}
	return nil
}

// At is the time the byte at offset was received; false when unknown.
func (ix *Index) At(offset int64) (time.Time, bool) {
	if ix == nil {
		return time.Time{}, false
	}
	i := sort.Search(len(ix.recs), func(i int) bool { return ix.recs[i].Offset > offset })
	if i == 0 {
		return time.Time{}, false
	}
	return ix.recs[i-1].Time, true
}

// Stamper puts the receive time before each line of a log read in order.
type Stamper struct {
	ix     *Index
	atLine bool
}

// NewStamper stamps a log read from a byte that starts a line (atLine) or
// not.
func NewStamper(ix *Index, atLine bool) *Stamper { return &Stamper{ix: ix, atLine: atLine} }

// Stamp appends to dst the piece p of the log, which starts at offset,
// with a stamp (Layout and a space; Width spaces when the time is unknown)
// before each line that starts in it.
func (s *Stamper) Stamp(dst, p []byte, offset int64) []byte {
	for len(p) > 0 {
		if s.atLine {
			dst = s.stamp(dst, offset)
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.atLine = false
			return append(dst, p...)
		}
		dst = append(dst, p[:i+1]...)
		offset += int64(i + 1)
		p = p[i+1:]
		s.atLine = true
	}
	return dst
}

func (s *Stamper) stamp(dst []byte, offset int64) []byte {
	t, ok := s.ix.At(offset)
	if !ok {
		for range Width {
			dst = append(dst, ' ')
		}
		return dst
	}
	return append(t.AppendFormat(dst, Layout), ' ')
}
