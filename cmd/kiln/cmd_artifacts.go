package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"mime"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/spf13/cobra"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

func newArtifactsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "artifacts",
		Short: "List and download the files tasks stored, and collect old ones",
		Long: `Artifacts are the files and folders a task declares (artifacts: {NAME: PATH});
its worker stores each in the artifact store, named by its SHA-256, once
the task succeeded (docs/artifacts.md).`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newArtifactsListCmd(), newArtifactsGetCmd(), newArtifactsGCCmd())
	return cmd
}

func newArtifactsListCmd() *cobra.Command {
	var (
		sf                 serverFlags
		dagID, runID, task string
		asJSON             bool
	)
	cmd := &cobra.Command{
		Use:   "list --dag DAG --run RUN_ID [--task ID]",
		Short: "List the artifacts of a run's tasks",
		Long: `List the artifacts of a run's tasks, in the DAG's task order: those each
task's successful try stored, or took from the task cache. The hash is the
SHA-256's first 12 digits; --json has it whole.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sf.client()
			if err != nil {
				return err
			}
			q := url.Values{}
			if task != "" {
				q.Set("task", task)
			}
			var arts []ui.RunArtifact
			if _, err := c.do(cmd.Context(), "GET", apiPath("dags", dagID, "runs", runID, "artifacts"), q, nil, &arts); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), arts)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "TASK\tNAME\tSIZE\tSHA256\tPATH")
			for _, a := range arts {
				p := a.Path
				if a.Dir {
					p += "/"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", store.InstanceKey(a.TaskID, a.MapIndex), a.Name, humanize.IBytes(uint64(a.Size)), a.SHA256[:min(12, len(a.SHA256))], p)
			}
			return tw.Flush()
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&dagID, "dag", "", "the DAG (required)")
	f.StringVar(&runID, "run", "", "the run id (required)")
	f.StringVar(&task, "task", "", "only this task's artifacts")
	f.BoolVar(&asJSON, "json", false, "print a JSON array")
	cmd.MarkFlagRequired("dag")
	cmd.MarkFlagRequired("run")
	return cmd
}

func newArtifactsGetCmd() *cobra.Command {
	var (
		sf                 serverFlags
		dagID, runID, task string
		mapIndex           int
		output             string
		force              bool
	)
	cmd := &cobra.Command{
		Use:   "get --dag DAG --run RUN_ID --task ID [--map-index N] NAME [-o FILE]",
		Short: "Download an artifact of a task",
		Long: `Download the artifact NAME of a task of a run into FILE: by default the
base name of the artifact's path in the current folder (with .tar for a
folder, which is stored as a tar); -o - writes it to stdout. An existing
file is not overwritten unless --force. --map-index N downloads the
artifact of instance N of a mapped task.

What arrives is checked against the artifact's SHA-256: a file that does
not match is not kept (exit 1); on stdout it has been written by then, and
the exit status says it is wrong.`,
		Example: `  kiln artifacts get --dag ml_pipeline --run manual__2026-11-27T06:30:12.104233Z --task train model
  kiln artifacts get --dag ml_pipeline --run manual__2026-11-27T06:30:12.104233Z --task features table -o - | head`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "" && output != "-" && !force {
				if err := refuseExisting(output); err != nil {
					return err
				}
			}
			q := url.Values{}
			if _, err := addMapIndex(cmd, q, task, mapIndex); err != nil {
				return err
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			resp, err := c.send(cmd.Context(), "GET", apiPath("dags", dagID, "runs", runID, "tasks", task, "artifacts", args[0]), q, nil)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			sha := strings.Trim(resp.Header.Get("ETag"), `"`)
			if err := wire.CheckSHA256(sha); err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("the server sent artifact %s without its SHA-256 as ETag: %v", args[0], err)}
			}
			dest := output
			if dest == "" {
				dest = downloadName(resp.Header.Get("Content-Disposition"), args[0])
				if !force {
					if err := refuseExisting(dest); err != nil {
						return err
					}
				}
			}
			if dest == "-" {
				sum := sha256.New()
				if _, err := io.Copy(io.MultiWriter(cmd.OutOrStdout(), sum), resp.Body); err != nil {
					return &exitError{code: 1, msg: fmt.Sprintf("downloading artifact %s: %v", args[0], cutShort(err))}
				}
				if err := checkSum(sum, sha); err != nil {
					return &exitError{code: 1, msg: fmt.Sprintf("downloading artifact %s: %v", args[0], err)}
				}
				return nil
			}
			n, err := saveVerified(resp.Body, dest, sha, force)
			if err != nil {
				return &exitError{code: 1, msg: fmt.Sprintf("downloading artifact %s: %v", args[0], err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s, sha256 %s)\n", dest, humanize.IBytes(uint64(n)), sha[:12])
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&dagID, "dag", "", "the DAG (required)")
	f.StringVar(&runID, "run", "", "the run id (required)")
	f.StringVar(&task, "task", "", "the task id (required)")
	f.IntVar(&mapIndex, "map-index", 0, "instance N of the mapped task --task names")
	f.StringVarP(&output, "output", "o", "", "the file to write, - for stdout (default: the base name of the artifact's path)")
	f.BoolVar(&force, "force", false, "overwrite the file if it exists")
	cmd.MarkFlagRequired("dag")
	cmd.MarkFlagRequired("run")
	cmd.MarkFlagRequired("task")
	return cmd
}

