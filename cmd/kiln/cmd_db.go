package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/store"
)

// The db commands check and back up the store file of a data folder
// (docs/operations.md#damaged-or-full-data-folder).

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
		Long: `Check and back up kiln.db, the store of a data folder. kiln db check reads
the file directly: no server may be running on the folder (the store is
locked while one does). kiln db backup asks the running server for a copy,
or with --data reads the file directly too.`,
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
	var (
		f   authFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "backup (FILE | -o FILE) [--data DIR]",
		Short: "Write a consistent copy of the store to FILE",
		Long: `Write a consistent copy of the store to FILE. FILE appears whole or not
at all (it is written under a temporary name, synced, then renamed); an
existing FILE is replaced.

By default it asks the running server for the copy, as an admin (--token
or $KILN_TOKEN): kiln keeps running meanwhile. With --data DIR it reads
DIR/kiln.db directly, after checking it as kiln does when it starts (a
damaged store is not copied); no server may be running on DIR then.

To restore: stop kiln, move DIR/kiln.db aside, copy FILE to DIR/kiln.db,
run kiln db check --data DIR, and start kiln.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if out != "" && out != args[0] {
					return usageError("two backup files, %s and -o %s: give one", args[0], out)
				}
				out = args[0]
			}
			if out == "" {
				return usageError("the backup FILE is required: kiln db backup FILE, or -o FILE")
			}
			if f.data != "" && (cmd.Flags().Changed("server") || cmd.Flags().Changed("token")) {
				return usageError("--data reads the store directly; it takes no --server or --token")
			}
			var (
				from string
				n    int64
			)
			err := writeFileAtomically(out, func(w io.Writer) error {
				var err error
				if f.data != "" {
					from = storeFile(f.data)
					n, err = backupFile(f.data, w)
					return err
				}
				c, err := f.client()
				if err != nil {
					return err
				}
				from = c.base.String()
				n, err = backupServer(cmd.Context(), c, w)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d bytes from %s\n", out, n, from)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "the backup file to write")
	return cmd
}

// backupFile copies the store of the data folder data to w, as a command's
// exit errors.
func backupFile(data string, w io.Writer) (int64, error) {
	path := storeFile(data)
	n, err := store.Backup(path, w)
	var de *store.DamagedError
	switch {
	case errors.As(err, &de):
		return 0, &exitError{code: 1, msg: damagedMessage(data, de.Path, de.Problems)}
	case errors.Is(err, fs.ErrNotExist):
		return 0, &exitError{code: 1, msg: fmt.Sprintf("no store at %s", path)}
	case errors.Is(err, store.ErrLocked):
		return 0, &exitError{code: 1, msg: lockedMessage(err, data, "leave out --data to ask it for the copy (as an admin, with --token or $KILN_TOKEN), or stop it first")}
	case err != nil:
		return 0, &exitError{code: 1, msg: err.Error()}
	}
	return n, nil
}

// backupServer copies the store of the server c calls to w
// (GET /api/v1/backup). The copy is not bounded in time, only the wait
// for the answer to begin; an answer shorter than it said fails.
func backupServer(ctx context.Context, c *apiClient, w io.Writer) (int64, error) {
	resp, err := c.send(ctx, http.MethodGet, apiPath("backup"), nil, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		return 0, &exitError{code: 1, msg: fmt.Sprintf("copying the store from %s: %v", c.base, err)}
	}
	return n, nil
}

// writeFileAtomically makes path hold what write writes, whole or not at
// all: it writes a temporary file next to it, syncs it and renames it.
// write's error is returned as it is.
func writeFileAtomically(path string, write func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return &exitError{code: 1, msg: fmt.Sprintf("writing %s: %v", path, err)}
	}
	return nil
}
