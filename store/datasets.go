package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DatasetEvent records that a dataset was updated (docs/dag-format.md#datasets):
// by a successful try of a task with the dataset among its outlets, or by
// an external producer through the API.
type DatasetEvent struct {
	// ID numbers the events in the order the scheduler took them, from 1.
	ID   uint64    `json:"id"`
	URI  string    `json:"uri"`
	Time time.Time `json:"time"`
	// The producing try; empty for an external event.
	SourceDAGID  string `json:"source_dag_id,omitempty"`
	SourceRunID  string `json:"source_run_id,omitempty"`
	SourceTaskID string `json:"source_task_id,omitempty"`
	SourceTry    int    `json:"source_try,omitempty"`
	// By names who posted an external event (a user or token), when the
	// API knows.
	By string `json:"by,omitempty"`
	// Extra is the producing try's outputs, or what the external
	// producer sent.
	Extra map[string]any `json:"extra,omitempty"`
}

// Dataset is what the store knows of one dataset URI: how many events it
// had, and the last.
type Dataset struct {
	URI    string        `json:"uri"`
	Events int           `json:"events"`
	Last   *DatasetEvent `json:"last_event,omitempty"`
}

var (
	bucketDatasets      = []byte("datasets")       // uri -> Dataset
	bucketDatasetEvents = []byte("dataset_events") // uri, uint64(id) -> DatasetEvent
	bucketDatasetQueue  = []byte("dataset_queue")  // dag, uri -> []DatasetEvent not yet consumed
)

// datasetBuckets are created by migration #7.
var datasetBuckets = [][]byte{bucketDatasets, bucketDatasetEvents, bucketDatasetQueue}

func datasetEventKey(uri string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix(uri), id)
}

// PutDatasetEvent stores an event and counts it in its dataset.
func (b *Batch) PutDatasetEvent(e *DatasetEvent) {
	what := fmt.Sprintf("dataset event %d of %s", e.ID, e.URI)
	if e.ID == 0 || e.URI == "" || bytes.IndexByte([]byte(e.URI), sep) >= 0 {
		b.fail(fmt.Errorf("putting %s: no id, or a bad URI", what))
		return
	}
	val, err := json.Marshal(e)
	if err != nil {
		b.fail(fmt.Errorf("encoding %s: %w", what, err))
		return
	}
	b.add(Change{}, func(tx *bolt.Tx) (bool, error) {
		if err := put(tx.Bucket(bucketDatasetEvents), datasetEventKey(e.URI, e.ID), val); err != nil {
			return false, fmt.Errorf("putting %s: %w", what, err)
		}
		sets := tx.Bucket(bucketDatasets)
		ds := Dataset{URI: e.URI}
		if old := sets.Get([]byte(e.URI)); old != nil {
			if err := json.Unmarshal(old, &ds); err != nil {
				return false, fmt.Errorf("reading dataset %s: %w", e.URI, err)
			}
		}
		ds.Events++
		ds.Last = e
		v, err := json.Marshal(ds)
		if err != nil {
			return false, err
		}
		return true, put(sets, []byte(e.URI), v)
	})
}

// PutDatasetQueue stores the events of a dataset that a DAG scheduled on it
// has not consumed yet; none deletes the entry.
func (b *Batch) PutDatasetQueue(dagID, uri string, events []DatasetEvent) {
	what := fmt.Sprintf("the dataset queue of DAG %s for %s", dagID, uri)
	if err := checkID("DAG id", dagID); err != nil {
		b.fail(fmt.Errorf("putting %s: %w", what, err))
		return
	}
	k := key(dagID, uri)
	if len(events) == 0 {
		b.add(Change{}, func(tx *bolt.Tx) (bool, error) {
			return true, del(tx.Bucket(bucketDatasetQueue), k)
		})
		return
	}
	b.putJSON(Change{}, bucketDatasetQueue, k, events, what)
}

// DatasetQueues returns every DAG's events not consumed yet, by DAG and
// URI, for the scheduler to start from.
func (s *Store) DatasetQueues() (map[string]map[string][]DatasetEvent, error) {
	out := map[string]map[string][]DatasetEvent{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDatasetQueue).ForEach(func(k, v []byte) error {
			dagID, uri, ok := bytes.Cut(k, []byte{sep})
			if !ok {
				return fmt.Errorf("dataset queue: bad key %q", k)
			}
			var events []DatasetEvent
			if err := json.Unmarshal(v, &events); err != nil {
				return fmt.Errorf("dataset queue of %s for %s: %w", dagID, uri, err)
			}
			if out[string(dagID)] == nil {
				out[string(dagID)] = map[string][]DatasetEvent{}
			}
			out[string(dagID)][string(uri)] = events
			return nil
		})
	})
	return out, err
}

// LastDatasetEventID returns the highest event id stored, 0 for none.
func (s *Store) LastDatasetEventID() (uint64, error) {
	var last uint64
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDatasets).ForEach(func(_, v []byte) error {
			var ds Dataset
			if err := json.Unmarshal(v, &ds); err != nil {
				return err
			}
			if ds.Last != nil {
				last = max(last, ds.Last.ID)
			}
			return nil
		})
	})
	return last, err
}

// Datasets returns every dataset that had an event, by URI.
func (s *Store) Datasets() ([]Dataset, error) {
	var out []Dataset
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDatasets).ForEach(func(_, v []byte) error {
			var ds Dataset
			if err := json.Unmarshal(v, &ds); err != nil {
				return err
			}
			out = append(out, ds)
			return nil
		})
	})
	return out, err
}

// DatasetEvents returns up to limit of a dataset's events, newest first,
// and how many it has in all.
func (s *Store) DatasetEvents(uri string, limit int) ([]DatasetEvent, int, error) {
	var out []DatasetEvent
	total := 0
	err := s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketDatasets).Get([]byte(uri)); v != nil {
			var ds Dataset
			if err := json.Unmarshal(v, &ds); err != nil {
				return err
			}
			total = ds.Events
		}
		p := prefix(uri)
		c := tx.Bucket(bucketDatasetEvents).Cursor()
		// Newest first: from the end of the URI's keys backwards.
		k, v := c.Seek(binary.BigEndian.AppendUint64(slices.Clone(p), ^uint64(0)))
		if k == nil {
			k, v = c.Last()
		}
		for ; k != nil && len(out) < limit; k, v = c.Prev() {
			if !bytes.HasPrefix(k, p) || len(k) != len(p)+8 {
				if bytes.Compare(k, p) < 0 {
					break
				}
				continue
			}
			var e DatasetEvent
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, total, err
}
