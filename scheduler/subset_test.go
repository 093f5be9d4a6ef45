package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/store"
)

// subsetDAG: a → b → c, a → d, and e on its own.
const subsetDAG = `
id: subset
tasks:
  - {id: a, plugin: shell, with: {command: "true"}}
  - {id: b, plugin: shell, with: {command: "true"}, depends_on: [a]}
  - {id: c, plugin: shell, with: {command: "true"}, depends_on: [b]}
  - {id: d, plugin: shell, with: {command: "true"}, depends_on: [a]}
  - {id: e, plugin: shell, with: {command: "true"}}
`

func TestUpstreamClosure(t *testing.T) {
	d, err := dag.Parse("subset.yaml", []byte(subsetDAG), dag.Options{Plugins: plugins.Builtin()})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ids  []string
		want map[string]bool
	}{
		{nil, nil},
		{[]string{"a"}, map[string]bool{"a": true}},
		{[]string{"c"}, map[string]bool{"a": true, "b": true, "c": true}},
		{[]string{"c", "d", "c"}, map[string]bool{"a": true, "b": true, "c": true, "d": true}},
		{[]string{"e", "b"}, map[string]bool{"a": true, "b": true, "e": true}},
	} {
		got, err := UpstreamClosure(d, tc.ids)
		if err != nil {
			t.Errorf("%v: %v", tc.ids, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%v: closure (-want +got):\n%s", tc.ids, diff)
		}
	}
	_, err = UpstreamClosure(d, []string{"a", "cc"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `no task "cc" (did you mean "c"?)`) {
		t.Errorf("unknown task: %v, want ErrInvalid naming it with a suggestion", err)
	}
}

func TestTriggerRestrictedToTasksRunsTheirUpstreamOnly(t *testing.T) {
	h := newHarness(t, subsetDAG)
	var r *store.Run
	var err error
	as := h.call(func() {
		r, err = h.s.Trigger(context.Background(), "subset", TriggerRequest{Tasks: []string{"b"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if taskIDs(as) != "a" {
		t.Fatalf("first assignments = %s, want a", taskIDs(as))
	}
	want := map[string]store.TaskState{"a": store.TaskQueued, "b": store.TaskNone, "c": store.TaskSkipped, "d": store.TaskSkipped, "e": store.TaskSkipped}
	if got := h.states("subset", r.RunID); !equalStates(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	next := h.run(as[0], true, nil)
	if taskIDs(next) != "b" {
		t.Fatalf("after a: %s, want b", taskIDs(next))
	}
	if next := h.run(next[0], true, nil); len(next) != 0 {
		t.Errorf("after b: %s, want nothing more", taskIDs(next))
	}
	if got := h.runState("subset", r.RunID); got != store.RunSuccess {
		t.Errorf("run = %s, want success", got)
	}

	_, err = h.s.Trigger(context.Background(), "subset", TriggerRequest{Tasks: []string{"nope"}, LogicalDate: new(t0.Add(time.Hour))})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown task: %v, want ErrInvalid", err)
	}
}

func TestPreviewRendersWithoutRunning(t *testing.T) {
	d, err := dag.Parse("pre.yaml", []byte(`
id: pre
timezone: Europe/Zurich
params: {region: {type: string, enum: [eu, us], default: eu}}
env: {TOKEN: "{{ .secrets.api_token }}", BASE: "/data/{{ .ds }}"}
tasks:
  - {id: extract, plugin: shell, with: {command: "extract --region {{ .params.region }} --out {{ .env.BASE }}"}}
  - id: train
    depends_on: [extract]
    plugin: shell
    with: {command: "train --rows {{ .outputs.extract.rows }} --auth {{ .env.TOKEN }} --try {{ .try_number }}"}
  - {id: report, plugin: shell, depends_on: [train], with: {command: "report"}}
`), dag.Options{Plugins: plugins.Builtin()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Preview(d, TriggerRequest{Params: map[string]any{"region": "mars"}}, t0)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad param: %v, want ErrInvalid", err)
	}
	ld := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	p, err := Preview(d, TriggerRequest{Params: map[string]any{"region": "us"}, LogicalDate: &ld, Tasks: []string{"train"}}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Run.RunID != "manual__2026-03-01T00:00:00Z" || p.Run.Params["region"] != "us" {
		t.Errorf("run = %s with params %v", p.Run.RunID, p.Run.Params)
	}
	if len(p.Tasks) != 2 {
		t.Fatalf("tasks = %d, want extract and train (report is not upstream of train)", len(p.Tasks))
	}
	ex, tr := p.Tasks[0], p.Tasks[1]
	if got := ex.With["command"]; got != "extract --region us --out /data/2026-03-01" {
		t.Errorf("extract command = %q", got)
	}
	wantTrain := "train --rows <unknown until extract runs: .outputs.extract.rows> --auth *** --try 1"
	if got := tr.With["command"]; got != wantTrain || tr.Err != nil {
		t.Errorf("train command = %q (%v), want %q", got, tr.Err, wantTrain)
	}
	if tr.Env["TOKEN"] != MaskedSecret {
		t.Errorf("env TOKEN = %q, want it masked", tr.Env["TOKEN"])
	}
	if diff := cmp.Diff([]dag.OutputRef{{Task: "extract", Key: "rows"}}, tr.UnknownOutputs); diff != "" {
		t.Errorf("unknown outputs (-want +got):\n%s", diff)
	}
}
