package ui

import (
	"slices"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// Task groups on the graph and grid tabs (docs/dag-format.md#task-groups).
// The graph draws a group as a box around its tasks, which ?fold=NAME
// folds into one node; the grid shows a group as a row, which ?open=NAME
// expands into its tasks' rows. Both are links, so that the live refresh,
// which re-fetches the page's own URL, keeps what is folded or open.

// groupStateOrder ranks task states from the worst: a group shows the
// worst state of its tasks, in Airflow's order of priority. A task with
// no instance yet ("none") outranks success, so that a group is green
// only when all of its tasks are done.
var groupStateOrder = []string{
	string(store.TaskFailed),
	string(store.TaskUpstreamFailed),
	string(store.TaskUpForRetry),
	string(store.TaskUpForReschedule),
	string(store.TaskRunning),
	string(store.TaskQueued),
	string(store.TaskScheduled),
	string(store.TaskNone),
	string(store.TaskSuccess),
	string(store.TaskSkipped),
}

// worseState is the worse of two task states (storeState's strings); a
// state the order does not know counts as the worst.
func worseState(a, b string) string {
	ra, rb := slices.Index(groupStateOrder, a), slices.Index(groupStateOrder, b)
	if ra < 0 || rb >= 0 && ra <= rb {
		return a
	}
	return b
}

// groupState is the state a group shows: the worst of its tasks' states,
// state(id) being each task's.
func groupState(gr *dag.Group, state func(taskID string) string) string {
	if len(gr.Tasks) == 0 {
		return string(store.TaskNone)
	}
	worst := state(gr.Tasks[0])
	for _, id := range gr.Tasks[1:] {
		worst = worseState(worst, state(id))
	}
	return worst
}

// groupNames returns the names among names that are groups of g, sorted,
// each once: the groups a page's ?fold or ?open names.
func groupNames(g *dag.DAG, names []string) []string {
	var out []string
	for _, n := range names {
		if g.Group(n) != nil && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// toggled returns names with name added, or removed when it is there.
func toggled(names []string, name string) []string {
	if i := slices.Index(names, name); i >= 0 {
		return slices.Delete(slices.Clone(names), i, i+1)
	}
	out := append(slices.Clone(names), name)
	slices.Sort(out)
	return out
}

// graphVertex is what the graph draws as a node: a task (task >= 0), or a
// folded group (group >= 0, an index in the DAG's Groups).
type graphVertex struct {
	task, group int
}

// graphShape is the graph of g with the groups folded drawn as one node
// each: verts are the nodes, a folded group in the place of its first
// task in the file; up and group are layoutGraph's arguments for them,
// group giving each node in an unfolded group that group's index in
// g.Groups (nil when no group is drawn as a box).
func graphShape(g *dag.DAG, folded []string) (verts []graphVertex, up [][]int, group []int) {
	groupIndex := make(map[string]int, len(g.Groups))
	for gi, gr := range g.Groups {
		groupIndex[gr.Name] = gi
	}
	of := make([]int, len(g.Tasks))     // task → vertex
	folds := make([]int, len(g.Groups)) // folded group → vertex + 1
	boxes := false
	for i, t := range g.Tasks {
		gi, inGroup := groupIndex[t.Group]
		switch {
		case inGroup && slices.Contains(folded, t.Group):
			if folds[gi] == 0 {
				verts = append(verts, graphVertex{task: -1, group: gi})
				folds[gi] = len(verts)
			}
			of[i] = folds[gi] - 1
			continue
		case inGroup:
			boxes = true
		}
		verts = append(verts, graphVertex{task: i, group: -1})
		of[i] = len(verts) - 1
	}
	up = make([][]int, len(verts))
	for i, t := range g.Tasks {
		v := of[i]
		for _, d := range t.DependsOn {
			if j := g.TaskIndex(d); j >= 0 && of[j] != v && !slices.Contains(up[v], of[j]) {
				up[v] = append(up[v], of[j])
			}
		}
	}
	if boxes {
		group = make([]int, len(verts))
		for v, x := range verts {
			group[v] = -1
			if x.task >= 0 {
				if gi, ok := groupIndex[g.Tasks[x.task].Group]; ok {
					group[v] = gi
				}
			}
		}
	}
	return verts, up, group
}
