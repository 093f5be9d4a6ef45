// Package rundiff compares two runs: what each ran (the DAG version, the
// params, and per task the rendered `with`, the plugin build, the
// environment key and the upstream outputs read, from the tries'
// manifests) and what came of it (outputs written, states, durations).
// See docs/reproducibility.md#comparing-two-runs.
package rundiff

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"github.com/kilnhq/kiln/store"
)

// Ref names a run.
type Ref struct {
	DAGID      string `json:"dag_id"`
	RunID      string `json:"run_id"`
	DAGVersion string `json:"dag_version"`
}

// Diff is what differs between run A and run B. Same is true when the
// two ran the same thing: nothing that affects results differs (the DAG
// version, params, and per task what it ran); results themselves (outputs,
// states, durations) may still differ.
type Diff struct {
	A    Ref  `json:"a"`
	B    Ref  `json:"b"`
	Same bool `json:"same"`
	// Version is set when the runs ran on different DAG versions.
	Version *VersionDiff `json:"dag_version,omitempty"`
	Params  []Value      `json:"params"`
	Tasks   []Task       `json:"tasks"` // only the tasks with a difference
}

// VersionDiff is two DAG versions and a unified diff of their sources.
type VersionDiff struct {
	A    string `json:"a"`
	B    string `json:"b"`
	Diff string `json:"diff"`
}

// Value is a key whose value differs; A or B is nil where the key is
// missing on that side.
type Value struct {
	Key string `json:"key"`
	A   any    `json:"a"`
	B   any    `json:"b"`
}

// Change is a value that differs, as text.
type Change struct {
	A string `json:"a"`
	B string `json:"b"`
}

// Durations are a task's durations in seconds; nil where it has none.
type Durations struct {
	A *float64 `json:"a"`
	B *float64 `json:"b"`
}

// Task is what differs for one task. Only is "a" or "b" for a task that
// only one of the runs has. The fields before Outputs affect results;
// Outputs, State and Duration are results.
type Task struct {
	// TaskID is the task's id; TASK[i] for instance i of a mapped task.
	TaskID       string     `json:"task_id"`
	Only         string     `json:"only,omitempty"`
	With         []Value    `json:"with,omitempty"`
	Plugin       *Change    `json:"plugin,omitempty"` // name and version
	PluginSHA256 *Change    `json:"plugin_sha256,omitempty"`
	EnvKey       *Change    `json:"env_key,omitempty"`
	ImageDigest  *Change    `json:"image_digest,omitempty"` // a container's image
	OutputsRead  []Value    `json:"outputs_read,omitempty"` // keys TASK.KEY
	Outputs      []Value    `json:"outputs,omitempty"`
	State        *Change    `json:"state,omitempty"`
	Duration     *Durations `json:"duration_s,omitempty"`
}

// affects reports whether the task's differences affect results.
func (t *Task) affects() bool {
	return t.Only != "" || len(t.With) > 0 || t.Plugin != nil || t.PluginSHA256 != nil || t.EnvKey != nil || t.ImageDigest != nil || len(t.OutputsRead) > 0
}

// ErrNotFound wraps a run that does not exist.
var ErrNotFound = errors.New("not found")

// side is one run as read from the store.
type side struct {
	run   *store.Run
	order []string                       // instance keys, in the stored order
	tis   map[string]*store.TaskInstance // by instance key
	tries map[string]*store.Try          // each task's latest try
}

