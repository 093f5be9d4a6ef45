package registry_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnhq/kiln/internal/plugintest"
)

// testPlugin is the test plugin built by TestMain; installed as
// kiln-plugin-NAME it behaves as testdata/testplugin says for NAME.
var testPlugin string

func TestMain(m *testing.M) {
	plugintest.Main(m, nil, func(dir string) (err error) {
		testPlugin, err = plugintest.Build(dir, "testplugin", "github.com/kilnhq/kiln/plugins/registry/testdata/testplugin")
		return err
	})
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
