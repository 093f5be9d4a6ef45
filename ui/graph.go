package ui

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The graph tab draws a DAG's tasks left to right, upstream before
// downstream, in the layered style of Sugiyama et al.:
//
//  1. Each task goes in the layer of its longest path from a task with no
//     upstream, so every edge points right.
//  2. An edge that spans more than one layer gets a dummy vertex in every
//     layer it crosses, so that no edge runs through a task, and ordering
//     sees it.
//  3. Barycenter sweeps, down then up, order each layer by the mean
//     position of its neighbours in the layer before; the order with the
//     fewest crossings wins.
//  4. Layers are stacked top down and centred on each other.
//
// Task groups are drawn as boxes around their tasks. Ordering keeps the
// vertices of a group together in each layer, and the groups in the same
// order in every layer; then each group takes a band of the drawing as
// tall as its tallest layer, across the layers it spans, and the layers
// are stacked from the top around the bands.
//
// layoutGraph is a pure function of the edges and groups, so it is tested
// with tables, and its result is cached by DAG version and folded groups.

// Sizes of the drawing, in SVG user units (pixels).
const (
	nodeW    = 184.0 // a task's box
	nodeH    = 38.0
	dummyH   = 10.0 // the slot an edge takes in a layer it crosses
	gapX     = 64.0 // between layers
	gapY     = 12.0 // between vertices of a layer
	marginXY = 16.0

	// maxDummies bounds the dummy vertices of one layout. Past it, edges
	// that span layers are drawn straight across and ordering ignores
	// them: a very wide graph still lays out in linear time.
	maxDummies = 20000
	// sweeps is how many down-and-up barycenter passes ordering makes.
	sweeps = 4

	groupHead = 22.0 // the band at the top of a group's box, for its name
	groupPad  = 8.0  // between a group's box and the boxes inside
)

// graphLayout is where the graph tab draws each task and edge.
type graphLayout struct {
	Width, Height float64
	// Nodes are by task index: the position of each task's box.
	Nodes []layoutNode
	// Edges are by upstream task, then by downstream task.
	Edges []layoutEdge
	// Layers is the number of layers.
	Layers int
	// Crossings is the number of edge crossings between adjacent layers
	// of the order chosen (counting dummy segments).
	Crossings int
	// Boxes are by group: the box drawn around each group's vertices; the
	// zero box for a group without any.
	Boxes []layoutBox
}

// layoutBox is a group's box: its top-left corner and size.
type layoutBox struct {
	X, Y, W, H float64
}

// layoutNode is a task's box: its layer (column), its rank in the layer
// from the top (dummies included), and the top-left corner.
type layoutNode struct {
	Layer, Order int
	X, Y         float64
}

// layoutEdge is an edge from task From to task To, drawn as Path (SVG path
// data).
type layoutEdge struct {
	From, To int
	Path     string
}

// vertex is a task or a dummy in a layer.
type vertex struct {
	task       int // task index, or -1 for a dummy
	layer      int
	up, down   []int // neighbour vertices in the layers before and after
	pos        int   // rank in its layer
	y          float64
	bary       float64
	edgeFrom   int // for dummies: the edge's upstream task
	edgeTarget int // for dummies: the edge's downstream task
	group      int // the group the vertex is drawn in, or -1
}

