package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/go-json-experiment/json/jsontext"
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

// RunsSince returns the runs of a DAG whose logical date is at or after
// from, oldest first, for the calendar. Like RecentRuns it reads the
// run_info index only.
func (s *Store) RunsSince(dagID string, from time.Time) ([]RunDigest, error) {
	var out []RunDigest
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRunInfo).Cursor()
		pfx := prefix(dagID)
		for k, v := c.Seek(runKey(dagID, from)); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			ri, ok := decodeRunInfo(v)
			if !ok || len(k) != len(pfx)+timeLen {
				return fmt.Errorf("corrupt run summary %q", k)
			}
			out = append(out, RunDigest{
				RunID:       string(ri.runID),
				RunType:     string(ri.runType),
				State:       RunState(ri.state),
				LogicalDate: decodeTime(k[len(pfx):]),
				QueuedAt:    decodeTime(ri.queuedAt),
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing runs of %s since %s: %w", dagID, from.Format(time.RFC3339), err)
	}
	return out, nil
}

// TaskDigest is a task instance as an overview shows it. Its times are
// zero until known.
type TaskDigest struct {
	TaskID    string    `json:"task_id"`
	State     TaskState `json:"state"`
	TryNumber int       `json:"try_number"`
	// MapLength is a mapped task's number of instances once it expanded
	// (TaskInstance.MapLength).
	MapLength int       `json:"map_length,omitempty"`
	StartDate time.Time `json:"start_date"`
	EndDate   time.Time `json:"end_date"`
	// CachedFrom is set when the task instance took its result from the
	// task cache (TaskInstance.CachedFrom).
	CachedFrom *TryRef `json:"cached_from,omitempty"`
}

// RunTasks returns the task instances of several runs of a DAG, digested:
// out[i] holds those of runIDs[i], sorted by task id. A mapped task has
// one digest, that of the instance standing for it, which carries its
// state and MapLength: its instances are left out unread, so a map over
// 10,000 items costs the grid one row. It is TaskInstances
// for many runs in one transaction, reading only the fields a digest has
// (taskDigestReader): a grid of 25 runs × 1,000 tasks reads in about a
// third of the time json.Unmarshal takes.
func (s *Store) RunTasks(dagID string, runIDs []string) ([][]TaskDigest, error) {
	out := make([][]TaskDigest, len(runIDs))
	err := s.view(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketTaskInstances)
		var r taskDigestReader
		for i, runID := range runIDs {
			pfx := prefix(dagID, runID)
			c := bk.Cursor()
			for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
				if isMappedKey(k[len(pfx):]) {
					continue
				}
				d, err := r.read(v)
				if err != nil {
					return err
				}
				out[i] = append(out[i], d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing task instances of %d runs of %s: %w", len(runIDs), dagID, err)
	}
	return out, nil
}

// taskDigestReader reads TaskDigests from task instances' JSON with one
// reused jsontext decoder: it reads the keys of the object and skips the
// values a digest does not need without decoding them, which is most of
// a task instance (outputs, errors, pool and queue, poke times).
type taskDigestReader struct {
	src bytes.Reader
	dec *jsontext.Decoder
}

func (r *taskDigestReader) read(v []byte) (TaskDigest, error) {
	r.src.Reset(v)
	if r.dec == nil {
		r.dec = jsontext.NewDecoder(&r.src)
	} else {
		r.dec.Reset(&r.src)
	}
	var d TaskDigest
	if tok, err := r.dec.ReadToken(); err != nil || tok.Kind() != '{' {
		return d, fmt.Errorf("decoding a task instance: want an object: %v", err)
	}
	for r.dec.PeekKind() != '}' {
		key, err := r.dec.ReadToken()
		if err != nil {
			return d, fmt.Errorf("decoding a task instance: %w", err)
		}
		name := key.String()
		switch name {
		case "task_id":
			err = r.str(func(s string) { d.TaskID = s })
		case "state":
			err = r.str(func(s string) { d.State = TaskState(s) })
		case "try_number":
			var tok jsontext.Token
			switch tok, err = r.dec.ReadToken(); {
			case err != nil:
			case tok.Kind() != '0':
				err = fmt.Errorf("want a number, got %s", tok.Kind())
			default:
				d.TryNumber = int(tok.Int())
			}
		case "map_length":
			var tok jsontext.Token
			if tok, err = r.dec.ReadToken(); err == nil {
				d.MapLength = int(tok.Int())
			}
		case "start_date":
			err = r.time(&d.StartDate)
		case "end_date":
			err = r.time(&d.EndDate)
		case "cached_from":
			err = r.tryRef(&d.CachedFrom)
		default:
			err = r.dec.SkipValue()
		}
		if err != nil {
			return d, fmt.Errorf("decoding a task instance: %s: %w", name, err)
		}
	}
	_, err := r.dec.ReadToken()
	return d, err
}

// str reads a string value.
func (r *taskDigestReader) str(set func(string)) error {
	tok, err := r.dec.ReadToken()
	if err == nil {
		set(tok.String())
	}
	return err
}

// tryRef reads a TryRef, or null; few task instances have one.
func (r *taskDigestReader) tryRef(ref **TryRef) error {
	v, err := r.dec.ReadValue()
	if err != nil || v.Kind() == 'n' {
		return err
	}
	*ref = new(TryRef)
	return json.Unmarshal(v, *ref)
}

// time reads a time value, RFC 3339 as encoding/json writes it, or null.
func (r *taskDigestReader) time(t *time.Time) error {
	tok, err := r.dec.ReadToken()
	if err != nil || tok.Kind() == 'n' {
		return err
	}
	*t, err = time.Parse(time.RFC3339Nano, tok.String())
	return err
}
