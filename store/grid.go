package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Reads for the web UI's overviews — the DAG list's recent runs and a
// DAG's grid of runs × tasks — which show many runs and task instances at
// once and little of each. Each is one read transaction.

// RunDigest is a run as an overview shows it, read from the run_info index
// without decoding the run.
type RunDigest struct {
	RunID       string
	RunType     string
	State       RunState
	LogicalDate time.Time
	QueuedAt    time.Time
}

// RecentRuns returns the n newest runs by logical date of each DAG,
// newest first: out[i] holds those of dagIDs[i], empty for a DAG without
// runs. It reads the run_info index only, O(len(dagIDs) · (log N + n))
// cursor steps and no JSON.
func (s *Store) RecentRuns(dagIDs []string, n int) ([][]RunDigest, error) {
	out := make([][]RunDigest, len(dagIDs))
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRunInfo).Cursor()
		for i, id := range dagIDs {
			pfx := prefix(id)
			for k, v := seekLast(c, pfx); k != nil && bytes.HasPrefix(k, pfx) && len(out[i]) < n; k, v = c.Prev() {
				ri, ok := decodeRunInfo(v)
				if !ok || len(k) != len(pfx)+timeLen {
					return fmt.Errorf("corrupt run summary %q", k)
				}
				out[i] = append(out[i], RunDigest{
					RunID:       string(ri.runID),
					RunType:     string(ri.runType),
					State:       RunState(ri.state),
					LogicalDate: decodeTime(k[len(pfx):]),
					QueuedAt:    decodeTime(ri.queuedAt),
				})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing recent runs: %w", err)
	}
	return out, nil
}

// TaskDigest is a task instance as an overview shows it. Its times are
// zero until known.
type TaskDigest struct {
	TaskID    string    `json:"task_id"`
	State     TaskState `json:"state"`
	TryNumber int       `json:"try_number"`
	StartDate time.Time `json:"start_date"`
	EndDate   time.Time `json:"end_date"`
}

// RunTasks returns the task instances of several runs of a DAG, digested:
// out[i] holds those of runIDs[i], sorted by task id. It is TaskInstances
// for many runs in one transaction, reading only the fields a digest has
// (decodeTaskDigest): a grid of 25 runs × 1,000 tasks reads in about a
// quarter of the time json.Unmarshal takes.
func (s *Store) RunTasks(dagID string, runIDs []string) ([][]TaskDigest, error) {
	out := make([][]TaskDigest, len(runIDs))
	err := s.view(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketTaskInstances)
		for i, runID := range runIDs {
			err := scan(bk, prefix(dagID, runID), func(v []byte) error {
				var d TaskDigest
				if err := decodeTaskDigest(v, &d); err != nil {
					return err
				}
				out[i] = append(out[i], d)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing task instances of %d runs of %s: %w", len(runIDs), dagID, err)
	}
	return out, nil
}

// decodeTaskDigest reads a TaskDigest from a task instance's JSON. It walks
// the object's keys and skips the values it does not need without decoding
// them. Anything it does not expect (escapes in a string it needs, a key
// spelt in another case, an unusual shape) goes to json.Unmarshal, so for
// what the store writes the result is that of encoding/json.
func decodeTaskDigest(v []byte, d *TaskDigest) error {
	if ok := scanTaskDigest(v, d); ok {
		return nil
	}
	*d = TaskDigest{}
	return json.Unmarshal(v, d)
}

// scanTaskDigest is decodeTaskDigest's fast path; false means "use
// json.Unmarshal".
func scanTaskDigest(v []byte, d *TaskDigest) bool {
	s := jsonScanner{b: v}
	if !s.byte('{') {
		return false
	}
	if s.peek() == '}' {
		return true
	}
	for {
		key, ok := s.plainString()
		if !ok || !s.byte(':') {
			return false
		}
		switch string(key) {
		case "task_id", "state":
			val, ok := s.plainString()
			if !ok {
				return false
			}
			if key[0] == 't' {
				d.TaskID = string(val)
			} else {
				d.State = TaskState(val)
			}
		case "try_number":
			n, ok := s.int()
			if !ok {
				return false
			}
			d.TryNumber = n
		case "start_date", "end_date":
			t, ok := s.timeOrNull()
			if !ok {
				return false
			}
			if key[0] == 's' {
				d.StartDate = t
			} else {
				d.EndDate = t
			}
		default:
			if digestKey(key) || !s.skip() {
				return false // encoding/json matches keys in any case
			}
		}
		switch s.next() {
		case ',':
		case '}':
			return true
		default:
			return false
		}
	}
}

// digestKey reports whether key is a TaskDigest field's in another case.
func digestKey(key []byte) bool {
	for _, k := range []string{"task_id", "state", "try_number", "start_date", "end_date"} {
		if len(key) == len(k) && bytes.EqualFold(key, []byte(k)) {
			return true
		}
	}
	return false
}

// jsonScanner reads the top level of a JSON object written by
// encoding/json; every method skips the white space before its token.
type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) space() {
	for s.i < len(s.b) && (s.b[s.i] == ' ' || s.b[s.i] == '\n' || s.b[s.i] == '\t' || s.b[s.i] == '\r') {
		s.i++
	}
}

// peek returns the next byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.space()
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

// next consumes and returns the next byte, or 0 at the end.
func (s *jsonScanner) next() byte {
	c := s.peek()
	if c != 0 {
		s.i++
	}
	return c
}

func (s *jsonScanner) byte(c byte) bool { return s.next() == c }

// plainString reads a string of printable ASCII without escapes and
// returns its bytes; encoding/json would change anything else.
func (s *jsonScanner) plainString() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '"':
			s.i++
			return s.b[start : s.i-1], true
		case '\\':
			return nil, false
		}
		if c := s.b[s.i]; c < 0x20 || c >= 0x80 {
			return nil, false
		}
		s.i++
	}
	return nil, false
}

// int reads a non-negative integer.
func (s *jsonScanner) int() (int, bool) {
	s.space()
	start, n := s.i, 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' && s.i-start < 10 {
		n = n*10 + int(s.b[s.i]-'0')
		s.i++
	}
	return n, s.i > start && s.i-start < 10
}

// timeOrNull reads null (the zero time) or an RFC 3339 time.
func (s *jsonScanner) timeOrNull() (time.Time, bool) {
	if s.peek() == 'n' {
		if !bytes.HasPrefix(s.b[s.i:], []byte("null")) {
			return time.Time{}, false
		}
		s.i += 4
		return time.Time{}, true
	}
	raw, ok := s.plainString()
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(raw))
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}

// skip passes over one value of any kind.
func (s *jsonScanner) skip() bool {
	switch s.peek() {
	case 0:
		return false
	case '"':
		return s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				if !s.skipString() {
					return false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					s.i++
					return true
				}
			}
			s.i++
		}
		return false
	}
	start := s.i // a number, true, false or null
	for ; s.i < len(s.b); s.i++ {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.i > start
		}
	}
	return false
}

// skipString passes over a string, escapes included.
func (s *jsonScanner) skipString() bool {
	s.i++ // the opening quote
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
			continue
		case '"':
			s.i++
			return true
		}
		s.i++
	}
	return false
}