// layoutGraph lays out the tasks 0..len(up)-1, where up[i] lists the
// upstream tasks of task i, and group[i] is the group task i is drawn in
// (0, 1, …), or -1; group is nil when there are no groups. The graph must
// be acyclic; tasks on a cycle (a bug elsewhere) are put in the last layer
// rather than looping.
func layoutGraph(up [][]int, group []int) graphLayout {
	n := len(up)
	layer := longestPathLayers(up)
	nLayers := 0
	for _, l := range layer {
		nLayers = max(nLayers, l+1)
	}
	nGroups := 0
	for _, gr := range group {
		nGroups = max(nGroups, gr+1)
	}
	groupOf := func(i int) int {
		if group == nil {
			return -1
		}
		return group[i]
	}

	// Vertices: tasks first (vertex i is task i), then dummies.
	vs := make([]vertex, n, n+64)
	for i := range n {
		vs[i] = vertex{task: i, layer: layer[i], group: groupOf(i)}
	}
	dummies := 0
	for i, ups := range up {
		for _, j := range ups {
			dummies += max(0, layer[i]-layer[j]-1)
		}
	}
	useDummies := dummies <= maxDummies
	// chains[k] are the vertices edge k passes through, task to task.
	type edgeRef struct{ from, to int }
	var edges []edgeRef
	var chains [][]int
	// Edges by upstream task, then by downstream task: stable from one
	// render to the next.
	down := make([][]int, n)
	for i, ups := range up {
		for _, j := range ups {
			down[j] = append(down[j], i)
		}
	}
	for j := range n {
		for _, i := range down[j] {
			edges = append(edges, edgeRef{j, i})
			chain := []int{j}
			if useDummies {
				for l := layer[j] + 1; l < layer[i]; l++ {
					// An edge within a group runs inside its box.
					gr := -1
					if groupOf(i) == groupOf(j) {
						gr = groupOf(i)
					}
					vs = append(vs, vertex{task: -1, layer: l, edgeFrom: j, edgeTarget: i, group: gr})
					chain = append(chain, len(vs)-1)
				}
			}
			chain = append(chain, i)
			for k := 1; k < len(chain); k++ {
				a, b := chain[k-1], chain[k]
				if vs[b].layer == vs[a].layer+1 {
					vs[a].down = append(vs[a].down, b)
					vs[b].up = append(vs[b].up, a)
				}
			}
			chains = append(chains, chain)
		}
	}

	// Initial order: a depth-first walk from the sources in task order,
	// which keeps chains together; then barycenter sweeps.
	layers := make([][]int, nLayers)
	seen := make([]bool, len(vs))
	var visit func(v int)
	visit = func(v int) {
		if seen[v] {
			return
		}
		seen[v] = true
		layers[vs[v].layer] = append(layers[vs[v].layer], v)
		for _, w := range vs[v].down {
			visit(w)
		}
	}
	for v := range vs {
		if len(vs[v].up) == 0 {
			visit(v)
		}
	}
	for v := range vs {
		visit(v) // anything left (cycles)
	}
	setPos := func() {
		for _, l := range layers {
			for p, v := range l {
				vs[v].pos = p
			}
		}
	}
	setPos()
	var groupOrder []int // the groups, top to bottom
	if nGroups > 0 {
		groupOrder = clusterGroups(vs, layers, nGroups)
	}
	best, bestGroups := cloneLayers(layers), groupOrder
	bestX := countCrossings(vs, layers)
	for s := 0; s < sweeps && bestX > 0; s++ {
		for l := 1; l < nLayers; l++ {
			orderByBarycenter(vs, layers[l], func(v *vertex) []int { return v.up })
		}
		for l := nLayers - 2; l >= 0; l-- {
			orderByBarycenter(vs, layers[l], func(v *vertex) []int { return v.down })
		}
		if nGroups > 0 {
			groupOrder = clusterGroups(vs, layers, nGroups)
		}
		if x := countCrossings(vs, layers); x < bestX {
			best, bestGroups, bestX = cloneLayers(layers), groupOrder, x
		}
	}
	layers = best
	setPos()

	out := graphLayout{
		Width:     2*marginXY + float64(nLayers)*nodeW + float64(max(0, nLayers-1))*gapX,
		Nodes:     make([]layoutNode, n),
		Edges:     make([]layoutEdge, len(edges)),
		Layers:    nLayers,
		Crossings: bestX,
	}
	if nGroups > 0 {
		out.Boxes = placeInBands(vs, layers, bestGroups, nGroups)
	} else {
		placeCentred(vs, layers)
	}
	for i := range vs {
		out.Height = max(out.Height, vs[i].y+vertexHeight(&vs[i]))
	}
	for _, b := range out.Boxes {
		out.Height = max(out.Height, b.Y+b.H)
	}
	out.Height += marginXY
	if n == 0 {
		out.Width, out.Height = 2*marginXY, 2*marginXY
	}
	for i := range n {
		out.Nodes[i] = layoutNode{Layer: vs[i].layer, Order: vs[i].pos, X: layerX(vs[i].layer), Y: vs[i].y}
	}
	for k, e := range edges {
		out.Edges[k] = layoutEdge{From: e.from, To: e.to, Path: edgePath(vs, chains[k])}
	}
	return out
}

// placeCentred sets the y of every vertex: layers are columns, each
// centred on the tallest.
func placeCentred(vs []vertex, layers [][]int) {
	heights := make([]float64, len(layers))
	tallest := 0.0
	for l, vsl := range layers {
		h := 0.0
		for k, v := range vsl {
			if k > 0 {
				h += gapY
			}
			h += vertexHeight(&vs[v])
		}
		heights[l] = h
		tallest = max(tallest, h)
	}
	for l, vsl := range layers {
		y := marginXY + (tallest-heights[l])/2
		for _, v := range vsl {
			vs[v].y = y
			y += vertexHeight(&vs[v]) + gapY
		}
	}
}

