package scheduler

import (
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// RunPreview is the manual run a TriggerRequest would create, with the
// with and env of each of its tasks rendered as its first try would see
// them, without running anything: the dry run of `kiln dags test`
// (docs/cli.md#kiln-dags-test).
type RunPreview struct {
	// Run is the run as it would be created (queued, not stored).
	Run store.Run
	// Tasks are the tasks the run would run, in the file's order.
	Tasks []TaskPreview
}

// TaskPreview is one task of a RunPreview.
type TaskPreview struct {
	Task *dag.Task
	// With and Env are the task's with and its env (the DAG's, then its
	// own) rendered; secrets read as MaskedSecret.
	With map[string]any
	Env  map[string]string
	// UnknownOutputs are the upstream outputs its templates read: unknown
	// before those tasks run, each renders as UnknownOutput says.
	UnknownOutputs []dag.OutputRef
	// Err is why the templates do not render with the run's values.
	Err error
}

// MaskedSecret is what a secret reads as in a preview, as in logs.
const MaskedSecret = "***"

// UnknownOutput is what an upstream output renders as in a preview.
func UnknownOutput(r dag.OutputRef) string {
	return "<unknown until " + r.Task + " runs: .outputs." + r.Task + "." + r.Key + ">"
}

// UnknownItem is what .item renders as in a preview: the instance shown
// is the first, map index 0.
func UnknownItem(m *dag.Mapping) string {
	return "<each item of: map " + m.String() + ">"
}

// Preview renders what a manual run of d, as req asks at now, would run.
// A bad request (params, date, tasks) is an error as Trigger's; a task
// whose templates do not render has its Err set.
func Preview(d *dag.DAG, req TriggerRequest, now time.Time) (*RunPreview, error) {
	keep, err := UpstreamClosure(d, req.Tasks)
	if err != nil {
		return nil, err
	}
	ld, iv, params, err := manualRun(d, req, now)
	if err != nil {
		return nil, err
	}
	p := &RunPreview{Run: store.Run{
		DAGID: d.ID, RunID: runID("manual", ld), RunType: "manual", State: store.RunQueued,
		LogicalDate: ld, DataIntervalStart: iv.Start, DataIntervalEnd: iv.End,
		QueuedAt: now.UTC(), Params: params, DAGHash: d.Hash,
	}}
	for _, t := range d.Tasks {
		if keep != nil && !keep[t.ID] {
			continue
		}
		tp := TaskPreview{Task: t, UnknownOutputs: t.Reads}
		outputs := map[string]any{}
		for _, r := range tp.UnknownOutputs {
			if outputs[r.Task] == nil {
				outputs[r.Task] = map[string]any{}
			}
			if r.Task != "" && r.Key != "" {
				outputs[r.Task].(map[string]any)[r.Key] = UnknownOutput(r)
			}
		}
		for id, out := range outputs {
			// A mapped upstream's outputs are a list: of one instance with
			// the keys read, or empty when none is named.
			if up := d.Task(id); up != nil && up.Map != nil && (up.MapGroup == "" || up.MapGroup != t.MapGroup) {
				list := []any{}
				if m := out.(map[string]any); len(m) > 0 {
					list = append(list, m)
				}
				outputs[id] = list
			}
		}
		v := dag.Values{
			DAGID: d.ID, TaskID: t.ID, RunID: p.Run.RunID, TryNumber: 1,
			LogicalDate: ld, DataIntervalStart: iv.Start, DataIntervalEnd: iv.End,
			Params: params, Outputs: outputs, Env: map[string]string{},
		}
		if t.Map != nil {
			v.Mapped, v.Item = true, UnknownItem(t.Map)
		}
		for _, in := range t.Inputs {
			if v.Inputs == nil {
				v.Inputs = map[string]string{}
			}
			v.Inputs[in.Name] = wire.InputPlaceholder(in.Name)
		}
		if len(t.Secrets) > 0 {
			v.Secrets = make(map[string]string, len(t.Secrets))
			for _, name := range t.Secrets {
				v.Secrets[name] = MaskedSecret
			}
		}
		tp.With, tp.Err = renderTask(d, t, &v)
		tp.Env = v.Env
		p.Tasks = append(p.Tasks, tp)
	}
	return p, nil
}
