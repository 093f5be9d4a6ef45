package filesensor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// params are the task's `with` parameters (schema.json).
type params struct {
	Path    string `json:"path"`
	MinSize int64  `json:"min_size"`
}

// Run pokes once: success when a file matches, else an error wrapping
// sdk.ErrNotYet that says what it looked for.
func (Stage) Run(ctx context.Context, t *sdk.Task) error {
	var p params
	if err := t.Decode(&p); err != nil {
		return err
	}
	if p.Path == "" {
		return errors.New("invalid parameters: path is required")
	}
	if p.MinSize < 0 {
		return fmt.Errorf("invalid parameters: min_size %d is negative", p.MinSize)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pattern := p.Path
	if !filepath.IsAbs(pattern) && t.WorkDir != "" {
		pattern = filepath.Join(t.WorkDir, pattern)
	}
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return fmt.Errorf("path %q: %w", p.Path, err)
	}

	// Glob returns matches sorted, so the first is the same on every poke.
	var found []string
	largest := int64(-1)
	for _, m := range matches {
		fi, err := os.Stat(m) // follows links: a link to a file counts
		if err != nil {
			continue // gone since Glob, or a dangling link
		}
		ok := fi.Size() >= p.MinSize
		if fi.IsDir() {
			ok = p.MinSize == 0
		} else {
			largest = max(largest, fi.Size())
		}
		if ok {
			found = append(found, m)
		}
	}
	if len(found) == 0 {
		// The host logs the reason as the poke's last line.
		switch {
		case len(matches) == 0:
			return fmt.Errorf("no file matches %s: %w", pattern, sdk.ErrNotYet)
		case largest < 0:
			return fmt.Errorf("only directories match %s, and min_size is %d: %w", pattern, p.MinSize, sdk.ErrNotYet)
		default:
			return fmt.Errorf("%d file(s) match %s, the largest of %d bytes, below min_size %d: %w",
				len(matches), pattern, largest, p.MinSize, sdk.ErrNotYet)
		}
	}

	first := found[0]
	if !filepath.IsAbs(p.Path) && t.WorkDir != "" {
		// Output the path as the task wrote it: relative to its directory.
		if rel, err := filepath.Rel(t.WorkDir, first); err == nil {
			first = rel
		}
	}
	t.Logf("found %s (%d match(es) of %s with min_size %d)", first, len(found), pattern, p.MinSize)
	if err := t.SetOutput("path", first); err != nil {
		return err
	}
	return t.SetOutput("matches", strconv.Itoa(len(found)))
}
