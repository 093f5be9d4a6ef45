package ui

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// edges builds the upstream lists of n tasks from "a>b" pairs of indexes.
func edges(n int, pairs ...[2]int) [][]int {
	up := make([][]int, n)
	for _, p := range pairs {
		up[p[1]] = append(up[p[1]], p[0])
	}
	return up
}

// checkLayout checks what every layout must hold: edges point right, no
// two boxes overlap, every box is inside the drawing, and every edge's
// path starts at its upstream box and ends at its downstream box.
func checkLayout(t *testing.T, up [][]int, l graphLayout) {
	t.Helper()
	for i, ups := range up {
		for _, j := range ups {
			if l.Nodes[j].Layer >= l.Nodes[i].Layer {
				t.Errorf("edge %d→%d: layer %d → %d, want left to right", j, i, l.Nodes[j].Layer, l.Nodes[i].Layer)
			}
		}
	}
	for i, a := range l.Nodes {
		if a.X < 0 || a.Y < 0 || a.X+nodeW > l.Width || a.Y+nodeH > l.Height {
			t.Errorf("node %d at (%v, %v) is outside the %v×%v drawing", i, a.X, a.Y, l.Width, l.Height)
		}
		for j := i + 1; j < len(l.Nodes); j++ {
			b := l.Nodes[j]
			if a.X < b.X+nodeW && b.X < a.X+nodeW && a.Y < b.Y+nodeH && b.Y < a.Y+nodeH {
				t.Errorf("nodes %d (%v, %v) and %d (%v, %v) overlap", i, a.X, a.Y, j, b.X, b.Y)
			}
		}
	}
	if len(l.Edges) != countEdges(up) {
		t.Errorf("%d edges drawn, want %d", len(l.Edges), countEdges(up))
	}
	for _, e := range l.Edges {
		from, to := l.Nodes[e.From], l.Nodes[e.To]
		start := fmt.Sprintf("M%s %s", svgNum(from.X+nodeW), svgNum(from.Y+nodeH/2))
		end := fmt.Sprintf("%s %s", svgNum(to.X), svgNum(to.Y+nodeH/2))
		if !strings.HasPrefix(e.Path, start) || !strings.HasSuffix(e.Path, end) {
			t.Errorf("edge %d→%d: path %q, want from %q to %q", e.From, e.To, e.Path, start, end)
		}
	}
}

func countEdges(up [][]int) int {
	n := 0
	for _, u := range up {
		n += len(u)
	}
	return n
}

func TestLayoutLayers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		up     [][]int
		layers []int
	}{
		{"empty", nil, []int{}},
		{"one", edges(1), []int{0}},
		{"chain", edges(3, [2]int{0, 1}, [2]int{1, 2}), []int{0, 1, 2}},
		{"chain listed backwards", edges(3, [2]int{2, 1}, [2]int{1, 0}), []int{2, 1, 0}},
		{"diamond", edges(4, [2]int{0, 1}, [2]int{0, 2}, [2]int{1, 3}, [2]int{2, 3}), []int{0, 1, 1, 2}},
		// 3 depends on 0 directly and through 1 and 2: the longest path wins.
		{"longest path", edges(4, [2]int{0, 1}, [2]int{1, 2}, [2]int{2, 3}, [2]int{0, 3}), []int{0, 1, 2, 3}},
		{"two sources", edges(3, [2]int{0, 2}, [2]int{1, 2}), []int{0, 0, 1}},
		{"unconnected", edges(3), []int{0, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := layoutGraph(tc.up, nil)
			got := make([]int, len(l.Nodes))
			for i, n := range l.Nodes {
				got[i] = n.Layer
			}
			if !slices.Equal(got, tc.layers) {
				t.Errorf("layers = %v, want %v", got, tc.layers)
			}
			checkLayout(t, tc.up, l)
		})
	}
}

