package dag

import (
	"slices"
	"strings"
)

// graph is the dependency graph of a DAG's tasks, by index in file order.
type graph struct {
	idx map[string]int
	ids []string // by index
	up  [][]int
	anc map[int]map[int]bool // memoised ancestor sets
}

// graph checks depends_on (unknown tasks, duplicates, cycles) and fills
// each task's Downstream list.
func (d *decoder) graph(g *DAG, raws []*rawTask) *graph {
	gr := &graph{idx: make(map[string]int, len(raws)), up: make([][]int, len(raws)), anc: map[int]map[int]bool{}}
	ids := make([]string, len(raws))
	for i, rt := range raws {
		gr.idx[rt.task.ID] = i
		ids[i] = rt.task.ID
	}
	gr.ids = ids
	// entries[i][k] is the depends_on list entry naming gr.up[i][k], and
	// listed[j] is i+1 once task i's list names task j.
	entries := make([][]*node, len(raws))
	listed := make([]int, len(raws))
	for i, rt := range raws {
		p, ok := rt.fields["depends_on"]
		if !ok || p.val.kind != seqNode {
			continue
		}
		kept := rt.task.DependsOn[:0]
		for _, it := range p.val.items {
			name, _ := it.str()
			j, known := gr.idx[name]
			switch {
			case !known:
				d.errAt(it, "depends_on: no task %q in this DAG%s", name, d.suggest(name, ids))
				continue
			case listed[j] == i+1:
				d.errAt(it, "depends_on: %q is listed twice", name)
				continue
			}
			listed[j] = i + 1
			gr.up[i] = append(gr.up[i], j)
			entries[i] = append(entries[i], it)
			kept = append(kept, name)
		}
		rt.task.DependsOn = kept
	}
	for i, ups := range gr.up {
		for _, j := range ups {
			raws[j].task.Downstream = append(raws[j].task.Downstream, raws[i].task.ID)
		}
	}
	for _, c := range gr.cycles() {
		names := make([]string, 0, len(c)+1)
		for _, i := range c {
			names = append(names, ids[i])
		}
		names = append(names, ids[c[0]])
		// Report at the entry that closes the cycle.
		last, first := c[len(c)-1], c[0]
		d.errAt(entries[last][slices.Index(gr.up[last], first)], "dependency cycle: %s", strings.Join(reversed(names), " → "))
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
