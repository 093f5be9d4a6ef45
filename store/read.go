package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// TaskInstances returns the task instances of a run, mapped ones included,
// sorted by instance key (docs/dag-format.md#mapping). A run without any,
// or one that does not exist, has none.
func (s *Store) TaskInstances(dagID, runID string) ([]*TaskInstance, error) {
	var tis []*TaskInstance
	err := s.view(func(tx *bolt.Tx) error {
		return scan(tx.Bucket(bucketTaskInstances), prefix(dagID, runID), func(v []byte) error {
			ti := new(TaskInstance)
			if err := json.Unmarshal(v, ti); err != nil {
				return err
			}
			tis = append(tis, ti)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing task instances of %s/%s: %w", dagID, runID, err)
	}
	return tis, nil
}

// TaskInstancesPerTask returns a run's task instances one per task, by
// task id: TaskInstances without the instances of mapped tasks, which it
// skips unread, so that a task mapped over 10,000 items costs one
// instance, the one standing for it.
func (s *Store) TaskInstancesPerTask(dagID, runID string) ([]*TaskInstance, error) {
	var tis []*TaskInstance
	err := s.view(func(tx *bolt.Tx) error {
		pfx := prefix(dagID, runID)
		c := tx.Bucket(bucketTaskInstances).Cursor()
		for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx); k, v = c.Next() {
			if isMappedKey(k[len(pfx):]) {
				continue
			}
			ti := new(TaskInstance)
			if err := json.Unmarshal(v, ti); err != nil {
				return fmt.Errorf("decoding %q: %w", k, err)
			}
			tis = append(tis, ti)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the task instances of the tasks of %s/%s: %w", dagID, runID, err)
	}
	return tis, nil
}

// GetTaskInstance returns one task instance of a run; taskID is its
// instance key (InstanceKey), as for Tries and GetTry.
func (s *Store) GetTaskInstance(dagID, runID, taskID string) (*TaskInstance, error) {
	ti := new(TaskInstance)
	if err := s.get(bucketTaskInstances, key(dagID, runID, taskID), ti); err != nil {
		return nil, fmt.Errorf("getting task instance %s/%s/%s: %w", dagID, runID, taskID, err)
	}
	return ti, nil
}

// Tries returns the tries of a task instance, by try number.
func (s *Store) Tries(dagID, runID, taskID string) ([]*Try, error) {
	var tries []*Try
	err := s.view(func(tx *bolt.Tx) error {
		return scan(tx.Bucket(bucketTries), prefix(dagID, runID, taskID), func(v []byte) error {
			t := new(Try)
			if err := json.Unmarshal(v, t); err != nil {
				return err
			}
			tries = append(tries, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing tries of %s/%s/%s: %w", dagID, runID, taskID, err)
	}
	return tries, nil
}

// GetTry returns try number n (from 1) of a task instance.
func (s *Store) GetTry(dagID, runID, taskID string, n int) (*Try, error) {
	t := new(Try)
	err := checkTryNumber(n)
	if err == nil {
		err = s.get(bucketTries, tryKey(dagID, runID, taskID, n), t)
	} else {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("getting try %s/%s/%s/%d: %w", dagID, runID, taskID, n, err)
	}
	return t, nil
}

// DAGStates returns the state of every DAG the scheduler has recorded, by
// DAG id.
func (s *Store) DAGStates() (map[string]*DAGState, error) {
	states := make(map[string]*DAGState)
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDAGStates).ForEach(func(k, v []byte) error {
			st := new(DAGState)
			if err := json.Unmarshal(v, st); err != nil {
				return fmt.Errorf("decoding DAG state %s: %w", k, err)
			}
			states[string(k)] = st
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing DAG states: %w", err)
	}
	return states, nil
}

// GetDAGState returns the state recorded for a DAG.
func (s *Store) GetDAGState(dagID string) (*DAGState, error) {
	st := new(DAGState)
	if err := s.get(bucketDAGStates, []byte(dagID), st); err != nil {
		return nil, fmt.Errorf("getting DAG state %s: %w", dagID, err)
	}
	return st, nil
}

// Pools returns every pool by name, default_pool included.
func (s *Store) Pools() ([]Pool, error) {
	pools := []Pool{}
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPools).ForEach(func(k, v []byte) error {
			var p Pool
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decoding pool %s: %w", k, err)
			}
			pools = append(pools, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing pools: %w", err)
	}
	i, found := slices.BinarySearchFunc(pools, DefaultPool, func(p Pool, name string) int {
		return strings.Compare(p.Name, name)
	})
	if !found {
		pools = slices.Insert(pools, i, Pool{Name: DefaultPool, Slots: DefaultPoolSlots})
	}
	return pools, nil
}

// GetPool returns a pool; default_pool always exists.
func (s *Store) GetPool(name string) (Pool, error) {
	var p Pool
	err := s.get(bucketPools, []byte(name), &p)
	if errors.Is(err, ErrNotFound) && name == DefaultPool {
		return Pool{Name: DefaultPool, Slots: DefaultPoolSlots}, nil
	}
	if err != nil {
		return Pool{}, fmt.Errorf("getting pool %s: %w", name, err)
	}
	return p, nil
}

// get decodes the JSON value of k in bucket into v.
func (s *Store) get(bucket, k []byte, v any) error {
	return s.view(func(tx *bolt.Tx) error {
		if len(k) == 0 {
			return ErrNotFound
		}
		val := tx.Bucket(bucket).Get(k)
		if val == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("decoding: %w", err)
		}
		return nil
	})
}

// scan calls fn with the value of every key that starts with p, in key
// order.
func scan(bk *bolt.Bucket, p []byte, fn func(v []byte) error) error {
	c := bk.Cursor()
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(v); err != nil {
			return fmt.Errorf("decoding %q: %w", k, err)
		}
	}
	return nil
}
