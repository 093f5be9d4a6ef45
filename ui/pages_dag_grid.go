package ui

import (
	"container/heap"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// The grid and graph tabs of a DAG: the states of its tasks over recent
// runs, and in one run laid out as the DAG's graph.

// Runs the grid shows: 25 unless ?runs=N asks for up to 100.
const (
	defaultGridRuns = 25
	maxGridRuns     = 100
	// graphRunChoices is how many recent runs the graph tab offers.
	graphRunChoices = 25
)

// gridRun is a column of the grid: one run.
type gridRun struct {
	RunID, Href, State, Label, Title string
	Manual                           bool // not a scheduled run
	// BarH is the height of the run's bar in pixels: its duration against
	// the longest run shown, as Airflow's grid draws it.
	BarH int
}

// Heights of a run's bar in the grid: a run that has not started gets the
// least, the longest run shown the most.
const (
	minRunBar = 4
	maxRunBar = 48
)

// runBarHeights sets the bar heights of the runs: in proportion to how
// long each ran (so far, for one still running).
func runBarHeights(bars []gridRun, runs []*store.Run, now time.Time) {
	durs := make([]time.Duration, len(runs))
	var longest time.Duration
	for i, r := range runs {
		if r.StartDate == nil {
			continue
		}
		end := now
		if r.EndDate != nil {
			end = *r.EndDate
		}
		durs[i] = max(end.Sub(*r.StartDate), 0)
		longest = max(longest, durs[i])
	}
	for i := range bars {
		bars[i].BarH = minRunBar
		if longest > 0 {
			bars[i].BarH += int(float64(maxRunBar-minRunBar) * float64(durs[i]) / float64(longest))
		}
	}
}

// gridView is the grid tab: the runs are columns, oldest on the left and
// newest on the right, and the tasks rows, in topological order.
type gridView struct {
	DAGID string
	Runs  []gridRun
	// Body is the grid's rows, written by writeGridBody: a DAG of 1,000
	// tasks has 25,000 cells, too many for html/template's escaping of
	// every action within the 300 ms a page may take.
	Body template.HTML
	// N is how many runs a page shows, Offset how many newer ones it
	// skips; Older and Newer page through them ("" at either end).
	N, Offset    int
	Older, Newer string
	RunsHref     string // the list of every run (pages_runs.go)
	// Sizes are the page sizes offered.
	Sizes []gridSize
	// Open are the groups whose tasks' rows are shown (?open=NAME).
	Open []string
}

// gridSize is a page size of the grid.
type gridSize struct {
	N        int
	Selected bool
}

func (s *Server) dagGridPage(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	n, err := queryInt(c, "runs", defaultGridRuns, 1, maxGridRuns)
	if err != nil {
		return err
	}
	offset, err := queryInt(c, "offset", 0, 0, 1<<30)
	if err != nil {
		return err
	}
	v, err := s.gridView(info.DAG, n, offset, groupNames(info.DAG, c.QueryParams()["open"]))
	if err != nil {
		return err
	}
	return s.renderDAGTab(c, http.StatusOK, info, "grid", v)
}

// recentRuns reads the n runs of DAG dagID after the offset newest,
// oldest first, with the task instances of each (tasks[i] are runs[i]'s),
// and how many runs the DAG has: what the grid and the charts show.
func (s *Server) recentRuns(dagID string, n, offset int) (runs []*store.Run, tasks [][]store.TaskDigest, total int, err error) {
	st := s.backend.Store()
	runs, total, err = st.ListRuns(store.RunQuery{DAGID: dagID, Limit: n, Offset: offset})
	if err != nil {
		return nil, nil, 0, err
	}
	slices.Reverse(runs) // oldest first
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.RunID
	}
	tasks, err = st.RunTasks(dagID, ids)
	if err != nil {
		return nil, nil, 0, err
	}
	return runs, tasks, total, nil
}

