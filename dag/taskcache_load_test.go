package dag_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
)

// TestCache: `cache` as true, false or a mapping, under defaults and
// overridden per task; sensors do not take the default
// (docs/dag-format.md#task-cache).
func TestCache(t *testing.T) {
	g := mustParse(t, `
defaults:
  plugin: shell
  with: {command: "true"}
  cache: {ttl: 7d, key: "{{ .ds }}"}
tasks:
  - id: inherits
    artifacts: {model: model.pkl}
  - id: off
    cache: false
  - id: on
    cache: true
  - id: own
    depends_on: [inherits]
    inputs: {model: inherits.model}
    cache: {ttl: 1d12h, key: "{{ .params.region }}/{{ .outputs.inherits.version }}/{{ .inputs.model }}"}
  - id: no_ttl
    cache: {key: v2}
  - id: empty
    cache: {}
  - id: wait
    plugin: file_sensor
    with: {path: x}
  - id: wait_off
    plugin: file_sensor
    with: {path: x}
    cache: false
params:
  region: {type: string, default: eu}
`)
	type summary struct {
		TTL time.Duration
		Key string
	}
	want := map[string]*summary{
		"inherits": {TTL: 7 * 24 * time.Hour, Key: "{{ .ds }}"},
		"off":      nil,
		"on":       {},
		"own":      {TTL: 36 * time.Hour, Key: "{{ .params.region }}/{{ .outputs.inherits.version }}/{{ .inputs.model }}"},
		"no_ttl":   {Key: "v2"},
		"empty":    {},
		"wait":     nil,
		"wait_off": nil,
	}
	for _, tk := range g.Tasks {
		var got *summary
		if c := tk.Cache; c != nil {
			got = &summary{TTL: c.TTL}
			if c.Key != nil {
				got.Key = c.Key.String()
			}
		}
		if diff := cmp.Diff(want[tk.ID], got); diff != "" {
			t.Errorf("task %s cache (-want +got):\n%s", tk.ID, diff)
		}
	}
	own := g.Task("own")
	if diff := cmp.Diff([]dag.OutputRef{{Task: "inherits", Key: "version"}}, own.Reads); diff != "" {
		t.Errorf("own reads (-want +got):\n%s", diff)
	}
	v := dag.Values{Params: map[string]any{"region": "eu"}, Outputs: map[string]any{"inherits": map[string]any{"version": "3"}},
		Inputs: map[string]string{"model": wire.InputPlaceholder("model")}}
	if key, err := own.Cache.Key.Render(v.Data(time.UTC)); err != nil || key != "eu/3/${KILN_INPUT_MODEL}" {
		t.Errorf("own's cache key renders %q, %v", key, err)
	}
}

// TestParamsRead lists the params each task's templates and `when` read:
// by name, or every param for .params as a whole; the DAG's env does not
// count for a task.
func TestParamsRead(t *testing.T) {
	g := mustParse(t, `
params:
  a: {type: string, default: x}
  b: {type: string, default: y}
  c: {type: string, default: z}
env:
  FROM_DAG: "{{ .params.c }}"
defaults:
  plugin: shell
tasks:
  - id: none
    with: {command: "true"}
  - id: with_and_key
    with: {command: "echo {{ .params.a }}"}
    cache: {key: "{{ .params.b }}"}
  - id: env_and_when
    env: {X: "{{ .params.b }}"}
    when: params.a == "x"
    with: {command: "true"}
  - id: whole
    with: {command: "echo {{ .params }}"}
`)
	for id, want := range map[string][]string{
		"none":         nil,
		"with_and_key": {"a", "b"},
		"env_and_when": {"a", "b"},
		"whole":        {"a", "b", "c"},
	} {
		if got := g.Task(id).ParamsRead; !slices.Equal(got, want) {
			t.Errorf("%s reads params %v, want %v", id, got, want)
		}
	}
}
