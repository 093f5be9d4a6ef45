package store

import (
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// bucketOpenCallbacks indexes the callback tries that have not finished
// (migration 3), so that a restarted scheduler finds them without scanning
// every try. A callback's run has often ended, so active_runs does not
// lead to it.
//
//	open_callbacks/
//	    dag 0x00 run_id 0x00 task_id 0x00 uint32(try_number) -> empty
var bucketOpenCallbacks = []byte("open_callbacks")

// indexCallback keeps t's entry in open_callbacks in step with its state.
func indexCallback(tx *bolt.Tx, k []byte, t *Try) error {
	b := tx.Bucket(bucketOpenCallbacks)
	if t.State.Finished() {
		return del(b, k)
	}
	return put(b, k, nil)
}

// OpenCallbacks returns the callback tries that have not finished.
func (s *Store) OpenCallbacks() ([]*Try, error) {
	var out []*Try
	err := s.view(func(tx *bolt.Tx) error {
		tries := tx.Bucket(bucketTries)
		return tx.Bucket(bucketOpenCallbacks).ForEach(func(k, _ []byte) error {
			v := tries.Get(k)
			if v == nil {
				return nil
			}
			t := new(Try)
			if err := json.Unmarshal(v, t); err != nil {
				return fmt.Errorf("decoding try %q: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}
