// Package secrets finds the values of the secrets DAG files refer to as
// .secrets.NAME (docs/dag-format.md#secrets): in the server's environment as KILN_SECRET_NAME,
// or in a file named NAME in the secrets folder, as Kubernetes and Docker
// mount them. The environment wins. Values are read at each use, so a
// rotated secret is picked up by the next try without a restart.
package secrets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// EnvPrefix starts the names of the environment variables that hold
// secrets: only those are readable as secrets, never the rest of the
// server's environment.
const EnvPrefix = "KILN_SECRET_"

// ErrNotFound is returned for a secret that is neither in the environment
// nor in the folder.
var ErrNotFound = errors.New("secret not found")

// maxSize bounds a secret file, against pointing the folder somewhere big.
const maxSize = 1 << 20

// Source looks secrets up.
type Source struct {
	// Dir is the secrets folder; empty for none.
	Dir string
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Lookup returns the value of the named secret. A file's one trailing
// newline is dropped, as editors and `echo` add it.
func (s Source) Lookup(name string) (string, error) {
	lookup := s.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	if v, ok := lookup(EnvPrefix + name); ok {
		return v, nil
	}
	if s.Dir == "" || strings.ContainsAny(name, `/\`) || name == "." || name == ".." {
		return "", fmt.Errorf("secret %s: %w: set %s%s in the server's environment", name, ErrNotFound, EnvPrefix, name)
	}
	path := filepath.Join(s.Dir, name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("secret %s: %w: set %s%s in the server's environment or create %s", name, ErrNotFound, EnvPrefix, name, path)
	}
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", name, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return "", fmt.Errorf("secret %s: reading %s: %w", name, path, err)
	}
	if len(b) > maxSize {
		return "", fmt.Errorf("secret %s: %s is over %d bytes", name, path, maxSize)
	}
	v := string(b)
	v = strings.TrimSuffix(v, "\n")
	return strings.TrimSuffix(v, "\r"), nil
}