// clusterGroups reorders each layer so that the vertices of a group are
// together, and the groups in the same order in every layer: a group
// sorts by the mean rank of its vertices across the layers, a vertex in
// no group by its own rank. It returns the groups in that order.
func clusterGroups(vs []vertex, layers [][]int, nGroups int) []int {
	sum := make([]float64, nGroups)
	count := make([]int, nGroups)
	for i := range vs {
		if gr := vs[i].group; gr >= 0 {
			sum[gr] += float64(vs[i].pos)
			count[gr]++
		}
	}
	key := func(v int) float64 {
		if gr := vs[v].group; gr >= 0 {
			return sum[gr] / float64(count[gr])
		}
		return float64(vs[v].pos)
	}
	for _, l := range layers {
		for _, v := range l {
			vs[v].bary = key(v)
		}
		slices.SortStableFunc(l, func(a, b int) int {
			return cmp.Or(cmp.Compare(vs[a].bary, vs[b].bary), cmp.Compare(vs[a].group, vs[b].group))
		})
		for p, v := range l {
			vs[v].pos = p
		}
	}
	order := make([]int, 0, nGroups)
	for gr := range nGroups {
		if count[gr] > 0 {
			order = append(order, gr)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(sum[a]/float64(count[a]), sum[b]/float64(count[b]))
	})
	return order
}

// placeInBands sets the y of every vertex when there are groups, whose
// vertices clusterGroups put together: top down, each group in turn takes
// a band across the layers it spans, below whatever comes before it in
// those layers; then the rest of each layer follows. It returns the
// groups' boxes.
func placeInBands(vs []vertex, layers [][]int, groupOrder []int, nGroups int) []layoutBox {
	lo, hi := make([]int, nGroups), make([]int, nGroups)
	for gr := range nGroups {
		lo[gr], hi[gr] = len(layers), -1
	}
	for i := range vs {
		if gr := vs[i].group; gr >= 0 {
			lo[gr], hi[gr] = min(lo[gr], vs[i].layer), max(hi[gr], vs[i].layer)
		}
	}
	next := make([]int, len(layers)) // the rank of the next vertex to place
	y := make([]float64, len(layers))
	for l := range y {
		y[l] = marginXY
	}
	// place places the vertices of layer l from next[l] on, up to the
	// first one in a group when inGroups is false.
	place := func(l int, inGroups bool) {
		for ; next[l] < len(layers[l]); next[l]++ {
			v := &vs[layers[l][next[l]]]
			if v.group >= 0 && !inGroups {
				return
			}
			v.y = y[l]
			y[l] += vertexHeight(v) + gapY
		}
	}
	boxes := make([]layoutBox, nGroups)
	for _, gr := range groupOrder {
		top := 0.0
		for l := lo[gr]; l <= hi[gr]; l++ {
			place(l, false)
			top = max(top, y[l])
		}
		inner := 0.0
		for l := lo[gr]; l <= hi[gr]; l++ {
			h := top + groupHead
			for ; next[l] < len(layers[l]) && vs[layers[l][next[l]]].group == gr; next[l]++ {
				v := &vs[layers[l][next[l]]]
				v.y = h
				h += vertexHeight(v) + gapY
			}
			inner = max(inner, h-gapY-top-groupHead)
		}
		b := layoutBox{X: layerX(lo[gr]) - groupPad, Y: top, W: layerX(hi[gr]) - layerX(lo[gr]) + nodeW + 2*groupPad, H: groupHead + max(inner, 0) + groupPad}
		boxes[gr] = b
		for l := lo[gr]; l <= hi[gr]; l++ {
			y[l] = b.Y + b.H + gapY
		}
	}
	for l := range layers {
		place(l, true) // only vertices in no group are left
	}
	return boxes
}

func vertexHeight(v *vertex) float64 {
	if v.task < 0 {
		return dummyH
	}
	return nodeH
}

func layerX(l int) float64 { return marginXY + float64(l)*(nodeW+gapX) }

// longestPathLayers puts each task one layer right of its furthest
// upstream task.
func longestPathLayers(up [][]int) []int {
	n := len(up)
	layer := make([]int, n)
	indeg := make([]int, n)
	down := make([][]int, n)
	for i, ups := range up {
		indeg[i] = len(ups)
		for _, j := range ups {
			down[j] = append(down[j], i)
		}
	}
	queue := make([]int, 0, n)
	for i := range n {
		if indeg[i] == 0 {
			queue = append(queue, i)
		}
	}
	done := 0
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		done++
		for _, i := range down[j] {
			layer[i] = max(layer[i], layer[j]+1)
			if indeg[i]--; indeg[i] == 0 {
				queue = append(queue, i)
			}
		}
	}
	if done < n {
		last := 0
		for i := range n {
			if indeg[i] == 0 {
				last = max(last, layer[i])
			}
		}
		for i := range n {
			if indeg[i] > 0 {
				layer[i] = last + 1
			}
		}
	}
	return layer
}

