package scheduler

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins"
	"github.com/kilnhq/kiln/store"
)

const manifestDAG = `
id: m
params: {region: {type: string, default: eu}}
env: {REGION: "{{ .params.region }}"}
tasks:
  - {id: extract, plugin: shell, with: {command: "echo rows=3 >> $KILN_OUTPUT"}}
  - id: load
    plugin: shell
    depends_on: [extract]
    when: int(outputs.extract.rows) > 0
    env: {TOKEN: "{{ .secrets.api_token }}"}
    with: {command: "load --rows {{ .outputs.extract.rows }} --token {{ .env.TOKEN }} --region {{ .params.region }}"}
`

// TestManifestOfATry: the scheduler records what it rendered for a try
// (with secret values masked, env names only, the when result, the DAG
// version, params and the outputs read), and the worker's report of how
// it ran the try completes it.
func TestManifestOfATry(t *testing.T) {
	const secret = "s3cr3t-token-value"
	t.Setenv("KILN_SECRET_api_token", secret)
	h := newHarness(t, manifestDAG)
	r, as := h.trigger("m", map[string]any{"region": "us"})
	as = h.run(as[0], true, map[string]any{"rows": "3", "other": "x"})
	if len(as) != 1 || as[0].TaskID != "load" {
		t.Fatalf("assignments after extract: %v", as)
	}
	h.event(as[0], wire.EventStarted, true, nil)
	ev := wire.Event{TryKey: as[0].TryKey, Kind: wire.EventFinished, Time: h.clock.Now(), Success: true,
		Runtime: &wire.Runtime{Host: "box", KilnVersion: "v9", PluginVersion: "0.1.0", PluginSHA256: "abc", Facts: map[string]string{"k": "v"}}}
	h.turn(func() { h.s.applyEvent(eventMsg{ev: ev, worker: "w1"}) })

	tr, err := h.s.cfg.Store.GetTry("m", r.RunID, "load", 1)
	if err != nil {
		t.Fatal(err)
	}
	want := &store.Manifest{
		DAGVersion:  r.DAGHash,
		KilnVersion: buildinfo.Get().Version,
		With:        map[string]any{"command": "load --rows 3 --token *** --region us"},
		Env:         []string{"REGION", "TOKEN"},
		When:        &store.WhenResult{Expr: "int(outputs.extract.rows) > 0", Result: true},
		Params:      map[string]any{"region": "us"},
		OutputsRead: map[string]map[string]any{"extract": {"rows": "3"}},
		Plugin:      store.PluginRecord{Name: "shell", Version: "0.1.0", SHA256: "abc", Facts: map[string]string{"k": "v"}},
		Worker:      &store.WorkerRecord{ID: "w1", Host: "box", KilnVersion: "v9"},
	}
	if diff := cmp.Diff(want, tr.Manifest); diff != "" {
		t.Errorf("manifest (-want +got):\n%s", diff)
	}
	if r.DAGHash == "" {
		t.Error("the run has no DAG version")
	}
	b, _ := json.Marshal(tr)
	if strings.Contains(string(b), secret) {
		t.Errorf("the stored try holds the secret: %s", b)
	}
}

// BenchmarkManifest measures what the manifest adds to a try at the
// scheduler, for a typical shell task: building it and encoding it with
// the try. It reports the bytes the manifest adds to the stored try.
func BenchmarkManifest(b *testing.B) {
	d, err := dag.Parse("m.yaml", []byte(`
id: etl
params: {region: {type: string, default: eu}, sample_frac: {type: number, default: 1.0}}
env: {PYTHONHASHSEED: "0"}
tasks:
  - {id: extract, plugin: shell, with: {command: "python -m src.data.load --date {{ .ds }} --out data/raw/{{ .ds }}.parquet"}}
  - id: train
    plugin: shell
    depends_on: [extract]
    env: {MODEL_DIR: "models/{{ .ds_nodash }}"}
    with: {command: "python -m src.models.train --frac {{ .params.sample_frac }} --rows {{ .outputs.extract.rows }}"}
`), dag.Options{Plugins: plugins.Builtin()})
	if err != nil {
		b.Fatal(err)
	}
	s := newScheduler(Config{})
	run := &store.Run{DAGID: "etl", RunID: "manual__2026-03-01T00:00:00Z", DAGHash: strings.Repeat("ab", 32),
		LogicalDate: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Params: map[string]any{"region": "eu", "sample_frac": 1.0}}
	ar := &activeRun{run: run, dag: d, tis: map[string]*store.TaskInstance{
		"extract": {MapIndex: store.NoMapIndex, TaskID: "extract", State: store.TaskSuccess, Outputs: map[string]any{"rows": "1200"}},
		"train":   {MapIndex: store.NoMapIndex, DAGID: "etl", RunID: run.RunID, TaskID: "train", TryNumber: 1, Queue: "default"},
	}}
	task := d.Task("train")
	a, v, err := s.render(ar, task, ar.tis["train"], run.LogicalDate)
	if err != nil {
		b.Fatal(err)
	}
	tr := &store.Try{MapIndex: store.NoMapIndex, DAGID: "etl", RunID: run.RunID, TaskID: "train", Number: 1, State: store.TaskSuccess, Worker: "w1"}
	without, _ := json.Marshal(tr)
	rt := &wire.Runtime{Host: "worker-host-1", KilnVersion: "v1.4.0", PluginVersion: "0.1.0", PluginSHA256: strings.Repeat("cd", 32)}
	b.ResetTimer()
	for b.Loop() {
		tr.Manifest = s.manifest(ar, task, v, a)
		applyRuntime(tr, "w1", rt)
		if _, err := json.Marshal(tr); err != nil {
			b.Fatal(err)
		}
	}
	with, _ := json.Marshal(tr)
	b.ReportMetric(float64(len(with)-len(without)), "manifest-bytes")
	b.ReportMetric(float64(len(with)), "try-bytes")
}
