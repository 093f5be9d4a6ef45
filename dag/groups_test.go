package dag_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kilnhq/kiln/dag"
)

const groupsDAG = `
id: groups
defaults: {plugin: shell, retries: 5, queue: cpu, retry_delay: 1m, with: {command: "echo dag"}}
groups:
  load:
    tasks: [load_b, load_a]
  extract:
    description: Pull the day's sources
    defaults: {retries: 2, queue: io, with: {command: "echo group"}}
    tasks: [extract_customers, extract_orders]
tasks:
  - id: extract_orders
    retries: 0
  - id: extract_customers
    with: {command: "echo own"}
  - id: join
    depends_on: [extract, extract_orders]
  - id: load_a
    depends_on: [join]
  - id: load_b
    depends_on: [join]
  - id: report
    depends_on: [load, extract]
`

func TestGroups(t *testing.T) {
	g := mustParse(t, groupsDAG)
	want := []*dag.Group{
		{Name: "load", Tasks: []string{"load_a", "load_b"}},
		{Name: "extract", Description: "Pull the day's sources", Tasks: []string{"extract_orders", "extract_customers"}},
	}
	if diff := cmp.Diff(want, g.Groups); diff != "" {
		t.Errorf("Groups (-want +got):\n%s", diff)
	}
	if gp := g.Group("extract"); gp != g.Groups[1] {
		t.Errorf("Group(extract) = %+v, want the second group", gp)
	}
	if gp := g.Group("join"); gp != nil {
		t.Errorf("Group(join) = %+v, want nil: join is a task", gp)
	}
	type summary struct {
		Group                 string
		DependsOn, Downstream []string
	}
	got := map[string]summary{}
	for _, tk := range g.Tasks {
		got[tk.ID] = summary{tk.Group, tk.DependsOn, tk.Downstream}
	}
	wantTasks := map[string]summary{
		"extract_orders":    {"extract", nil, []string{"join", "report"}},
		"extract_customers": {"extract", nil, []string{"join", "report"}},
		// The group stands for its tasks, in the DAG's order; a task of
		// it named as well is listed once.
		"join":   {"", []string{"extract_orders", "extract_customers"}, []string{"load_a", "load_b"}},
		"load_a": {"load", []string{"join"}, []string{"report"}},
		"load_b": {"load", []string{"join"}, []string{"report"}},
		"report": {"", []string{"load_a", "load_b", "extract_orders", "extract_customers"}, nil},
	}
	if diff := cmp.Diff(wantTasks, got); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
}

// TestGroupDefaults checks that a task's own keys win over its group's
// defaults, which win over the DAG's.
func TestGroupDefaults(t *testing.T) {
	g := mustParse(t, groupsDAG)
	type keys struct {
		Retries    int
		Queue      string
		RetryDelay time.Duration
		Command    string
	}
	got := map[string]keys{}
	for _, tk := range g.Tasks {
		got[tk.ID] = keys{tk.Retries, tk.Queue, tk.RetryDelay, tk.With["command"].(*dag.Template).String()}
	}
	want := map[string]keys{
		"extract_orders":    {0, "io", time.Minute, "echo group"},
		"extract_customers": {2, "io", time.Minute, "echo own"},
		"join":              {5, "cpu", time.Minute, "echo dag"},
		"load_a":            {5, "cpu", time.Minute, "echo dag"},
		"load_b":            {5, "cpu", time.Minute, "echo dag"},
		"report":            {5, "cpu", time.Minute, "echo dag"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("keys (-want +got):\n%s", diff)
	}
}

// TestGroupUpstreamOutputs checks that a task downstream of a group may
// read the outputs and artifacts of the group's tasks.
func TestGroupUpstreamOutputs(t *testing.T) {
	g := mustParse(t, `
id: reads
groups:
  train: {tasks: [fit]}
tasks:
  - id: fit
    plugin: shell
    with: {command: "true"}
    artifacts: {model: out/model.bin}
  - id: score
    plugin: shell
    depends_on: [train]
    inputs: {model: fit.model}
    with: {command: "echo {{ .outputs.fit.auc }}"}
`)
	if got := g.Task("score").Inputs; len(got) != 1 || got[0].Task != "fit" {
		t.Errorf("score inputs = %+v, want fit's model", got)
	}
}

func TestNoGroups(t *testing.T) {
	g := mustParse(t, `
id: plain
groups: {}
tasks: [{id: a, plugin: shell, with: {command: "true"}}]
`)
	if g.Groups != nil || g.Group("a") != nil || g.Task("a").Group != "" {
		t.Errorf("Groups = %v, task a's group %q; want none", g.Groups, g.Task("a").Group)
	}
}

// TestGroupDefaultCache checks that a cache under a group's defaults,
// like one under the DAG's, passes the group's sensors by.
func TestGroupDefaultCache(t *testing.T) {
	g := mustParse(t, `
id: cached
groups:
  fetch:
    defaults: {cache: true}
    tasks: [wait, download]
tasks:
  - id: wait
    plugin: file_sensor
    with: {path: x}
  - id: download
    plugin: shell
    with: {command: "true"}
`)
	if g.Task("wait").Cache != nil || g.Task("download").Cache == nil {
		t.Errorf("caches: wait %v, download %v; want download's only", g.Task("wait").Cache, g.Task("download").Cache)
	}
}