// orderByBarycenter sorts a layer by the mean rank of each vertex's
// neighbours in the adjacent layer; a vertex without any keeps its rank.
func orderByBarycenter(vs []vertex, l []int, nb func(*vertex) []int) {
	for _, v := range l {
		ns := nb(&vs[v])
		if len(ns) == 0 {
			vs[v].bary = float64(vs[v].pos)
			continue
		}
		sum := 0
		for _, w := range ns {
			sum += vs[w].pos
		}
		vs[v].bary = float64(sum) / float64(len(ns))
	}
	slices.SortStableFunc(l, func(a, b int) int { return cmp.Compare(vs[a].bary, vs[b].bary) })
	for p, v := range l {
		vs[v].pos = p
	}
}

// countCrossings counts the pairs of segments between adjacent layers that
// cross, as inversions of the lower ends when the segments are sorted by
// their upper ends.
func countCrossings(vs []vertex, layers [][]int) int {
	total := 0
	var ends []int
	for _, l := range layers {
		ends = ends[:0]
		for _, v := range l { // l is in rank order
			lo := len(ends)
			for _, w := range vs[v].down {
				ends = append(ends, vs[w].pos)
			}
			slices.Sort(ends[lo:])
		}
		total += inversions(ends)
	}
	return total
}

// inversions counts the pairs i < j with s[i] > s[j], sorting s.
func inversions(s []int) int {
	if len(s) < 2 {
		return 0
	}
	mid := len(s) / 2
	n := inversions(s[:mid]) + inversions(s[mid:])
	merged := make([]int, 0, len(s))
	i, j := 0, mid
	for i < mid && j < len(s) {
		if s[j] < s[i] {
			merged = append(merged, s[j])
			n += mid - i
			j++
		} else {
			merged = append(merged, s[i])
			i++
		}
	}
	merged = append(merged, s[i:mid]...)
	merged = append(merged, s[j:]...)
	copy(s, merged)
	return n
}

func cloneLayers(layers [][]int) [][]int {
	out := make([][]int, len(layers))
	for i, l := range layers {
		out[i] = slices.Clone(l)
	}
	return out
}

// edgePath draws an edge through its chain of vertices: a curve from the
// right side of a box to the left side of the next, straight across the
// columns of dummies.
func edgePath(vs []vertex, chain []int) string {
	var b strings.Builder
	pt := func(x, y float64) {
		b.WriteString(strconv.FormatFloat(x, 'f', 1, 64))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	mid := func(v int) float64 { return vs[v].y + vertexHeight(&vs[v])/2 }
	first := chain[0]
	x, y := layerX(vs[first].layer)+nodeW, mid(first)
	b.WriteString("M")
	pt(x, y)
	for _, v := range chain[1:] {
		x2, y2 := layerX(vs[v].layer), mid(v)
		dx := (x2 - x) / 2
		b.WriteString(" C")
		pt(x+dx, y)
		b.WriteString(", ")
		pt(x2-dx, y2)
		b.WriteString(", ")
		pt(x2, y2)
		x, y = x2, y2
		if vs[v].task < 0 {
			x += nodeW
			b.WriteString(" L")
			pt(x, y)
		}
	}
	return b.String()
}

// layoutCache keeps the layout of recent DAG versions: a layout depends
// only on the DAG's edges, and a big DAG's takes milliseconds.
var layoutCache = struct {
	sync.Mutex
	m map[string]*graphLayout
}{m: map[string]*graphLayout{}}

// maxCachedLayouts bounds layoutCache; past it the cache starts over.
const maxCachedLayouts = 512

// cachedLayout returns the layout of a DAG version, computing it once
// from its upstream lists and groups (layoutGraph's arguments). key names
// the version (the DAG's id and file hash) and the groups folded.
func cachedLayout(key string, up [][]int, group []int) *graphLayout {
	layoutCache.Lock()
	l, ok := layoutCache.m[key]
	layoutCache.Unlock()
	if ok {
		return l
	}
	computed := layoutGraph(up, group)
	layoutCache.Lock()
	defer layoutCache.Unlock()
	if len(layoutCache.m) >= maxCachedLayouts {
		clear(layoutCache.m)
	}
	layoutCache.m[key] = &computed
	return &computed
}

// svgNum formats a coordinate for an SVG attribute.
func svgNum(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }
