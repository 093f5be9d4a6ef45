package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// describeTimeout bounds the Describe call that learns a launched
// plugin's version.
const describeTimeout = 10 * time.Second

// fileID tells the contents of an executable apart without reading it: a
// file replaced or rebuilt in place changes its size or modification time.
type fileID struct {
	path  string
	size  int64
	mtime time.Time
}

// buildOf returns the build of a plugin just launched from the executable
// at path: its version, from Describe, and the SHA-256 of the executable.
// The built-in plugins are all the kiln binary, so a hash is kept per file
// and computed once. What cannot be learned is left empty: the try still
// runs, and its manifest says less.
func (h *Host) buildOf(name, path string, stub stagepb.StageClient) Build {
	var b Build
	ctx, cancel := context.WithTimeout(context.Background(), describeTimeout)
	defer cancel()
	if info, err := stub.Describe(ctx, &stagepb.DescribeRequest{}); err == nil {
		b.Version = info.GetVersion()
	} else {
		h.log.Warn("describing plugin for the manifest", "plugin", name, "error", err)
	}
	sum, err := h.hashFile(path)
	if err != nil {
		h.log.Warn("hashing plugin executable for the manifest", "plugin", name, "error", err)
	}
	b.SHA256 = sum
	return b
}

// hashFile returns the hex SHA-256 of the file at path, from the cache
// while the file's size and modification time stay the same.
func (h *Host) hashFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	id := fileID{path, fi.Size(), fi.ModTime()}
	h.hashMu.Lock()
	defer h.hashMu.Unlock()
	if sum, ok := h.hashes[id]; ok {
		return sum, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, f); err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	sum := hex.EncodeToString(hash.Sum(nil))
	h.hashes[id] = sum
	return sum, nil
}

// Builds returns the build of every plugin Config.List names, by name:
// its version, and the SHA-256 of its executable, read once while the
// file keeps its size and modification time (the built-in plugins share
// the kiln binary's). A plugin whose executable cannot be read has no
// SHA256. Without Config.List it returns nil.
func (h *Host) Builds() map[string]Build {
	if h.cfg.List == nil {
		return nil
	}
	list := h.cfg.List()
	out := make(map[string]Build, len(list))
	for _, e := range list {
		sum, err := h.hashFile(e.Path)
		if err != nil {
			h.log.Warn("hashing plugin executable", "plugin", e.Name, "error", err)
		}
		out[e.Name] = Build{Version: e.Version, SHA256: sum}
	}
	return out
}