func (s *Server) gridView(g *dag.DAG, n, offset int, open []string) (gridView, error) {
	runs, tasks, total, err := s.recentRuns(g.ID, n, offset)
	if err != nil {
		return gridView{}, err
	}
	v := gridView{DAGID: g.ID, N: n, Offset: offset, Runs: make([]gridRun, len(runs)), RunsHref: dagHref(g.ID, "runs"), Open: open}
	now := time.Now()
	for i, r := range runs {
		title := r.RunID + " · " + string(r.State)
		if d := spanText(r.StartDate, r.EndDate, now); d != "" {
			title += " · " + d
		}
		v.Runs[i] = gridRun{
			RunID:  r.RunID,
			Href:   runHref(g.ID, r.RunID),
			State:  string(r.State),
			Label:  r.LogicalDate.UTC().Format("01-02 15:04"),
			Title:  title,
			Manual: r.RunType != store.RunTypeScheduled,
		}
	}
	runBarHeights(v.Runs, runs, now)
	href := dagHref(g.ID)
	v.Body = writeGridBody(g, v.Runs, tasks, open, func(group string) string {
		return pageHref(href, n, offset, toggled(open, group))
	})
	v.Sizes = gridSizes(n)
	if offset+n < total {
		v.Older = pageHref(href, n, offset+n, open)
	}
	if offset > 0 {
		v.Newer = pageHref(href, n, max(0, offset-n), open)
	}
	return v, nil
}

// writeGridBody writes the rows of the grid: a row per task in
// topological order, a cell per run (column), each a link to the run's
// page for the task. tasks[j] are the task instances of runs[j]. A group
// is a row in the place of its first task, whose cells show the worst
// state of its tasks; the rows of its tasks follow when it is open, and
// toggle(name) is the grid with the group open or closed.
func writeGridBody(g *dag.DAG, runs []gridRun, tasks [][]store.TaskDigest, open []string, toggle func(group string) string) template.HTML {
	order := topoOrder(g)
	row := make(map[string]int, len(order))
	for k, i := range order {
		row[g.Tasks[i].ID] = k
	}
	// cells[k*len(runs)+j] is task order[k] in run j; nil: no instance.
	cells := make([]*store.TaskDigest, len(order)*len(runs))
	for j, tis := range tasks {
		for i := range tis {
			if k, ok := row[tis[i].TaskID]; ok { // else a task this version no longer has
				cells[k*len(runs)+j] = &tis[i]
			}
		}
	}
	runIDs := make([]string, len(runs))
	hrefs := make([]string, len(runs))
	for j, r := range runs {
		runIDs[j] = template.HTMLEscapeString(r.RunID)
		hrefs[j] = template.HTMLEscapeString(r.Href + "?task=")
	}
	var b strings.Builder
	b.Grow(gridBodySize(g, runs, hrefs))
	// members[name] are the rows of the group's tasks, in order.
	var members map[string][]int
	if len(g.Groups) > 0 {
		members = make(map[string][]int, len(g.Groups))
		for k, i := range order {
			if name := g.Tasks[i].Group; name != "" {
				members[name] = append(members[name], k)
			}
		}
	}
	state := func(k, j int) string {
		if d := cells[k*len(runs)+j]; d != nil {
			return storeState(d.State)
		}
		return string(store.TaskNone)
	}
	writeRow := func(k int) {
		t := g.Tasks[order[k]]
		id := template.HTMLEscapeString(t.ID)
		query := template.HTMLEscapeString(url.QueryEscape(t.ID))
		b.WriteString("\n<tr data-task=\"")
		b.WriteString(id)
		if t.Group != "" {
			b.WriteString("\" data-in-group=\"")
			b.WriteString(template.HTMLEscapeString(t.Group))
			b.WriteString("\"><th class=\"task in-group\" scope=\"row\" title=\"")
		} else {
			b.WriteString("\"><th class=\"task\" scope=\"row\" title=\"")
		}
		b.WriteString(id)
		b.WriteString(" · ")
		b.WriteString(template.HTMLEscapeString(t.Plugin))
		if t.Map != nil {
			b.WriteString(" · mapped: it runs once per element of a list\">")
			b.WriteString(id)
			b.WriteString(` <span class="mapped-mark">[ ]</span></th>`)
		} else {
			b.WriteString("\">")
			b.WriteString(id)
			b.WriteString("</th>")
		}
		for j := range runs {
			d := cells[k*len(runs)+j]
			st := template.HTMLEscapeString(state(k, j))
			b.WriteString(`<td><a class="cell" data-task="`)
			b.WriteString(id)
			b.WriteString(`" data-run="`)
			b.WriteString(runIDs[j])
			b.WriteString(`" data-state="`)
			b.WriteString(st)
			if d != nil && d.CachedFrom != nil {
				b.WriteString(`" data-cached="1`)
			}
			if d != nil && d.MapLength > 0 {
				b.WriteString(`" data-map-length="`)
				b.WriteString(strconv.Itoa(d.MapLength))
			}
			b.WriteString(`" href="`)
			b.WriteString(hrefs[j])
			b.WriteString(query)
			b.WriteString(`" title="`)
			writeCellTitle(&b, st, d)
			count := 0
			if d != nil {
				count = d.MapLength
			}
			endCell(&b, count)
		}
		b.WriteString("</tr>")
	}
	shown := make(map[string]bool, len(g.Groups)) // the groups written
	for k, i := range order {
		name := g.Tasks[i].Group
		if name == "" {
			writeRow(k)
			continue
		}
		if shown[name] {
			continue
		}
		shown[name] = true
		isOpen := slices.Contains(open, name)
		writeGroupRow(&b, g.Group(name), isOpen, toggle(name), runs, func(j int) (string, int) {
			worst, count := state(members[name][0], j), 0
			for _, k := range members[name] {
				worst = worseState(worst, state(k, j))
				if d := cells[k*len(runs)+j]; d != nil {
					count = max(count, d.MapLength) // a mapped group's tasks have one list
				}
			}
			return worst, count
		})
		if isOpen {
			for _, k := range members[name] {
				writeRow(k)
			}
		}
	}
	return template.HTML(b.String()) // #nosec G203 -- every value above is escaped
}

