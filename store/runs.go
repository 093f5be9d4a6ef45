package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// GetRun returns a run by its id.
func (s *Store) GetRun(dagID, runID string) (*Run, error) {
	var r *Run
	err := s.view(func(tx *bolt.Tx) error {
		date := tx.Bucket(bucketRunIDs).Get(key(dagID, runID))
		if date == nil {
			return ErrNotFound
		}
		var err error
		r, err = getRun(tx, append(prefix(dagID), date...))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getting run %s/%s: %w", dagID, runID, err)
	}
	return r, nil
}

// RunAt returns the DAG's run for a logical date, of any run type.
func (s *Store) RunAt(dagID string, logicalDate time.Time) (*Run, error) {
	var r *Run
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		r, err = getRun(tx, runKey(dagID, logicalDate))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getting run of %s at %s: %w", dagID, logicalDate.Format(time.RFC3339Nano), err)
	}
	return r, nil
}

// PreviousRun returns the DAG's run with the greatest logical date strictly
// before logicalDate, of any run type and state (depends_on_past looks at
// its task instances).
func (s *Store) PreviousRun(dagID string, logicalDate time.Time) (*Run, error) {
	var r *Run
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRuns).Cursor()
		var k, v []byte
		if at, _ := c.Seek(runKey(dagID, logicalDate)); at == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		if k == nil || !bytes.HasPrefix(k, prefix(dagID)) {
			return ErrNotFound
		}
		var err error
		r, err = decodeRun(v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("getting run of %s before %s: %w", dagID, logicalDate.Format(time.RFC3339Nano), err)
	}
	return r, nil
}

// ActiveRuns returns the runs that are queued or running, of all DAGs,
// ordered by DAG id and logical date. It reads the active_runs index, so
// its cost does not grow with finished history.
func (s *Store) ActiveRuns() ([]*Run, error) {
	var runs []*Run
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketActiveRuns).ForEach(func(k, _ []byte) error {
			r, err := getRun(tx, k)
			if err != nil {
				return fmt.Errorf("active run %q: %w", k, err)
			}
			runs = append(runs, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing active runs: %w", err)
	}
	return runs, nil
}

// CountRuns returns the number of runs of a DAG, or of all DAGs when dagID
// is "". It reads a counter: O(1).
func (s *Store) CountRuns(dagID string) (int, error) {
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		n = countRuns(tx, dagID)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting runs: %w", err)
	}
	return n, nil
}

func countRuns(tx *bolt.Tx, dagID string) int {
	if dagID == "" {
		return int(readU64(tx.Bucket(bucketMeta).Get(metaRunCount)))
	}
	return int(readU64(tx.Bucket(bucketRunCounts).Get([]byte(dagID))))
}

// RunQuery selects and pages runs for ListRuns. Empty fields match all.
type RunQuery struct {
	DAGID      string   // one DAG, newest logical date first; "" for all DAGs, newest QueuedAt first
	State      RunState // only runs in this state
	RunType    string   // only runs of this type (RunTypeScheduled, ...)
	BackfillID string   // only runs of this backfill
	Limit      int      // page size; 0 or less for no limit
	Offset     int      // matching runs to skip before the page
}

func (q *RunQuery) filtered() bool { return q.State != "" || q.RunType != "" || q.BackfillID != "" }

func (q *RunQuery) match(ri runInfo) bool {
	return (q.State == "" || string(ri.state) == string(q.State)) &&
		(q.RunType == "" || string(ri.runType) == q.RunType) &&
		(q.BackfillID == "" || string(ri.backfillID) == q.BackfillID)
}

// ListRuns returns one page of the runs q selects and how many it selects
// in all.
//
// It walks an index backwards from the newest run and decodes only the
// page's runs. Without filters it stops at the end of the page and takes
// total from a counter: O(log n + offset + limit). With a filter it checks
// every run in scope against the index's summary to count total, O(n) steps
// of a few bytes each, and still decodes only the page.
func (s *Store) ListRuns(q RunQuery) (runs []*Run, total int, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		var (
			idx = tx.Bucket(bucketRunsByQueued)
			pfx []byte // keys in scope start with it
			at  = timeLen
		)
		if q.DAGID != "" {
			idx, pfx, at = tx.Bucket(bucketRunInfo), prefix(q.DAGID), 0
		}
		filtered := q.filtered()
		var page [][]byte // run keys, valid for the transaction
		n := 0            // matching runs seen
		c := idx.Cursor()
		for k, v := seekLast(c, pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Prev() {
			if filtered {
				ri, ok := decodeRunInfo(v)
				if !ok {
					return fmt.Errorf("corrupt run summary %q", k)
				}
				if !q.match(ri) {
					continue
				}
			}
			n++
			if n <= q.Offset {
				continue
			}
			if q.Limit <= 0 || len(page) < q.Limit {
				page = append(page, k[at:])
			} else if !filtered {
				break
			}
		}
		total = n
		if !filtered {
			total = countRuns(tx, q.DAGID)
		}
		runs = make([]*Run, 0, len(page))
		for _, k := range page {
			r, err := getRun(tx, k)
			if err != nil {
				return fmt.Errorf("run %q: %w", k, err)
			}
			runs = append(runs, r)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing runs: %w", err)
	}
	return runs, total, nil
}

// seekLast moves c to the last key that starts with pfx, which must be
// empty or end with sep, and returns it; or a key before them all when
// there is none.
func seekLast(c *bolt.Cursor, pfx []byte) ([]byte, []byte) {
	if len(pfx) == 0 {
		return c.Last()
	}
	end := bytes.Clone(pfx)
	end[len(end)-1] = sep + 1
	if k, _ := c.Seek(end); k == nil {
		return c.Last()
	}
	return c.Prev()
}

func getRun(tx *bolt.Tx, k []byte) (*Run, error) {
	v := tx.Bucket(bucketRuns).Get(k)
	if v == nil {
		return nil, ErrNotFound
	}
	return decodeRun(v)
}

func decodeRun(v []byte) (*Run, error) {
	r := new(Run)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("decoding run: %w", err)
	}
	return r, nil
}

// RunsWithID returns the runs whose id is runID, of every DAG, by DAG id:
// run ids are unique within a DAG only. It looks the id up once per DAG
// that has runs: O(DAGs · log n).
func (s *Store) RunsWithID(runID string) ([]*Run, error) {
	var runs []*Run
	err := s.view(func(tx *bolt.Tx) error {
		ids := tx.Bucket(bucketRunIDs)
		return tx.Bucket(bucketRunCounts).ForEach(func(dagID, _ []byte) error {
			date := ids.Get(key(string(dagID), runID))
			if date == nil {
				return nil
			}
			r, err := getRun(tx, append(prefix(string(dagID)), date...))
			if err != nil {
				return err
			}
			runs = append(runs, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("finding run %s: %w", runID, err)
	}
	return runs, nil
}
