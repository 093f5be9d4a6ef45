package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// Backup writes a consistent copy of the store file at path to the file
// dst, after checking the store as Open does: a damaged store is refused
// with a *DamagedError rather than copied. dst appears whole or not at
// all: the copy is written to a temporary file next to it, synced, then
// renamed. Like Check, Backup opens the file read-only and fails with an
// error wrapping ErrLocked while another process has it open. It returns
// the bytes written.
func Backup(path, dst string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultCheckBudget)
	defer cancel()
	db, r, err := openChecked(ctx, path, &bolt.Options{ReadOnly: true, PreLoadFreelist: true, Timeout: defaultLockTimeout}, false)
	if err != nil {
		return 0, err
	}
	if db != nil {
		defer db.Close()
	}
	if err := r.damaged(); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), filepath.Base(dst)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("backing up %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	var n int64
	err = db.View(func(tx *bolt.Tx) error {
		var werr error
		n, werr = tx.WriteTo(f)
		return werr
	})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), dst)
	}
	if err == nil {
		err = syncDir(filepath.Dir(dst))
	}
	if err != nil {
		return 0, fmt.Errorf("backing up %s to %s: %w", path, dst, err)
	}
	return n, nil
}
