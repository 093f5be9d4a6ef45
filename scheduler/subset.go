package scheduler

import (
	"fmt"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/suggest"
)

// UpstreamClosure returns the named tasks of d and every task they depend
// on, directly or not: the tasks a run restricted to them runs
// (TriggerRequest.Tasks). No names means the whole DAG, and returns nil.
// A name that is no task of d is an ErrInvalid naming the closest task id.
func UpstreamClosure(d *dag.DAG, ids []string) (map[string]bool, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keep := make(map[string]bool, len(d.Tasks))
	todo := make([]string, 0, len(ids))
	for _, id := range ids {
		if d.Task(id) == nil {
			known := make([]string, len(d.Tasks))
			for i, t := range d.Tasks {
				known[i] = t.ID
			}
			return nil, fmt.Errorf("%w: DAG %s has no task %q%s", ErrInvalid, d.ID, id, suggest.DidYouMean(id, known))
		}
		if !keep[id] {
			keep[id] = true
			todo = append(todo, id)
		}
	}
	for len(todo) > 0 {
		t := d.Task(todo[len(todo)-1])
		todo = todo[:len(todo)-1]
		for _, up := range t.DependsOn {
			if !keep[up] {
				keep[up] = true
				todo = append(todo, up)
			}
		}
	}
	return keep, nil
}
