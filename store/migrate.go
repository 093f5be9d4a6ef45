package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A migration upgrades the file by one schema version, inside the
// transaction that also records the new version.
type migration struct {
	name string
	up   func(tx *bolt.Tx) error
}

// migrations is the ordered list of schema changes; the schema version of a
// file is how many of them it has had. Append, never edit or reorder.
var migrations = []migration{
	{"create the initial buckets", createBuckets},
	{"create the backfills bucket", func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketBackfills)
		return err
	}},
	{"create the open callbacks index", func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketOpenCallbacks)
		return err
	}},
	{"create the users, tokens and sessions buckets", func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketUsers, bucketTokens, bucketSessions} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		return nil
	}},
	{"create the DAG versions buckets", func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDAGVersions, bucketDAGSources, bucketDAGVersionsByDAG, bucketDAGVersionsByFile} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		return nil
	}},
	{"create the task cache and artifact references buckets", func(tx *bolt.Tx) error {
		for _, name := range cacheBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		return nil
	}},
	{"create the datasets buckets", func(tx *bolt.Tx) error {
		for _, name := range datasetBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("creating bucket %s: %w", name, err)
			}
		}
		return nil
	}},
}

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int { return len(migrations) }

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{
		bucketRuns, bucketRunIDs, bucketRunInfo, bucketRunsByQueued,
		bucketActiveRuns, bucketRunCounts, bucketTaskInstances, bucketTries,
		bucketDAGStates, bucketPools,
	} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrate brings the file in tx up to len(ms), or refuses a newer one.
func migrate(tx *bolt.Tx, ms []migration) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucketMeta, err)
	}
	have := readU64(meta.Get(metaSchemaVersion))
	want := uint64(len(ms))
	if have > want {
		return fmt.Errorf("file has schema version %d, this program knows up to %d (%w); upgrade kiln", have, want, ErrNewerSchema)
	}
	for v := have; v < want; v++ {
		m := ms[v]
		if err := m.up(tx); err != nil {
			return fmt.Errorf("migrating schema to version %d (%s): %w", v+1, m.name, err)
		}
		if err := meta.Put(metaSchemaVersion, u64(v+1)); err != nil {
			return fmt.Errorf("recording schema version %d: %w", v+1, err)
		}
	}
	return nil
}