func TestLayoutOrderReducesCrossings(t *testing.T) {
	// Sources 0 and 1; 2 depends on 1 and 3 on 0. Listed in file order the
	// edges cross; the barycenter pass uncrosses them.
	up := edges(4, [2]int{1, 2}, [2]int{0, 3})
	l := layoutGraph(up, nil)
	checkLayout(t, up, l)
	if l.Crossings != 0 {
		t.Errorf("crossings = %d, want 0", l.Crossings)
	}
	above := func(a, b int) bool { return l.Nodes[a].Y < l.Nodes[b].Y }
	if above(0, 1) != above(3, 2) {
		t.Errorf("0 above 1: %v, but 3 above 2: %v; the edges cross", above(0, 1), above(3, 2))
	}

	// Two fans whose targets are listed interleaved.
	up = edges(6, [2]int{0, 2}, [2]int{1, 3}, [2]int{0, 4}, [2]int{1, 5})
	l = layoutGraph(up, nil)
	checkLayout(t, up, l)
	if l.Crossings != 0 {
		t.Errorf("fans: crossings = %d, want 0", l.Crossings)
	}
}

func TestLayoutLongEdgesGoAroundBoxes(t *testing.T) {
	// 0→1→2→3 and 0→3: the long edge gets dummies in layers 1 and 2, so
	// it takes a slot of its own beside 1 and 2 instead of running
	// through them.
	up := edges(4, [2]int{0, 1}, [2]int{1, 2}, [2]int{2, 3}, [2]int{0, 3})
	l := layoutGraph(up, nil)
	checkLayout(t, up, l)
	var long layoutEdge
	for _, e := range l.Edges {
		if e.From == 0 && e.To == 3 {
			long = e
		}
	}
	if n := strings.Count(long.Path, " L"); n != 2 {
		t.Errorf("long edge %q: %d straight runs across layers, want 2", long.Path, n)
	}
	// Where it runs straight across layers 1 and 2, it is clear of the
	// boxes there.
	runs := regexp.MustCompile(`L([0-9.]+) ([0-9.]+)`).FindAllStringSubmatch(long.Path, -1)
	for _, r := range runs {
		y, _ := strconv.ParseFloat(r[2], 64)
		for _, box := range []int{1, 2} {
			if y >= l.Nodes[box].Y && y <= l.Nodes[box].Y+nodeH {
				t.Errorf("the long edge runs at y=%v through box %d (y %v to %v)", y, box, l.Nodes[box].Y, l.Nodes[box].Y+nodeH)
			}
		}
	}
}

func TestLayoutWide(t *testing.T) {
	// 300 tasks in 30 chains of 10, with cross links: big enough to see
	// overlaps and sweeps at work, small enough for the O(n²) check.
	n := 300
	var pairs [][2]int
	for i := range n {
		if i%10 != 0 {
			pairs = append(pairs, [2]int{i - 1, i})
		}
		if i%10 == 5 && i+17 < n {
			pairs = append(pairs, [2]int{i, i + 17})
		}
	}
	up := edges(n, pairs...)
	l := layoutGraph(up, nil)
	checkLayout(t, up, l)
	// Task 5 of chain c feeds task 2 of chain c+2, so each chain starts 4
	// layers after the one two before it: chain 28 starts at 56 and ends
	// at 65.
	if l.Layers != 66 {
		t.Errorf("layers = %d, want 66", l.Layers)
	}
}

func TestLayoutCycleDoesNotLoop(t *testing.T) {
	up := edges(3, [2]int{0, 1}, [2]int{1, 2}, [2]int{2, 1})
	l := layoutGraph(up, nil)
	if len(l.Nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(l.Nodes))
	}
}

func TestInversions(t *testing.T) {
	for _, tc := range []struct {
		s    []int
		want int
	}{
		{nil, 0}, {[]int{1}, 0}, {[]int{1, 2, 3}, 0}, {[]int{3, 2, 1}, 3}, {[]int{2, 1, 2, 1}, 3}, {[]int{1, 1}, 0},
	} {
		if got := inversions(slices.Clone(tc.s)); got != tc.want {
			t.Errorf("inversions(%v) = %d, want %d", tc.s, got, tc.want)
		}
	}
}