func read(st *store.Store, dagID, runID string) (*side, error) {
	r, err := st.GetRun(dagID, runID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("run %s of DAG %s: %w", runID, dagID, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	tis, err := st.TaskInstances(dagID, runID)
	if err != nil {
		return nil, err
	}
	s := &side{run: r, tis: map[string]*store.TaskInstance{}, tries: map[string]*store.Try{}}
	for _, ti := range tis {
		// An instance of a mapped task is compared on its own, by its
		// instance key (TASK[i]).
		k := ti.Key()
		s.order = append(s.order, k)
		s.tis[k] = ti
		if ti.TryNumber < 1 {
			continue
		}
		tr, err := st.GetTry(dagID, runID, k, ti.TryNumber)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		if tr != nil {
			s.tries[k] = tr
		}
	}
	return s, nil
}

// Compute compares run (dagA, runA) with run (dagB, runB).
func Compute(st *store.Store, dagA, runA, dagB, runB string) (*Diff, error) {
	a, err := read(st, dagA, runA)
	if err != nil {
		return nil, err
	}
	b, err := read(st, dagB, runB)
	if err != nil {
		return nil, err
	}
	d := &Diff{
		A:      Ref{DAGID: dagA, RunID: runA, DAGVersion: a.run.DAGHash},
		B:      Ref{DAGID: dagB, RunID: runB, DAGVersion: b.run.DAGHash},
		Params: values(a.run.Params, b.run.Params),
	}
	if a.run.DAGHash != b.run.DAGHash {
		vd := &VersionDiff{A: a.run.DAGHash, B: b.run.DAGHash}
		srcA, errA := source(st, a.run.DAGHash)
		srcB, errB := source(st, b.run.DAGHash)
		if errA == nil && errB == nil {
			vd.Diff = udiff.Unified(short(a.run.DAGHash), short(b.run.DAGHash), srcA, srcB)
		}
		d.Version = vd
	}
	ids := slices.Clone(a.order)
	for _, id := range b.order {
		if a.tis[id] == nil {
			ids = append(ids, id)
		}
	}
	for _, id := range ids {
		if t := compareTask(id, a, b); t != nil {
			d.Tasks = append(d.Tasks, *t)
		}
	}
	d.Same = d.Version == nil && len(d.Params) == 0 && !slices.ContainsFunc(d.Tasks, func(t Task) bool { return t.affects() })
	return d, nil
}

func source(st *store.Store, hash string) (string, error) {
	if hash == "" {
		return "", store.ErrNotFound
	}
	src, err := st.DAGSource(hash)
	return string(src), err
}

func short(h string) string { return h[:min(len(h), 12)] }

func compareTask(id string, a, b *side) *Task {
	t := &Task{TaskID: id}
	tiA, tiB := a.tis[id], b.tis[id]
	switch {
	case tiB == nil:
		t.Only = "a"
		return t
	case tiA == nil:
		t.Only = "b"
		return t
	}
	mA, mB := manifest(a.tries[id]), manifest(b.tries[id])
	if mA != nil && mB != nil {
		t.With = values(mA.With, mB.With)
		t.Plugin = change(pluginName(mA.Plugin), pluginName(mB.Plugin))
		t.PluginSHA256 = change(mA.Plugin.SHA256, mB.Plugin.SHA256)
		t.EnvKey = change(mA.Plugin.Facts["env_key"], mB.Plugin.Facts["env_key"])
		t.ImageDigest = change(mA.Plugin.Facts["image_digest"], mB.Plugin.Facts["image_digest"])
		t.OutputsRead = values(flatten(mA.OutputsRead), flatten(mB.OutputsRead))
	}
	t.Outputs = values(tiA.Outputs, tiB.Outputs)
	t.State = change(string(tiA.State), string(tiB.State))
	if dA, dB := duration(tiA), duration(tiB); !closeDurations(dA, dB) {
		t.Duration = &Durations{A: dA, B: dB}
	}
	if !t.affects() && t.Outputs == nil && t.State == nil && t.Duration == nil {
		return nil
	}
	return t
}

func manifest(tr *store.Try) *store.Manifest {
	if tr == nil {
		return nil
	}
	return tr.Manifest
}

func pluginName(p store.PluginRecord) string {
	if p.Version == "" {
		return p.Name
	}
	return p.Name + " " + p.Version
}

func change(a, b string) *Change {
	if a == b {
		return nil
	}
	return &Change{A: a, B: b}
}

func duration(ti *store.TaskInstance) *float64 {
	if ti.StartDate == nil || ti.EndDate == nil {
		return nil
	}
	s := ti.EndDate.Sub(*ti.StartDate).Seconds()
	return &s
}

// closeDurations reports whether two durations are within a second of
// each other: closer ones are the noise of any two runs.
func closeDurations(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return math.Abs(*a-*b) < 1
}

// flatten turns task → key → value into "task.key" → value.
func flatten(m map[string]map[string]any) map[string]any {
	out := map[string]any{}
	for task, kv := range m {
		for k, v := range kv {
			out[task+"."+k] = v
		}
	}
	return out
}

// values lists the keys whose values differ between a and b, sorted.
func values(a, b map[string]any) []Value {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var out []Value
	for _, k := range keys {
		va, okA := a[k]
		vb, okB := b[k]
		if okA && okB && same(va, vb) {
			continue
		}
		out = append(out, Value{Key: k, A: va, B: vb})
	}
	return out
}

// same compares two JSON values as JSON: 1 and 1.0 are the same.
func same(a, b any) bool {
	if reflect.DeepEqual(a, b) {
		return true
	}
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

// Text writes the diff for people, in the order of docs/cli.md#kiln-runs-diff.
func (d *Diff) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "a: run %s of %s (version %s)\nb: run %s of %s (version %s)\n",
		d.A.RunID, d.A.DAGID, short(d.A.DAGVersion), d.B.RunID, d.B.DAGID, short(d.B.DAGVersion))
	if d.Version != nil {
		fmt.Fprintf(&b, "\nDAG version: %s → %s\n", short(d.Version.A), short(d.Version.B))
		if d.Version.Diff != "" {
			b.WriteString(indent(d.Version.Diff))
		}
	}
	if len(d.Params) > 0 {
		b.WriteString("\nparams:\n")
		writeValues(&b, d.Params)
	}
	for _, t := range d.Tasks {
		fmt.Fprintf(&b, "\ntask %s:\n", t.TaskID)
		switch t.Only {
		case "a":
			b.WriteString("  only in a\n")
			continue
		case "b":
			b.WriteString("  only in b\n")
			continue
		}
		if len(t.With) > 0 {
			b.WriteString("  with:\n")
			writeValues(&b, t.With)
		}
		writeChange(&b, "plugin", t.Plugin)
		writeChange(&b, "plugin sha256", t.PluginSHA256)
		writeChange(&b, "environment key", t.EnvKey)
		writeChange(&b, "image digest", t.ImageDigest)
		if len(t.OutputsRead) > 0 {
			b.WriteString("  upstream outputs read:\n")
			writeValues(&b, t.OutputsRead)
		}
		if len(t.Outputs) > 0 {
			b.WriteString("  outputs written:\n")
			writeValues(&b, t.Outputs)
		}
		writeChange(&b, "state", t.State)
		if t.Duration != nil {
			fmt.Fprintf(&b, "  duration: %s → %s\n", Seconds(t.Duration.A), Seconds(t.Duration.B))
		}
	}
	if d.Same {
		b.WriteString("\nthe two runs ran the same thing\n")
	}
	return b.String()
}

func writeValues(b *strings.Builder, vs []Value) {
	for _, v := range vs {
		fmt.Fprintf(b, "    %s: %s → %s\n", v.Key, ValueText(v.A), ValueText(v.B))
	}
}

func writeChange(b *strings.Builder, name string, c *Change) {
	if c != nil {
		fmt.Fprintf(b, "  %s: %s → %s\n", name, orNone(c.A), orNone(c.B))
	}
}

// ValueText is v as JSON for people: without HTML escapes ("a > b" stays
// so), and "(none)" for a missing value.
func ValueText(v any) string {
	if v == nil {
		return "(none)"
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// Seconds is a duration in seconds for people, "(none)" when missing.
func Seconds(s *float64) string {
	if s == nil {
		return "(none)"
	}
	return fmt.Sprintf("%.3fs", *s)
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		b.WriteString("  " + line)
	}
	return b.String()
}
