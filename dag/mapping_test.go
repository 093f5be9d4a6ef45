package dag_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kilnhq/kiln/dag"
)

const mappedDAG = `
id: mapped
max_map_length: 100
params:
  regions: {default: [eu, us]}
defaults: {plugin: shell, with: {command: "true"}}
groups:
  per_file:
    map: outputs.list.files
    max_map_length: 7
    tasks: [fetch, parse]
tasks:
  - id: list
  - id: square
    map: params.regions
    max_map_length: 3
    depends_on: [list]
    with: {command: "echo {{ .item }} {{ .map_index }} {{ .params.regions }}"}
  - id: literal
    map: "[1, 2, 3]"
  - id: fetch
    depends_on: [list]
    with: {command: "fetch {{ .item }}"}
  - id: parse
    depends_on: [fetch]
    with: {command: "parse {{ .outputs.fetch.path }} {{ .map_index }}"}
  - id: sum
    depends_on: [square, per_file]
    with: {command: "echo {{ json .outputs.square }}"}
`

func parseMapped(t *testing.T) *dag.DAG { return mustParse(t, mappedDAG) }

func TestMappedDAG(t *testing.T) {
	d := parseMapped(t)
	type mapping struct {
		Src    string
		Max    int
		Group  string
		Mapped bool
	}
	got := map[string]mapping{}
	for _, task := range d.Tasks {
		m := mapping{Mapped: task.Map != nil, Group: task.MapGroup}
		if task.Map != nil {
			m.Src, m.Max = task.Map.String(), task.Map.MaxLength
		}
		got[task.ID] = m
	}
	want := map[string]mapping{
		"list":    {},
		"square":  {Src: "params.regions", Max: 3, Mapped: true},
		"literal": {Src: "[1, 2, 3]", Max: 100, Mapped: true},
		"fetch":   {Src: "outputs.list.files", Max: 7, Group: "per_file", Mapped: true},
		"parse":   {Src: "outputs.list.files", Max: 7, Group: "per_file", Mapped: true},
		"sum":     {},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mappings (-want +got):\n%s", diff)
	}
	if g := d.Group("per_file"); g.Map == nil || g.Map != d.Task("fetch").Map {
		t.Errorf("group per_file's map = %v, want the one its tasks share", g.Map)
	}
	if dm := mustParse(t, "id: x\ntasks: [{id: a, plugin: shell, with: {command: 'true'}, map: '[1]'}]"); dm.Task("a").Map.MaxLength != dag.DefaultMaxMapLength {
		t.Errorf("default max_map_length = %d, want %d", dm.Task("a").Map.MaxLength, dag.DefaultMaxMapLength)
	}
}

func TestMappingEval(t *testing.T) {
	d := parseMapped(t)
	eval := func(task string, v dag.Values) ([]any, error) {
		return d.Task(task).Map.Eval(v, time.UTC)
	}
	if got, err := eval("square", dag.Values{Params: map[string]any{"regions": []any{"eu", "us", "ap"}}}); err != nil || !cmp.Equal(got, []any{"eu", "us", "ap"}) {
		t.Errorf("square over params = %v, %v", got, err)
	}
	if _, err := eval("square", dag.Values{Params: map[string]any{"regions": []any{"eu", "us", "ap", "sa"}}}); err == nil ||
		!strings.Contains(err.Error(), "yielded 4 items, more than max_map_length 3") {
		t.Errorf("4 items over a max of 3: err = %v", err)
	}
	if got, err := eval("literal", dag.Values{}); err != nil || !cmp.Equal(got, []any{1, 2, 3}) {
		t.Errorf("literal = %#v, %v", got, err)
	}
	// An output written as KEY=VALUE is a string: a JSON array in it is a list.
	files := dag.Values{Outputs: map[string]any{"list": map[string]any{"files": `["a.csv", "b.csv"]`}}}
	if got, err := eval("fetch", files); err != nil || !cmp.Equal(got, []any{"a.csv", "b.csv"}) {
		t.Errorf("files from a JSON string = %v, %v", got, err)
	}
	for _, tc := range []struct {
		files any
		want  string
	}{
		{"a.csv", `yielded the string "a.csv", not a list`},
		{"[a.csv", "not a JSON array"},
		{3.0, "yielded float64, not a list"},
		{nil, "yielded null"},
	} {
		v := dag.Values{Outputs: map[string]any{"list": map[string]any{"files": tc.files}}}
		if _, err := eval("fetch", v); err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `map "outputs.list.files"`) {
			t.Errorf("files = %#v: err = %v, want it to name the expression and say %q", tc.files, err, tc.want)
		}
	}
}

func TestRenderMapped(t *testing.T) {
	d := parseMapped(t)
	v := dag.Values{Mapped: true, Item: "eu", MapIndex: 0, Params: map[string]any{"regions": []any{"eu"}}, Env: map[string]string{}}
	got, err := dag.RenderValue(d.Task("square").With, v.Data(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if cmd := got.(map[string]any)["command"]; cmd != "echo eu 0 [eu]" {
		t.Errorf("command = %q", cmd)
	}
	v = dag.Values{Outputs: map[string]any{"square": []any{map[string]any{"n": "1"}, map[string]any{"n": "4"}}}, Env: map[string]string{}}
	got, err = dag.RenderValue(d.Task("sum").With, v.Data(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if cmd := got.(map[string]any)["command"]; cmd != `echo [{"n":"1"},{"n":"4"}]` {
		t.Errorf("command = %q", cmd)
	}
}
