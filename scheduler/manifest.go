package scheduler

import (
	"maps"
	"slices"
	"strconv"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/buildinfo"
	"github.com/kilnhq/kiln/internal/secrets"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// manifest is the scheduler's part of a try's manifest
// (docs/reproducibility.md#what-each-try-records): what it rendered for the
// assignment a, from the values v the templates saw. Secret values in the
// rendered `with` are masked; the worker adds its part when the try ends
// (applyRuntime).
func (s *Scheduler) manifest(ar *activeRun, t *dag.Task, v dag.Values, a *wire.Assignment) *store.Manifest {
	m := &store.Manifest{
		DAGVersion:  ar.run.DAGHash,
		KilnVersion: buildinfo.Get().Version,
		With:        a.With,
		Env:         envNames(ar.dag, t),
		Params:      ar.run.Params,
		OutputsRead: outputsRead(t.Reads, v.Outputs, t.ID),
		Plugin:      store.PluginRecord{Name: t.Plugin},
	}
	for _, in := range a.Inputs {
		if m.Inputs == nil {
			m.Inputs = make(map[string]string, len(a.Inputs))
		}
		m.Inputs[in.Name] = in.Artifact.SHA256
	}
	if mask := secrets.NewMask(a.Mask); mask != nil {
		m.With, _ = mask.Value(a.With).(map[string]any)
	}
	if v.Mapped {
		m.Map = &store.MapRecord{Expr: t.Map.String(), Index: v.MapIndex, Item: v.Item}
	}
	if t.When != nil {
		// A task whose `when` was false is skipped and has no try.
		m.When = &store.WhenResult{Expr: t.When.String(), Result: true}
	}
	return m
}

// applyRuntime adds the worker's report of how it ran a try to the try's
// manifest.
func applyRuntime(tr *store.Try, worker string, rt *wire.Runtime) {
	if tr.Manifest == nil || rt == nil {
		return
	}
	tr.Manifest.Worker = &store.WorkerRecord{ID: worker, Host: rt.Host, KilnVersion: rt.KilnVersion}
	tr.Manifest.Plugin.Version = rt.PluginVersion
	tr.Manifest.Plugin.SHA256 = rt.PluginSHA256
	tr.Manifest.Plugin.Facts = rt.Facts
}

// envNames are the names of the DAG's and the task's env, sorted.
func envNames(d *dag.DAG, t *dag.Task) []string {
	names := make([]string, 0, len(d.Env)+len(t.Env))
	for _, vars := range [][]dag.EnvVar{d.Env, t.Env} {
		for _, e := range vars {
			names = append(names, e.Name)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// outputsRead picks the upstream outputs a task's reads name from what the
// run's tasks wrote. Of a mapped task, a key read is the list of its
// instances' values, and the whole is each instance's outputs by its
// index ("0", "1", …).
func outputsRead(reads []dag.OutputRef, outputs map[string]any, self string) map[string]map[string]any {
	got := map[string]map[string]any{}
	pick := func(task, key string) {
		out, ok := outputs[task]
		if !ok || task == self {
			return
		}
		if got[task] == nil {
			got[task] = map[string]any{}
		}
		switch out := out.(type) {
		case map[string]any:
			if key == "" {
				maps.Copy(got[task], out)
			} else if val, ok := out[key]; ok {
				got[task][key] = val
			}
		case []any:
			vals := make([]any, len(out))
			for i, o := range out {
				m, _ := o.(map[string]any)
				if key == "" {
					got[task][strconv.Itoa(i)] = m
				} else {
					vals[i] = m[key]
				}
			}
			if key != "" {
				got[task][key] = vals
			}
		}
	}
	for _, r := range reads {
		if r.Task != "" {
			pick(r.Task, r.Key)
			continue
		}
		for task := range outputs {
			pick(task, "")
		}
	}
	return got
}
