package registry_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// testPlugin is the test plugin built by TestMain; installed as
// kiln-plugin-NAME it behaves as testdata/testplugin says for NAME.
var testPlugin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kiln-registry-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	testPlugin = filepath.Join(dir, "testplugin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const pkg = "github.com/kilnhq/kiln/plugins/registry/testdata/testplugin"
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", testPlugin, pkg).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
		return 1
	}
	return m.Run()
}

// install puts the test plugin into dir as kiln-plugin-NAME for each name
// and returns dir.
func install(t *testing.T, dir string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if err := os.Symlink(testPlugin, filepath.Join(dir, "kiln-plugin-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
