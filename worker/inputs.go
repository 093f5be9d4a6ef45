package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// inputsDir is the folder of a try's working directory that its inputs
// are downloaded to, one folder per input.
const inputsDir = "inputs"

// transferTimeout bounds the download of an object of size bytes: a
// minute, and a second per MiB.
func transferTimeout(size int64) time.Duration {
	return time.Minute + time.Duration(size>>20)*time.Second
}

// fetchInputs downloads the try's inputs into its working directory dir,
// each checked against the SHA-256 and size its upstream try recorded,
// and returns the local path of each by name: inputs/NAME/FILE for a file
// (FILE the base name of its path upstream), inputs/NAME for a folder.
func (w *Worker) fetchInputs(ctx context.Context, inputs []wire.Input, dir string, logs *logStream) (map[string]string, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	paths := make(map[string]string, len(inputs))
	for _, in := range inputs {
		start := time.Now()
		local, err := w.fetchInput(ctx, in, dir)
		if err != nil {
			return nil, fmt.Errorf("input %s (%s): %w", in.Name, in.From, err)
		}
		rel, _ := filepath.Rel(dir, local)
		logs.note(fmt.Sprintf("kiln: input %s (%s): %s, %s, SHA-256 %s verified, in %s",
			in.Name, in.From, rel, humanize.IBytes(uint64(in.Artifact.Size)), in.Artifact.SHA256, took(start)))
		paths[in.Name] = local
	}
	return paths, nil
}

// fetchInput downloads one input and returns its local path.
func (w *Worker) fetchInput(ctx context.Context, in wire.Input, dir string) (string, error) {
	if err := checkInputName(in.Name); err != nil {
		return "", err
	}
	want := in.Artifact
	if err := wire.CheckSHA256(want.SHA256); err != nil {
		return "", err
	}
	dest := filepath.Join(dir, inputsDir, in.Name)
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return "", err
	}
	local := dest
	if !want.Dir {
		local = filepath.Join(dest, baseName(want.Path, in.Name))
	}
	obs, err := w.artifactStore(ctx)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, transferTimeout(want.Size), errors.New("the download took too long"))
	defer cancel()
	info, err := obs.GetInfo(ctx, want.SHA256)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("the artifact store has no object %s: it was removed from the store, or the store was lost", want.SHA256)
	}
	if err != nil {
		return "", fmt.Errorf("looking up object %s: %w", want.SHA256, err)
	}
	obj, err := w.download(ctx, info)
	if err != nil {
		return "", fmt.Errorf("downloading object %s: %w", want.SHA256, err)
	}
	defer obj.Close()
	// One byte more than wanted tells a larger object; no more is read.
	r := &hashingReader{r: io.LimitReader(obj, want.Size+1), h: sha256.New()}
	var saveErr error
	if want.Dir {
		saveErr = extractTar(r, local)
	} else {
		saveErr = saveFile(r, local)
	}
	// Read to the end, whatever happened: the content is checked first,
	// since a damaged object explains a failure to unpack it.
	_, readErr := io.Copy(io.Discard, r)
	switch got := hex.EncodeToString(r.h.Sum(nil)); {
	case readErr != nil:
		return "", fmt.Errorf("downloading object %s: %w", want.SHA256, readErr)
	case r.n > want.Size:
		return "", fmt.Errorf("the stored object has more than the %d bytes wanted: the artifact store was altered", want.Size)
	case r.n < want.Size:
		return "", fmt.Errorf("the stored object has %d bytes, want %d: the artifact store was altered", r.n, want.Size)
	case got != want.SHA256:
		return "", fmt.Errorf("the stored object's SHA-256 is %s, want %s: the artifact store was altered", got, want.SHA256)
	case saveErr != nil:
		return "", fmt.Errorf("writing it to %s: %w", local, saveErr)
	}
	return local, nil
}

// checkInputName makes sure an input's name, checked at load, can name a
// folder of inputs/ and nothing else: not inputs/ itself (.), nor one
// above it (..) or below another.
func checkInputName(name string) error {
	if name == "." || strings.ContainsAny(name, `/\`) || !filepath.IsLocal(name) {
		return fmt.Errorf("invalid input name %q", name)
	}
	return nil
}

// baseName is the file name an input file is saved under: the base name
// of its path in the upstream try, or else the input's name.
func baseName(p, name string) string {
	b := path.Base(filepath.ToSlash(p))
	if b == "." || !filepath.IsLocal(b) {
		return name
	}
	return b
}

func saveFile(r io.Reader, p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// hashingReader hashes and counts what is read through it.
type hashingReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (r *hashingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	return n, err
}

// withInputs returns the assignment's with and env with each input's
// placeholder (wire.InputPlaceholder) replaced by its local path, in every
// string of with, through maps and lists, and in every value of env.
func withInputs(with map[string]any, env map[string]string, paths map[string]string) (map[string]any, map[string]string) {
	if len(paths) == 0 {
		return with, env
	}
	pairs := make([]string, 0, 2*len(paths))
	for name, p := range paths {
		pairs = append(pairs, wire.InputPlaceholder(name), p)
	}
	r := strings.NewReplacer(pairs...)
	outEnv := make(map[string]string, len(env))
	for k, v := range env {
		outEnv[k] = r.Replace(v)
	}
	outWith, _ := replaceStrings(with, r).(map[string]any)
	return outWith, outEnv
}

// replaceStrings returns v, a JSON value, with r applied to its strings.
func replaceStrings(v any, r *strings.Replacer) any {
	switch x := v.(type) {
	case string:
		return r.Replace(x)
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = replaceStrings(e, r)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = replaceStrings(e, r)
		}
		return out
	}
	return v
}
