package dag_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kilnhq/kiln/dag"
)

func mustParse(t *testing.T, src string) *dag.DAG {
	t.Helper()
	g, err := dag.Parse("test.yaml", []byte(src), builtin)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return g
}

func TestLoadExampleNormalised(t *testing.T) {
	g, err := dag.LoadFile("../examples/dags/ml_pipeline.yaml", builtin)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != "ml_pipeline" || g.Location.String() != "Europe/Zurich" || g.Schedule != "0 3 * * *" || g.MaxActiveRuns != 1 {
		t.Errorf("DAG header = %q %v %q %d", g.ID, g.Location, g.Schedule, g.MaxActiveRuns)
	}
	if want := time.Date(2026, 11, 1, 0, 0, 0, 0, g.Location); !g.StartDate.Equal(want) {
		t.Errorf("StartDate = %v, want %v", g.StartDate, want)
	}
	if len(g.Hash) != 64 {
		t.Errorf("Hash = %q, want hex SHA-256", g.Hash)
	}
	type summary struct {
		ID, Plugin, Queue, Pool  string
		Retries, Priority, Slots int
		RetryDelay, Timeout      time.Duration
		DependsOn, Downstream    []string
		Rule                     dag.TriggerRule
		When                     string
	}
	var got []summary
	for _, tk := range g.Tasks {
		s := summary{tk.ID, tk.Plugin, tk.Queue, tk.Pool, tk.Retries, tk.Priority, tk.PoolSlots,
			tk.RetryDelay, tk.Timeout, tk.DependsOn, tk.Downstream, tk.TriggerRule, ""}
		if tk.When != nil {
			s.When = tk.When.String()
		}
		got = append(got, s)
	}
	want := []summary{
		{"extract", "shell", "default", "default_pool", 2, 1, 1, 10 * time.Second, 10 * time.Minute, nil, []string{"features"}, dag.AllSuccess, ""},
		{"features", "shell", "default", "default_pool", 2, 1, 1, 10 * time.Second, 10 * time.Minute, []string{"extract"}, []string{"train"}, dag.AllSuccess, ""},
		{"train", "shell", "default", "default_pool", 2, 1, 1, 10 * time.Second, 10 * time.Minute, []string{"features"}, []string{"evaluate"}, dag.AllSuccess, ""},
		{"evaluate", "shell", "default", "default_pool", 2, 1, 1, 10 * time.Second, 10 * time.Minute, []string{"train"}, nil, dag.AllSuccess, "params.min_accuracy > 0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	if p := g.Param("region"); p == nil || p.Default != "eu" || len(p.Enum) != 2 {
		t.Errorf("param region = %+v", p)
	}
}

func TestDefaultsAndOverrides(t *testing.T) {
	g := mustParse(t, `
id: d
defaults: {plugin: shell, retries: 3, queue: gpu, with: {command: "echo default"}}
tasks:
  - id: a
  - id: b
    retries: 0
    with: {command: "echo own"}
`)
	a, b := g.Task("a"), g.Task("b")
	if a.Retries != 3 || a.Queue != "gpu" || a.With["command"].(*dag.Template).String() != "echo default" {
		t.Errorf("a = retries %d queue %q with %v; want the defaults", a.Retries, a.Queue, a.With)
	}
	if b.Retries != 0 || b.Queue != "gpu" || b.With["command"].(*dag.Template).String() != "echo own" {
		t.Errorf("b = retries %d queue %q with %v; want own retries and with", b.Retries, b.Queue, b.With)
	}
}

func TestIDFromFileName(t *testing.T) {
	g, err := dag.Parse("dags/team/nightly_report.yml", []byte("tasks: [{id: a, plugin: shell, with: {command: 'true'}}]"), builtin)
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != "nightly_report" {
		t.Errorf("ID = %q, want nightly_report", g.ID)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	g := mustParse(t, `
id: anchors
x-common: &common {plugin: shell, retries: 4}
tasks:
  - <<: *common
    id: a
    with: {command: "true"}
`)
	if g.Task("a").Retries != 4 {
		t.Errorf("retries = %d, want 4 from the merged anchor", g.Task("a").Retries)
	}
}

func TestRender(t *testing.T) {
	g := mustParse(t, `
id: render
timezone: America/New_York
params:
  region: {type: string, default: eu}
env: {BASE: "/data/{{ .ds_nodash }}"}
tasks:
  - id: extract
    plugin: shell
    with: {command: "echo"}
  - id: train
    depends_on: [extract]
    plugin: shell
    with:
      command: "train --date {{ .ds }} --region {{ .params.region }} --rows {{ .outputs.extract.rows }} --try {{ .try_number }}"
      env: {TS: "{{ .ts }}", RETRIES: 3}
    when: params.region == "eu" && int(outputs.extract.rows) > 10
`)
	train := g.Task("train")
	// 03:30 UTC on 2026-07-01 is still June 30 in New York.
	v := dag.Values{DAGID: "render", TaskID: "train", RunID: "manual__x", TryNumber: 2,
		LogicalDate: time.Date(2026, 7, 1, 3, 30, 0, 0, time.UTC),
		Params:      map[string]any{"region": "eu"},
		Outputs:     map[string]any{"extract": map[string]any{"rows": "42"}}}
	got, err := dag.RenderValue(train.With, v.Data(g.Location))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"command": "train --date 2026-06-30 --region eu --rows 42 --try 2",
		"env":     map[string]any{"TS": "2026-06-30T23:30:00-04:00", "RETRIES": int64(3)},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rendered with (-want +got):\n%s", diff)
	}
	if env, err := g.Env[0].Value.Render(v.Data(g.Location)); err != nil || env != "/data/20260630" {
		t.Errorf("env BASE = %q, %v", env, err)
	}
	ok, err := train.When.Eval(v, g.Location)
	if err != nil || !ok {
		t.Errorf("when = %v, %v; want true", ok, err)
	}
	v.Outputs = map[string]any{"extract": map[string]any{"path": "/x", "n": "1"}}
	_, err = dag.RenderValue(train.With, v.Data(g.Location))
	if want := `.outputs.extract.rows: task "extract" wrote no output "rows"; it wrote "n", "path"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("render with a missing output: err = %v, want it to say %s", err, want)
	}
	v.Outputs = nil
	_, err = dag.RenderValue(train.With, v.Data(g.Location))
	if want := `task "extract" wrote no outputs`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("render without the task's outputs: err = %v, want it to say %s", err, want)
	}
	if _, err := train.When.Eval(v, g.Location); err == nil {
		t.Error("when over a missing output: want an error")
	}
}

func TestParams(t *testing.T) {
	g := mustParse(t, `
id: params
params:
  frac: {type: number, default: 1.0, minimum: 0, maximum: 1}
  n: {type: integer, default: 3, minimum: 1}
  region: {type: string, enum: [eu, us], default: eu}
  dry: {type: boolean, default: false}
  cols: {type: array, default: [a]}
  opts: {type: object, default: {}}
  needed: {type: string}
tasks: [{id: a, plugin: shell, with: {command: "true"}}]
`)
	tests := []struct {
		args    []string
		want    map[string]any
		wantErr string
	}{
		{args: []string{"needed=x"}, want: map[string]any{"frac": 1.0, "n": int64(3), "region": "eu", "dry": false, "cols": []any{"a"}, "opts": map[string]any{}, "needed": "x"}},
		{args: []string{"needed=x", "frac=0.5", "n=7", "region=us", "dry=true", `cols=["x","y"]`, `opts={"k":1}`},
			want: map[string]any{"frac": 0.5, "n": int64(7), "region": "us", "dry": true, "cols": []any{"x", "y"}, "opts": map[string]any{"k": jsonNumber("1")}, "needed": "x"}},
		{args: []string{"frac=abc"}, wantErr: `--param frac: "abc" is not a number`},
		{args: []string{"n=2.5"}, wantErr: `--param n: "2.5" is not an integer`},
		{args: []string{"dry=maybe"}, wantErr: `--param dry: "maybe" is not a boolean`},
		{args: []string{"cols=[oops"}, wantErr: `--param cols: "[oops" is not valid JSON`},
		{args: []string{"nope=1"}, wantErr: `--param nope: unknown param`},
		{args: []string{"region"}, wantErr: `want NAME=VALUE`},
		{args: []string{"needed=x", "frac=1.5"}, wantErr: "param frac: maximum: got 1.5, want 1"},
		{args: []string{"needed=x", "region=asia"}, wantErr: "param region: value must be one of 'eu', 'us'"},
		{args: []string{"frac=0.5"}, wantErr: "param needed is required"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			given, err := g.ParseParamArgs(tt.args)
			var got map[string]any
			if err == nil {
				got, err = g.ResolveParams(given)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := g.ResolveParams(map[string]any{"needed": "x", "bogus": 1}); err == nil || !strings.Contains(err.Error(), `unknown param "bogus"`) {
		t.Errorf("ResolveParams with an unknown name: err = %v", err)
	}
}

func jsonNumber(s string) any { return json.Number(s) }

// Template times print as RFC 3339, one shell word, and keep Go's time
// methods (docs/dag-format.md#template-values).
func TestRenderTimes(t *testing.T) {
	g := mustParse(t, `
id: times
timezone: Europe/Berlin
tasks:
  - id: a
    plugin: shell
    with:
      command: "x {{ .logical_date }} {{ .data_interval_start }} {{ .data_interval_end }} {{ .logical_date.UTC }} {{ .data_interval_end.Format \"2006-01-02\" }} {{ .logical_date.Unix }}"
`)
	v := dag.Values{
		LogicalDate:       time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC),
		DataIntervalStart: time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC),
		DataIntervalEnd:   time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC),
	}
	got, err := g.Task("a").With["command"].(*dag.Template).Render(v.Data(g.Location))
	if err != nil {
		t.Fatal(err)
	}
	want := "x 2026-03-01T03:00:00+01:00 2026-03-01T03:00:00+01:00 2026-03-02T03:00:00+01:00 2026-03-01T02:00:00Z 2026-03-02 1772330400"
	if got != want {
		t.Errorf("rendered\n %q\nwant\n %q", got, want)
	}
}
