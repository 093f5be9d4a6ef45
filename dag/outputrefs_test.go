package dag_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins"
)

func TestOutputRefs(t *testing.T) {
	d, err := dag.Parse("refs.yaml", []byte(`
id: refs
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
  - {id: b, plugin: shell, with: {command: "true"}}
  - id: c
    plugin: shell
    depends_on: [a, b]
    env: {ROWS: "{{ .outputs.a.rows }}"}
    with:
      command: "run {{ .outputs.b.path }} {{ .outputs.a.rows }} {{ if .outputs.b.flag }}--flag{{ end }}"
      shell: "{{ range $k, $v := .outputs.a }}{{ $k }}{{ end }}/bin/sh"
  - {id: d, plugin: shell, depends_on: [c], with: {command: "plain"}}
`), dag.Options{Plugins: plugins.Builtin()})
	if err != nil {
		t.Fatal(err)
	}
	want := []dag.OutputRef{{Task: "a"}, {Task: "a", Key: "rows"}, {Task: "b", Key: "flag"}, {Task: "b", Key: "path"}}
	if diff := cmp.Diff(want, d.Task("c").OutputRefs()); diff != "" {
		t.Errorf("c's refs (-want +got):\n%s", diff)
	}
	if got := d.Task("d").OutputRefs(); len(got) != 0 {
		t.Errorf("d's refs = %v, want none", got)
	}
}