// writeGroupRow writes the row of a group in the grid: its name, a link
// that opens or closes it, and a cell per run with the worst state of its
// tasks in runs[j] and, for a mapped group, how many instances each has:
// cell(j). Each cell links to the run.
func writeGroupRow(b *strings.Builder, gr *dag.Group, open bool, toggle string, runs []gridRun, cell func(j int) (state string, instances int)) {
	name := template.HTMLEscapeString(gr.Name)
	b.WriteString("\n<tr class=\"group-row\" data-group=\"")
	b.WriteString(name)
	b.WriteString("\"><th class=\"task group\" scope=\"row\" title=\"")
	b.WriteString(template.HTMLEscapeString(groupTitle(gr)))
	b.WriteString(" · ")
	b.WriteString(strconv.Itoa(len(gr.Tasks)))
	b.WriteString(" tasks\"><a class=\"group-toggle\" href=\"")
	b.WriteString(template.HTMLEscapeString(toggle))
	if open {
		b.WriteString("\" aria-expanded=\"true\">▾ ")
	} else {
		b.WriteString("\" aria-expanded=\"false\">▸ ")
	}
	b.WriteString(name)
	if gr.Map != nil {
		b.WriteString(` <span class="mapped-mark">[ ]</span>`)
	}
	b.WriteString("</a></th>")
	for j, r := range runs {
		state, count := cell(j)
		st := template.HTMLEscapeString(state)
		b.WriteString(`<td><a class="cell" data-group="`)
		b.WriteString(name)
		b.WriteString(`" data-run="`)
		b.WriteString(template.HTMLEscapeString(r.RunID))
		b.WriteString(`" data-state="`)
		b.WriteString(st)
		if count > 0 {
			b.WriteString(`" data-map-length="`)
			b.WriteString(strconv.Itoa(count))
		}
		b.WriteString(`" href="`)
		b.WriteString(template.HTMLEscapeString(r.Href))
		b.WriteString(`" title="`)
		b.WriteString(name)
		b.WriteString(" · ")
		b.WriteString(st)
		if count > 0 {
			b.WriteString(" · ")
			b.WriteString(instancesText(count))
		}
		endCell(b, count)
	}
	b.WriteString("</tr>")
}

