package dag_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
)

// TestReads: a task's Reads name the upstream outputs its with, env and
// when refer to, at the finest grain written, and nothing else.
func TestReads(t *testing.T) {
	g := mustParse(t, `
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
  - {id: b, plugin: shell, with: {command: "true"}}
  - id: c
    plugin: shell
    depends_on: [a, b]
    with: {command: "echo {{ .outputs.a.rows }} {{ .params }}"}
    env: {ALL_B: "{{ .outputs.b }}"}
    when: int(outputs.a.rows) > 0 && outputs.b.ok == "yes"
  - id: d
    plugin: shell
    depends_on: [c]
    with: {command: "{{ range $k, $v := .outputs }}{{ $k }}{{ end }}"}
  - {id: e, plugin: shell, depends_on: [a], with: {command: "echo {{ .ds }}"}}
`)
	tests := map[string][]dag.OutputRef{
		"c": {{Task: "a", Key: "rows"}, {Task: "b"}, {Task: "b", Key: "ok"}},
		"d": {{}},
		"e": nil,
	}
	for id, want := range tests {
		if diff := cmp.Diff(want, g.Task(id).Reads); diff != "" {
			t.Errorf("task %s reads (-want +got):\n%s", id, diff)
		}
	}
}
