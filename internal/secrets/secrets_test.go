package secrets_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/secrets"
)

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "db_password"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "both"), []byte("file"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"KILN_SECRET_api_token": "from-env", "KILN_SECRET_both": "env", "HOME": "/root"}
	src := secrets.Source{Dir: dir, LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	for name, want := range map[string]string{"db_password": "from-file", "api_token": "from-env", "both": "env"} {
		if got, err := src.Lookup(name); err != nil || got != want {
			t.Errorf("Lookup(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"missing", "HOME", "../etc/passwd"} {
		_, err := src.Lookup(name)
		if !errors.Is(err, secrets.ErrNotFound) || !strings.Contains(err.Error(), "KILN_SECRET_"+name) {
			t.Errorf("Lookup(%s) error = %v, want not found naming KILN_SECRET_%s", name, err, name)
		}
	}
}