// gridBodySize estimates the bytes writeGridBody writes, so that its
// builder grows once.
func gridBodySize(g *dag.DAG, runs []gridRun, hrefs []string) int {
	perRow := 0 // the cells of a row, less the task id
	for j, r := range runs {
		perRow += 90 + 2*len(r.RunID) + len(hrefs[j]) + 30 // tags and state, ids, href, title
	}
	n := 0
	for _, t := range g.Tasks {
		n += perRow + len(runs)*2*len(t.ID) + 80 + 3*len(t.ID) + len(t.Plugin)
	}
	return n
}

// writeCellTitle writes a grid cell's tooltip: state, try and duration,
// or the run a cached result came from.
func writeCellTitle(b *strings.Builder, state string, d *store.TaskDigest) {
	if d == nil {
		b.WriteString("no task instance")
		return
	}
	b.WriteString(state)
	if d.MapLength > 0 {
		b.WriteString(" · ")
		b.WriteString(instancesText(d.MapLength))
	}
	if d.CachedFrom != nil {
		b.WriteString(" · cached from ")
		b.WriteString(template.HTMLEscapeString(d.CachedFrom.RunID))
		return
	}
	if d.TryNumber > 0 {
		b.WriteString(" · try ")
		b.WriteString(strconv.Itoa(d.TryNumber))
	}
	switch {
	case !d.StartDate.IsZero() && !d.EndDate.IsZero():
		b.WriteString(" · ")
		b.WriteString(durationText(d.EndDate.Sub(d.StartDate)))
	case !d.StartDate.IsZero():
		b.WriteString(" · started ")
		b.WriteString(d.StartDate.UTC().Format(time.TimeOnly))
		b.WriteString(" UTC")
	}
}

// endCell ends a cell after its title; a mapped task's (instances > 0)
// holds its number of instances, for it stands for them all
// (docs/api.md#mapped-tasks).
func endCell(b *strings.Builder, instances int) {
	if instances == 0 {
		b.WriteString(`"></a></td>`)
		return
	}
	b.WriteString(`"><span class="map-count">`)
	b.WriteString(shortCount(instances))
	b.WriteString(`</span></a></td>`)
}

// shortCount is a count that fits a grid cell: 950, 1k, 12k.
func shortCount(n int) string {
	if n < 1000 {
		return strconv.Itoa(n)
	}
	return strconv.Itoa(n/1000) + "k"
}

// gridSizes are the numbers of runs the grid and the charts offer, n
// among them, selected.
func gridSizes(n int) []gridSize {
	var out []gridSize
	for _, size := range []int{10, defaultGridRuns, 50, maxGridRuns} {
		out = append(out, gridSize{N: size, Selected: size == n})
	}
	if !slices.ContainsFunc(out, func(s gridSize) bool { return s.Selected }) {
		out = append(out, gridSize{N: n, Selected: true})
		slices.SortFunc(out, func(a, b gridSize) int { return a.N - b.N })
	}
	return out
}