func BenchmarkLayout1000(b *testing.B) {
	n := 1000
	var pairs [][2]int
	for i := 1; i < n; i++ {
		pairs = append(pairs, [2]int{(i - 1) / 3, i}) // a tree, 3 children each
		if i%7 == 0 {
			pairs = append(pairs, [2]int{i / 2, i})
		}
	}
	up := edges(n, pairs...)
	for b.Loop() {
		layoutGraph(up, nil)
	}
}

// checkBoxes checks the boxes of a layout with groups: each encloses the
// boxes of its tasks, and neither another task's box nor another group's.
func checkBoxes(t *testing.T, group []int, l graphLayout) {
	t.Helper()
	inside := func(n layoutNode, b layoutBox) bool {
		return n.X >= b.X && n.Y >= b.Y && n.X+nodeW <= b.X+b.W && n.Y+nodeH <= b.Y+b.H
	}
	touches := func(n layoutNode, b layoutBox) bool {
		return n.X < b.X+b.W && b.X < n.X+nodeW && n.Y < b.Y+b.H && b.Y < n.Y+nodeH
	}
	for gr, b := range l.Boxes {
		if b.X < 0 || b.Y < 0 || b.X+b.W > l.Width || b.Y+b.H > l.Height {
			t.Errorf("group %d's box %+v is outside the %v×%v drawing", gr, b, l.Width, l.Height)
		}
		for i, n := range l.Nodes {
			if group[i] == gr && !inside(n, b) {
				t.Errorf("task %d at (%v, %v) is outside its group %d's box %+v", i, n.X, n.Y, gr, b)
			}
			if group[i] != gr && touches(n, b) {
				t.Errorf("task %d (group %d) at (%v, %v) is in group %d's box %+v", i, group[i], n.X, n.Y, gr, b)
			}
		}
		for g2 := gr + 1; g2 < len(l.Boxes); g2++ {
			c := l.Boxes[g2]
			if b.X < c.X+c.W && c.X < b.X+b.W && b.Y < c.Y+c.H && c.Y < b.Y+b.H {
				t.Errorf("the boxes of groups %d %+v and %d %+v overlap", gr, b, g2, c)
			}
		}
	}
}

func TestLayoutGroups(t *testing.T) {
	for _, tc := range []struct {
		name  string
		up    [][]int
		group []int
	}{
		// 0 → {1, 2} → 3 with 1 and 3 in group 0: the box spans two layers
		// and 2 stays out of it.
		{"diamond", edges(4, [2]int{0, 1}, [2]int{0, 2}, [2]int{1, 3}, [2]int{2, 3}), []int{-1, 0, -1, 0}},
		// Two fans whose targets are listed interleaved, grouped across
		// the fans: each group's tasks must come together in layer 1.
		{"interleaved", edges(6, [2]int{0, 2}, [2]int{1, 3}, [2]int{0, 4}, [2]int{1, 5}), []int{-1, -1, 0, 1, 1, 0}},
		// Two groups in the same layers, a chain each, and a task in none
		// between them in file order.
		{"two chains", edges(5, [2]int{0, 1}, [2]int{3, 4}, [2]int{1, 2}), []int{0, 0, -1, 1, 1}},
		// A group whose edge skips a layer: its dummy is inside the box.
		{"long edge", edges(4, [2]int{0, 1}, [2]int{1, 2}, [2]int{0, 2}, [2]int{1, 3}), []int{0, -1, 0, -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := layoutGraph(tc.up, tc.group)
			checkLayout(t, tc.up, l)
			checkBoxes(t, tc.group, l)
		})
	}
}

func TestLayoutGroupsWide(t *testing.T) {
	// The chains of TestLayoutWide, every third of them a group.
	n := 300
	var pairs [][2]int
	group := make([]int, n)
	for i := range n {
		if i%10 != 0 {
			pairs = append(pairs, [2]int{i - 1, i})
		}
		if i%10 == 5 && i+17 < n {
			pairs = append(pairs, [2]int{i, i + 17})
		}
		group[i] = -1
		if c := i / 10; c%3 == 0 {
			group[i] = c / 3
		}
	}
	up := edges(n, pairs...)
	l := layoutGraph(up, group)
	checkLayout(t, up, l)
	checkBoxes(t, group, l)
}
