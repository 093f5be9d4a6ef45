package dag_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
)

// TestArtifactsAndInputs: artifacts keep their cleaned paths, inputs are
// sorted by name and may come from any task upstream, directly or not,
// and templates see an input as the placeholder the scheduler gives it
// (docs/dag-format.md#artifacts-and-inputs).
func TestArtifactsAndInputs(t *testing.T) {
	g := mustParse(t, `
defaults:
  plugin: shell
  with: {command: "true"}
  artifacts: {log: logs/run.log}
tasks:
  - id: features
    artifacts: {table: ./out//features.parquet, stats: reports/, log: logs/run.log}
  - id: train
    depends_on: [features]
    artifacts: {model: out/model.pkl}
    inputs: {table: features.table}
  - id: report
    depends_on: [train]
    inputs: {stats: features.stats, model: train.model, Features_log: features.log}
    with: {command: 'report --model "{{ .inputs.model }}"{{ range $k, $v := .inputs }} {{ $k }}{{ end }}'}
    env: {STATS: "{{ .inputs.stats }}"}
`)
	wantArtifacts := map[string]map[string]string{
		"features": {"table": "out/features.parquet", "stats": "reports", "log": "logs/run.log"},
		"train":    {"model": "out/model.pkl"}, // its own mapping replaces the default
		"report":   {"log": "logs/run.log"},
	}
	wantInputs := map[string][]dag.InputRef{
		"features": nil,
		"train":    {{Name: "table", Task: "features", Artifact: "table"}},
		"report": {
			{Name: "Features_log", Task: "features", Artifact: "log"},
			{Name: "model", Task: "train", Artifact: "model"},
			{Name: "stats", Task: "features", Artifact: "stats"},
		},
	}
	for _, tk := range g.Tasks {
		if diff := cmp.Diff(wantArtifacts[tk.ID], tk.Artifacts); diff != "" {
			t.Errorf("task %s artifacts (-want +got):\n%s", tk.ID, diff)
		}
		if diff := cmp.Diff(wantInputs[tk.ID], tk.Inputs); diff != "" {
			t.Errorf("task %s inputs (-want +got):\n%s", tk.ID, diff)
		}
		if tk.Reads != nil {
			t.Errorf("task %s reads %v: inputs are not outputs", tk.ID, tk.Reads)
		}
	}

	report := g.Task("report")
	v := dag.Values{Inputs: map[string]string{}}
	for _, in := range report.Inputs {
		v.Inputs[in.Name] = wire.InputPlaceholder(in.Name)
	}
	got, err := dag.RenderValue(report.With, v.Data(time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"command": `report --model "${KILN_INPUT_MODEL}" Features_log model stats`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rendered with (-want +got):\n%s", diff)
	}
	if env, err := report.Env[0].Value.Render(v.Data(time.UTC)); err != nil || env != "${KILN_INPUT_STATS}" {
		t.Errorf("env STATS = %q, %v; want ${KILN_INPUT_STATS}", env, err)
	}
}

// TestInputNamesCollideAsTheirVariables: two inputs of a task are refused
// exactly when the worker would give them one environment variable.
func TestInputNamesCollideAsTheirVariables(t *testing.T) {
	for _, names := range [][2]string{{"model", "Model"}, {"model", "MODEL"}, {"model", "model_"}, {"a_b", "A_B"}, {"a", "b"}} {
		src := fmt.Sprintf(`
tasks:
  - {id: up, plugin: shell, with: {command: "true"}, artifacts: {f: f}}
  - {id: down, plugin: shell, with: {command: "true"}, depends_on: [up], inputs: {%s: up.f, %s: up.f}}
`, names[0], names[1])
		_, err := dag.Parse("test.yaml", []byte(src), builtin)
		collide := wire.InputEnv(names[0]) == wire.InputEnv(names[1])
		if (err != nil) != collide {
			t.Errorf("inputs %s and %s: err = %v; the worker's variables are %s and %s", names[0], names[1], err,
				wire.InputEnv(names[0]), wire.InputEnv(names[1]))
		}
	}
}
