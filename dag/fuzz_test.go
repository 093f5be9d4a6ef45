package dag_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kilnhq/kiln/dag"
)

// FuzzParse feeds arbitrary bytes to the loader: it must never panic,
// every problem it reports must carry a position, and there are at most
// 100 of them and a note.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/invalid/*.yaml")
	examples, _ := filepath.Glob("../examples/dags/*.yaml")
	for _, path := range append(seeds, examples...) {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte("a: &a [*a, *a]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nid: x\ntasks: [{id: t, plugin: shell, with: {command: x, env: *c}}]"))
	f.Fuzz(func(t *testing.T, src []byte) {
		g, err := dag.Parse("fuzz.yaml", src, builtin)
		if err == nil {
			if g == nil || g.ID == "" || len(g.Tasks) == 0 {
				t.Fatalf("no error but DAG %+v", g)
			}
			return
		}
		errs, ok := err.(dag.ErrorList)
		if !ok || len(errs) == 0 || len(errs) > 101 {
			t.Fatalf("error %T is not an ErrorList of 1 to 101 problems: %v", err, err)
		}
		for _, e := range errs {
			if e.Line < 1 || e.Col < 1 || e.File != "fuzz.yaml" || e.Msg == "" {
				t.Fatalf("error without a proper position: %#v", e)
			}
		}
	})
}
