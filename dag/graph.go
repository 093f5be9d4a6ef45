package dag

import (
	"slices"
	"strings"
)

// graph is the dependency graph of a DAG's tasks, by index in file order,
// and of its groups, numbered after the tasks in the order of g.Groups.
type graph struct {
	idx map[string]int // task id → index
	ids []string       // task ids by index
	// up holds each node's upstreams: the tasks and groups a task's
	// depends_on names, a group's tasks.
	up  [][]int
	anc map[int]map[int]bool // memoised ancestor sets
}

// graph checks depends_on (unknown tasks and groups, duplicates, cycles),
// expands the groups of each task's DependsOn and fills its Downstream.
func (d *decoder) graph(g *DAG, raws []*rawTask) *graph {
	n := len(raws)
	gr := &graph{idx: make(map[string]int, n), up: make([][]int, n+len(g.Groups)), anc: map[int]map[int]bool{}}
	ids := make([]string, n)
	for i, rt := range raws {
		gr.idx[rt.task.ID] = i
		ids[i] = rt.task.ID
	}
	gr.ids = ids
	// names are the names depends_on may give, for suggestions.
	names, what := ids, "task"
	if len(g.Groups) > 0 {
		names, what = slices.Clone(ids), "task or group"
	}
	groupIdx := make(map[string]int, len(g.Groups))
	for k, gp := range g.Groups {
		groupIdx[gp.Name] = n + k
		names = append(names, gp.Name)
		for _, id := range gp.Tasks {
			gr.up[n+k] = append(gr.up[n+k], gr.idx[id])
		}
	}
	// entries[i][k] is the depends_on list entry naming gr.up[i][k];
	// listed[j] is i+1 once task i's list names node j, and added[j] once
	// task i's DependsOn holds task j.
	entries := make([][]*node, n)
	listed := make([]int, len(gr.up))
	added := make([]int, n)
	for i, rt := range raws {
		p, ok := rt.fields["depends_on"]
		if !ok || p.val.kind != seqNode {
			continue
		}
		kept := rt.task.DependsOn[:0]
		for _, it := range p.val.items {
			name, _ := it.str()
			j, known := gr.idx[name]
			if !known {
				j, known = groupIdx[name]
			}
			switch {
			case !known:
				d.errAt(it, "depends_on: no %s %q in this DAG%s", what, name, d.suggest(name, names))
				continue
			case listed[j] == i+1:
				d.errAt(it, "depends_on: %q is listed twice", name)
				continue
			}
			listed[j] = i + 1
			gr.up[i] = append(gr.up[i], j)
			entries[i] = append(entries[i], it)
			tasks := []int{j}
			if j >= n {
				tasks = gr.up[j]
			}
			for _, t := range tasks {
				if added[t] != i+1 {
					added[t] = i + 1
					kept = append(kept, ids[t])
				}
			}
		}
		rt.task.DependsOn = kept
	}
	for _, rt := range raws {
		for _, up := range rt.task.DependsOn {
			t := raws[gr.idx[up]].task
			t.Downstream = append(t.Downstream, rt.task.ID)
		}
	}
	name := func(i int) string {
		if i >= n {
			return "group " + g.Groups[i-n].Name
		}
		return ids[i]
	}
	for _, c := range gr.cycles() {
		// Report at the entry that closes the cycle: end it at a task,
		// as a group's edges are no entries.
		k := len(c) - 1
		for c[k] >= n {
			k--
		}
		c = slices.Concat(c[k+1:], c[:k+1])
		path := make([]string, 0, len(c)+1)
		for _, i := range c {
			path = append(path, name(i))
		}
		path = append(path, name(c[0]))
		last, first := c[len(c)-1], c[0]
		d.errAt(entries[last][slices.Index(gr.up[last], first)], "dependency cycle: %s", strings.Join(reversed(path), " → "))
	}
	return gr
}

// cycles finds the cycles closed by back edges of a depth-first search over
// upstream edges; each is returned as the path first → … → last where last
// depends on first.
func (gr *graph) cycles() [][]int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(gr.up))
	var stack []int
	var out [][]int
	var visit func(i int)
	visit = func(i int) {
		color[i] = grey
		stack = append(stack, i)
		for _, j := range gr.up[i] {
			switch color[j] {
			case white:
				visit(j)
			case grey:
				at := len(stack) - 1
				for stack[at] != j {
					at--
				}
				c := append([]int(nil), stack[at:]...)
				out = append(out, c)
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
	}
	for i := range gr.up {
		if color[i] == white {
			visit(i)
		}
	}
	return out
}

// upstreamOf reports whether task a is a (transitive) upstream of task b.
func (gr *graph) upstreamOf(a, b string) bool {
	ia, ok := gr.idx[a]
	if !ok {
		return false
	}
	ib := gr.idx[b]
	anc, ok := gr.anc[ib]
	if !ok {
		anc = map[int]bool{}
		todo := append([]int(nil), gr.up[ib]...)
		for len(todo) > 0 {
			i := todo[len(todo)-1]
			todo = todo[:len(todo)-1]
			if !anc[i] {
				anc[i] = true
				todo = append(todo, gr.up[i]...)
			}
		}
		gr.anc[ib] = anc
	}
	return anc[ia]
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[len(s)-1-i] = x
	}
	return out
}