// refuseExisting fails when path exists: a download does not overwrite
// without --force.
func refuseExisting(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return &exitError{code: 1, msg: fmt.Sprintf("%s exists: give --force to overwrite it, or -o another file", path)}
	}
	return nil
}

// downloadName is the file an artifact is saved as without -o: the file
// name of the server's Content-Disposition, kept to a plain name in the
// current folder, else the artifact's name.
func downloadName(disposition, artifact string) string {
	_, params, err := mime.ParseMediaType(disposition)
	if err == nil {
		name := params["filename"]
		if name != "" && name == filepath.Base(name) && name != "." && name != ".." && !strings.ContainsAny(name, `/\`) {
			return name
		}
	}
	return artifact
}

// saveVerified writes r to dest through a temporary file beside it, and
// keeps it only if what it read has the SHA-256 sha; without force, a
// file that appeared at dest meanwhile is not overwritten. It returns the
// bytes written.
func saveVerified(r io.Reader, dest, sha string, force bool) (int64, error) {
	dir := filepath.Dir(dest)
	tmp, err := os.CreateTemp(dir, ".kiln-artifact-*")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("cannot write %s: folder %s does not exist", dest, dir)
	}
	if err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name()) // gone already once renamed; a second name once linked
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return 0, err
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), r)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, cutShort(err)
	}
	if err := checkSum(sum, sha); err != nil {
		return n, fmt.Errorf("%s was not kept: %w", dest, err)
	}
	if force {
		return n, os.Rename(tmp.Name(), dest)
	}
	if err := os.Link(tmp.Name(), dest); errors.Is(err, os.ErrExist) {
		return n, fmt.Errorf("%s exists: give --force to overwrite it, or -o another file", dest)
	} else if err != nil {
		return n, err
	}
	return n, nil
}

// checkSum compares what was downloaded with the artifact's SHA-256.
func checkSum(sum hash.Hash, sha string) error {
	if got := hex.EncodeToString(sum.Sum(nil)); got != sha {
		return fmt.Errorf("the content received has SHA-256 %s, not the artifact's %s", got, sha)
	}
	return nil
}

// cutShort explains a download that ended before its Content-Length: the
// server stops sending an artifact whose stored content does not match its
// SHA-256.
func cutShort(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the server cut the download short: the stored object may be corrupt (the server's log says) (%w)", err)
	}
	return err
}

func newArtifactsGCCmd() *cobra.Command {
	var (
		sf        serverFlags
		olderThan string
		dryRun    bool
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "gc --older-than AGE [--dry-run]",
		Short: "Delete the stored artifacts nothing young refers to",
		Long: `Delete from the artifact store every artifact that no try, cache hit or
input of the last AGE (such as 30d or 12h) refers to, and that no live
task cache entry holds; the expired cache entries that held one go too
(docs/artifacts.md#retention). The server also does this hourly with its
--artifact-retention. --dry-run says what would go and deletes nothing.
Needs the operator role.`,
		Example: `  kiln artifacts gc --older-than 30d --dry-run`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if age, err := dag.ParseDays(olderThan); err != nil || age <= 0 {
				return usageError("--older-than %q: want an age above zero such as 30d or 12h", olderThan)
			}
			c, err := sf.client()
			if err != nil {
				return err
			}
			var r ui.ArtifactGCReport
			if _, err := c.do(cmd.Context(), "POST", apiPath("artifacts", "gc"), nil, ui.ArtifactGCRequest{OlderThan: olderThan, DryRun: dryRun}, &r); err != nil {
				return err
			}
			if asJSON {
				return printJSONValue(cmd.OutOrStdout(), r)
			}
			verb := "deleted"
			if r.DryRun {
				verb = "would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %d artifact(s), %s; kept %d, %s\n", verb, r.Deleted, humanize.IBytes(uint64(r.FreedBytes)), r.Kept, humanize.IBytes(uint64(r.KeptBytes)))
			if r.CacheEntriesDropped > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "dropped %d expired cache entr%s that held one\n", r.CacheEntriesDropped, plural(r.CacheEntriesDropped, "y", "ies"))
			}
			if r.OrphanChunks > 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s the chunks of %d upload(s) that never finished\n", strings.Replace(verb, "delete", "purge", 1), r.OrphanChunks)
			}
			return nil
		},
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&olderThan, "older-than", "", "delete what nothing of this age or younger refers to: 30d, 12h, 1d12h (required)")
	f.BoolVar(&dryRun, "dry-run", false, "say what would go; delete nothing")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.MarkFlagRequired("older-than")
	return cmd
}

// plural is one when n is 1, else many.
func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