// pageHref is the grid's path for a page of runs, with the groups open
// open.
func pageHref(base string, n, offset int, open []string) string {
	q := url.Values{}
	if len(open) > 0 {
		q["open"] = open
	}
	if n != defaultGridRuns {
		q.Set("runs", strconv.Itoa(n))
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if len(q) == 0 {
		return base
	}
	return base + "?" + q.Encode()
}

// topoOrder returns the task indexes of g in a topological order that
// keeps the file's order wherever the dependencies allow: it is the file
// order itself when every task comes after its upstream tasks.
func topoOrder(g *dag.DAG) []int {
	n := len(g.Tasks)
	indeg := make([]int, n)
	for i, t := range g.Tasks {
		indeg[i] = len(t.DependsOn)
	}
	ready := make(intHeap, 0, n)
	for i := range n {
		if indeg[i] == 0 {
			ready = append(ready, i)
		}
	}
	heap.Init(&ready)
	order := make([]int, 0, n)
	for ready.Len() > 0 {
		i := heap.Pop(&ready).(int)
		order = append(order, i)
		for _, d := range g.Tasks[i].Downstream {
			j := g.TaskIndex(d)
			if j < 0 {
				continue
			}
			if indeg[j]--; indeg[j] == 0 {
				heap.Push(&ready, j)
			}
		}
	}
	if len(order) < n { // a cycle: cannot happen in a loaded DAG
		for i := range n {
			if indeg[i] > 0 {
				order = append(order, i)
			}
		}
	}
	return order
}

// intHeap is a min-heap of ints.
type intHeap []int

func (h intHeap) Len() int           { return len(h) }
func (h intHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h intHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// graphNode is a task in the graph tab, or a folded group (Group set).
// Mapped is "[N]" for a mapped task (or group) with N instances in the
// run shown, "[ ]" before it expanded; "" for others.
type graphNode struct {
	TaskID, Group, State, Href, Title string
	Label, Sub, Mapped                string
	X, Y                              string
}

// graphEdge is an edge in the graph tab, between tasks or folded groups.
type graphEdge struct {
	From, To, Path string
}

// graphBox is an unfolded group in the graph tab: a box around its tasks
// whose name, a link, folds it.
type graphBox struct {
	Name, Title, State, Href string
	Mapped                   string // as graphNode's
	X, Y, W, H               string
	LabelX, LabelY           string
}

// runChoice is a run the graph tab can show.
type runChoice struct {
	RunID, Label string
	Selected     bool
}

// graphView is the graph tab.
type graphView struct {
	DAGID          string
	Width, Height  string
	NodeW, NodeH   string
	Nodes          []graphNode
	Edges          []graphEdge
	Groups         []graphBox
	Folded         []string // the groups folded, for the run form
	Runs           []runChoice
	RunID, RunHref string // the run shown; "" when the DAG has none
	RunState       string
}

func (s *Server) dagGraphPage(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	g := info.DAG
	st := s.backend.Store()
	recent, _, err := st.ListRuns(store.RunQuery{DAGID: g.ID, Limit: graphRunChoices})
	if err != nil {
		return err
	}
	var run *store.Run
	runParam := c.QueryParam("run")
	if runParam != "" {
		if run, err = st.GetRun(g.ID, runParam); err != nil {
			return err
		}
	} else if len(recent) > 0 {
		run = recent[0]
	}
	states := map[string]store.TaskState{}
	mapLengths := map[string]int{}
	folded := groupNames(g, c.QueryParams()["fold"])
	v := graphView{DAGID: g.ID, NodeW: svgNum(nodeW), NodeH: svgNum(nodeH), Folded: folded}
	if run != nil {
		v.RunID, v.RunHref, v.RunState = run.RunID, runHref(g.ID, run.RunID), string(run.State)
		tis, err := st.RunTasks(g.ID, []string{run.RunID})
		if err != nil {
			return err
		}
		for _, d := range tis[0] {
			states[d.TaskID] = d.State
			mapLengths[d.TaskID] = d.MapLength
		}
		if !slices.ContainsFunc(recent, func(r *store.Run) bool { return r.RunID == run.RunID }) {
			recent = append(recent, run)
		}
	}
	for _, r := range recent {
		v.Runs = append(v.Runs, runChoice{
			RunID:    r.RunID,
			Label:    r.RunID + " · " + string(r.State),
			Selected: run != nil && r.RunID == run.RunID,
		})
	}
	stateOf := func(taskID string) string { return storeState(states[taskID]) }
	// groupMapped is a group's graphNode.Mapped: its tasks share one list.
	groupMapped := func(gr *dag.Group) string {
		if gr.Map == nil {
			return ""
		}
		n := 0
		for _, id := range gr.Tasks {
			n = max(n, mapLengths[id])
		}
		return mappedMark(n)
	}
	// foldHref is the graph with group name folded or unfolded.
	foldHref := func(name string) string {
		q := url.Values{"fold": toggled(folded, name)}
		if runParam != "" {
			q.Set("run", runParam)
		}
		return dagHref(g.ID, "graph") + "?" + q.Encode()
	}
	verts, up, group := graphShape(g, folded)
	lay := cachedLayout(g.ID+"@"+g.Hash+"\x00"+strings.Join(folded, "\x00"), up, group)
	v.Width, v.Height = svgNum(lay.Width), svgNum(lay.Height)
	v.Nodes = make([]graphNode, len(verts))
	ids := make([]string, len(verts))
	for k, x := range verts {
		pos := lay.Nodes[k]
		if x.task < 0 {
			gr := g.Groups[x.group]
			state := groupState(gr, stateOf)
			ids[k] = gr.Name
			mapped := groupMapped(gr)
			v.Nodes[k] = graphNode{
				Group:  gr.Name,
				State:  state,
				Href:   foldHref(gr.Name),
				Title:  groupTitle(gr) + " · " + state + mappedTitle(mapped) + " · unfold",
				Label:  "▸ " + labelWithMark(gr.Name, mapped, 22),
				Sub:    "group of " + strconv.Itoa(len(gr.Tasks)) + " · " + state,
				Mapped: mapped,
				X:      svgNum(pos.X),
				Y:      svgNum(pos.Y),
			}
			continue
		}
		t := g.Tasks[x.task]
		state := stateOf(t.ID)
		ids[k] = t.ID
		mapped := ""
		if t.Map != nil {
			mapped = mappedMark(mapLengths[t.ID])
		}
		n := graphNode{
			TaskID: t.ID,
			State:  state,
			Title:  t.ID + " · " + t.Plugin + " · " + state + mappedTitle(mapped),
			Label:  labelWithMark(t.ID, mapped, 24),
			Sub:    t.Plugin + " · " + state,
			Mapped: mapped,
			X:      svgNum(pos.X),
			Y:      svgNum(pos.Y),
		}
		if run != nil {
			n.Href = v.RunHref + "?task=" + url.QueryEscape(t.ID)
		}
		v.Nodes[k] = n
	}
	v.Edges = make([]graphEdge, len(lay.Edges))
	for i, e := range lay.Edges {
		v.Edges[i] = graphEdge{From: ids[e.From], To: ids[e.To], Path: e.Path}
	}
	for gi, b := range lay.Boxes {
		if b.W == 0 { // folded, or without tasks
			continue
		}
		gr := g.Groups[gi]
		v.Groups = append(v.Groups, graphBox{
			Name:   gr.Name,
			Mapped: groupMapped(gr),
			Title:  groupTitle(gr) + " · " + groupState(gr, stateOf) + " · fold",
			State:  groupState(gr, stateOf),
			Href:   foldHref(gr.Name),
			X:      svgNum(b.X),
			Y:      svgNum(b.Y),
			W:      svgNum(b.W),
			H:      svgNum(b.H),
			LabelX: svgNum(b.X + 10),
			LabelY: svgNum(b.Y + 15),
		})
	}
	return s.renderDAGTab(c, http.StatusOK, info, "graph", v)
}

// groupTitle is a group's name and description, for a tooltip.
func groupTitle(gr *dag.Group) string {
	if gr.Description == "" {
		return gr.Name
	}
	return gr.Name + " · " + gr.Description
}

// mappedMark is what the graph writes after the name of a mapped task or
// group with n instances: "[n]", or "[ ]" before it expanded (n = 0).
func mappedMark(n int) string {
	if n == 0 {
		return "[ ]"
	}
	return "[" + strconv.Itoa(n) + "]"
}

// mappedTitle is the part of a node's tooltip that says it is mapped.
func mappedTitle(mark string) string {
	switch mark {
	case "":
		return ""
	case "[ ]":
		return " · mapped, not expanded"
	}
	return " · mapped " + mark
}

// labelWithMark is a node's label: name, cut so that the mapped mark after
// it fits in n runes.
func labelWithMark(name, mark string, n int) string {
	if mark == "" {
		return truncate(name, n)
	}
	return truncate(name, max(n-len(mark)-1, 4)) + " " + mark
}

// truncate shortens s to n runes, ending with an ellipsis when it cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
