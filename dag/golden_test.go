package dag_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var builtin = dag.Options{Plugins: plugins.Builtin()}

// TestInvalidGolden loads each testdata/invalid/*.yaml and compares every
// reported problem (file, line, column and message) with NAME.golden.
func TestInvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test inputs: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			g, err := dag.LoadFile(file, builtin)
			if err == nil {
				t.Fatalf("LoadFile(%s) = DAG %q, want errors", file, g.ID)
			}
			var got strings.Builder
			for _, e := range err.(dag.ErrorList) {
				got.WriteString(e.Error() + "\n")
			}
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("errors differ from %s (-want +got):\n%s", golden, diff)
			}
		})
	}
}
