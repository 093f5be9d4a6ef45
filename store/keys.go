package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// sep separates the parts of a composite key. No id may contain it, and
// as the smallest byte it makes "a\x00..." sort before "a.b\x00...", so a
// prefix scan over "a\x00" never strays into another DAG's keys.
const sep = 0x00

// timeLen is the length of an encoded time: 8 bytes of Unix seconds with the
// sign bit flipped, then 4 bytes of nanoseconds, both big-endian, so that
// byte order is time order for every time.Time, zero value included.
const timeLen = 12

// appendTime appends the order-preserving encoding of t.
func appendTime(dst []byte, t time.Time) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(t.Unix())^(1<<63))
	return binary.BigEndian.AppendUint32(dst, uint32(t.Nanosecond()))
}

// decodeTime is the inverse of appendTime; the result is in UTC.
func decodeTime(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b[:8]) ^ (1 << 63))
	return time.Unix(sec, int64(binary.BigEndian.Uint32(b[8:timeLen]))).UTC()
}

// key joins parts with sep.
func key(parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, sep)
		}
		k = append(k, p...)
	}
	return k
}

// prefix is key(parts...) followed by sep: the prefix of every key below them.
func prefix(parts ...string) []byte { return append(key(parts...), sep) }

// runKey is the key of a run in the runs, run_info and active_runs
// buckets: dag 0x00 time(logical date).
func runKey(dagID string, logicalDate time.Time) []byte {
	return appendTime(prefix(dagID), logicalDate)
}

// tryKey is the key of a try: dag 0x00 run 0x00 task 0x00 uint32(number).
func tryKey(dagID, runID, taskID string, n int) []byte {
	return binary.BigEndian.AppendUint32(prefix(dagID, runID, taskID), uint32(n))
}

// runInfo is the small summary of a run kept in the run_info and
// runs_by_queued buckets, so that filtering a listing reads a few bytes
// instead of decoding JSON:
//
//	time(queued_at) state 0x00 run_type 0x00 backfill_id 0x00 run_id
type runInfo struct {
	queuedAt   []byte // encoded time
	state      []byte
	runType    []byte
	backfillID []byte
	runID      []byte
}

func encodeRunInfo(r *Run) []byte {
	b := make([]byte, 0, timeLen+len(r.State)+len(r.RunType)+len(r.BackfillID)+len(r.RunID)+3)
	b = appendTime(b, r.QueuedAt)
	b = append(b, r.State...)
	b = append(append(b, sep), r.RunType...)
	b = append(append(b, sep), r.BackfillID...)
	return append(append(b, sep), r.RunID...)
}

// decodeRunInfo splits v without copying: the slices are valid only as
// long as v is (the transaction).
func decodeRunInfo(v []byte) (runInfo, bool) {
	if len(v) < timeLen {
		return runInfo{}, false
	}
	var ri runInfo
	var ok1, ok2, ok3 bool
	ri.queuedAt = v[:timeLen]
	ri.state, v, ok1 = bytes.Cut(v[timeLen:], []byte{sep})
	ri.runType, v, ok2 = bytes.Cut(v, []byte{sep})
	ri.backfillID, ri.runID, ok3 = bytes.Cut(v, []byte{sep})
	return ri, ok1 && ok2 && ok3
}

// errBadID is wrapped by the errors for ids that cannot be keys.
var errBadID = errors.New("invalid id")

// checkID rejects ids that would break the key encoding.
func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty %s", errBadID, what)
	}
	if hasSep(id) {
		return fmt.Errorf("%w: %s %q contains a NUL byte", errBadID, what, id)
	}
	return nil
}

// checkTryNumber rejects try numbers the 4-byte key cannot hold.
func checkTryNumber(n int) error {
	if n < 1 || n > math.MaxUint32 {
		return fmt.Errorf("%w: try number %d", errBadID, n)
	}
	return nil
}

// hasSep reports whether s contains sep; used for values stored in runInfo.
func hasSep(s string) bool { return strings.IndexByte(s, sep) >= 0 }

// u64 encodes a counter.
func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// readU64 decodes a counter; a missing value is zero.
func readU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}
