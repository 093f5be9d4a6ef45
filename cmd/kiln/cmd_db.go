package main

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/store"
)

// The db commands work on the store file of a data folder directly, with
// no server running (docs/operations.md#damaged-or-full-data-folder).

// storeFile is the store's file in a data folder.
func storeFile(data string) string { return filepath.Join(data, "kiln.db") }

// openStore opens the store of the data folder data for a command. Its
// errors are exit errors: a damaged file says how to restore a backup, a
// locked one that a server probably runs on data, and what to do then
// (lockedHint).
func openStore(data, lockedHint string) (*store.Store, error) {
	st, err := store.Open(storeFile(data))
	var de *store.DamagedError
	switch {
	case errors.As(err, &de):
		return nil, &exitError{code: 1, msg: damagedMessage(data, de.Path, de.Problems)}
	case errors.Is(err, store.ErrLocked):
		return nil, &exitError{code: 1, msg: lockedMessage(err, data, lockedHint)}
	case err != nil:
		return nil, &exitError{code: 1, msg: err.Error()}
	}
	return st, nil
}

// damagedMessage says what is wrong with the store file path of the data
// folder data, and how to put a backup in its place.
func damagedMessage(data, path string, problems []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "store %s is damaged; Kiln will not use it:\n", path)
	for _, p := range problems {
		fmt.Fprintf(&b, "  - %s\n", p)
	}
	fmt.Fprintf(&b, `To restore a backup made with kiln db backup: stop kiln, then
  mv %[1]s %[1]s.damaged
  cp BACKUP %[1]s
  kiln db check --data %[2]s
and start kiln again. Without a backup, moving the file aside makes kiln start
with an empty store: runs, DAG states, pools, users and tokens are lost.
See docs/operations.md#damaged-or-full-data-folder`, path, data)
	return b.String()
}

// lockedMessage is the message for a store that another process holds:
// err, that it is probably a server, and hint.
func lockedMessage(err error, data, hint string) string {
	return fmt.Sprintf("%v.\nA kiln server is probably running on %s: %s", err, data, hint)
}

func newDBCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Check and back up the store of a data folder",
		Long: `Check and back up kiln.db, the store of a data folder, directly: no
server may be running on the folder (the store is locked while one does).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newDBCheckCmd(), newDBBackupCmd())
	return cmd
}

func newDBCheckCmd() *cobra.Command {
	var data string
	cmd := &cobra.Command{
		Use:   "check [--data DIR]",
		Short: "Check the store for damage: exit 0 when sound, 1 when damaged",
		Long: `Check DIR/kiln.db whole: its header, every key and value of every bucket,
and bbolt's own page and free list check. It prints what it checked, and
the problems of a damaged file, one a line; it exits 0 when the file is
sound and 1 when it is damaged. It reads the file and changes nothing; no
server may be running on DIR. A large store takes a while: about 15 s
of CPU time per GB.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := storeFile(data)
			r, err := store.Check(cmd.Context(), path)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				return &exitError{code: 1, msg: fmt.Sprintf("no store at %s (kiln makes one there when it first starts)", path)}
			case errors.Is(err, store.ErrLocked):
				return &exitError{code: 1, msg: lockedMessage(err, data, "kiln db check reads the file directly and needs it stopped")}
			case err != nil:
				return &exitError{code: 1, msg: err.Error()}
			}
			out := cmd.OutOrStdout()
			if len(r.Problems) == 0 {
				fmt.Fprintf(out, "%s: sound\n  %s\n", path, r)
				return nil
			}
			fmt.Fprintf(out, "%s: damaged\n  %s\n", path, r)
			for _, p := range r.Problems {
				fmt.Fprintf(out, "  - %s\n", p)
			}
			return &exitError{code: 1, msg: damagedMessage(data, path, r.Problems)}
		},
	}
	cmd.Flags().StringVar(&data, "data", ".kiln", "the data folder")
	return cmd
}

func newDBBackupCmd() *cobra.Command {
	var data, out string
	cmd := &cobra.Command{
		Use:   "backup -o FILE [--data DIR]",
		Short: "Write a consistent copy of the store to FILE",
		Long: `Write a consistent copy of DIR/kiln.db to FILE, after checking the store
as kiln does when it starts: a damaged store is not copied. FILE appears
whole or not at all (it is written under a temporary name, synced, then
renamed); an existing FILE is replaced. No server may be running on DIR.

To restore: stop kiln, move DIR/kiln.db aside, copy FILE to DIR/kiln.db,
run kiln db check --data DIR, and start kiln.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError("-o FILE is required")
			}
			path := storeFile(data)
			n, err := store.Backup(path, out)
			var de *store.DamagedError
			switch {
			case errors.As(err, &de):
				return &exitError{code: 1, msg: damagedMessage(data, de.Path, de.Problems)}
			case errors.Is(err, fs.ErrNotExist):
				return &exitError{code: 1, msg: fmt.Sprintf("no store at %s", path)}
			case errors.Is(err, store.ErrLocked):
				return &exitError{code: 1, msg: lockedMessage(err, data, "kiln db backup reads the file directly and needs it stopped")}
			case err != nil:
				return &exitError{code: 1, msg: err.Error()}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d bytes from %s\n", out, n, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&data, "data", ".kiln", "the data folder")
	cmd.Flags().StringVarP(&out, "output", "o", "", "the backup file to write")
	return cmd
}
