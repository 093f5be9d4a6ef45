package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/rundiff"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// The run pages: a DAG's runs, a page at a time (runs.html), and one run
// (run.html) with its facts, its tasks, their tries on a Gantt chart, and
// the forms that clear and mark them. The tasks table and the chart are
// one live block, so they change together while the run runs.

// Paging of the runs page.
const (
	defaultRunsPage = 50
	maxRunsPage     = 500
)

// runPageRoutes registers the run pages and their forms.
func (s *Server) runPageRoutes() {
	get, post := http.MethodGet, http.MethodPost
	s.page(get, "/dags/:dag/runs", s.runsPage, RoleViewer)
	s.page(get, "/dags/:dag/compare", s.comparePage, RoleViewer)
	s.page(get, "/dags/:dag/runs/:run", s.runPage, RoleViewer)
	s.page(post, "/dags/:dag/runs/:run/clear", s.clearForm, RoleOperator)
	s.page(post, "/dags/:dag/runs/:run/mark", s.markForm, RoleOperator)
}

// runRow is a run in the runs list.
type runRow struct {
	RunID, Href, State, Type string
	LogicalDate              timeView
	Start, End               *timeView
	Duration                 string
	BackfillID               string
}

// stateFilter is one choice of the runs list's state filter.
type stateFilter struct {
	Label, Href string
	On          bool
}

// runsListView is the runs page.
type runsListView struct {
	DAGID, DAGHref string
	Filters        []stateFilter
	State          string
	Rows           []runRow
	// From and To number the runs shown, from 1; Total is how many the
	// filter selects.
	From, To, Total int
	Prev, Next      string // the pages before and after; "" at the ends
	CompareHref     string // where the form comparing two ticked runs goes
}

func (s *Server) runsPage(c echo.Context) error {
	dagID, err := pathParam(c, "dag")
	if err != nil {
		return err
	}
	q := store.RunQuery{DAGID: dagID, State: store.RunState(c.QueryParam("state"))}
	if q.State != "" && !slices.Contains(runStates, q.State) {
		return badRequest("state: want one of queued, running, success, failed; got %q", q.State)
	}
	if q.Limit, err = queryInt(c, "limit", defaultRunsPage, 1, maxRunsPage); err != nil {
		return err
	}
	if q.Offset, err = queryInt(c, "offset", 0, 0, math.MaxInt32); err != nil {
		return err
	}
	st := s.backend.Store()
	runs, total, err := st.ListRuns(q)
	if err != nil {
		return err
	}
	info, loaded := s.backend.DAG(dagID)
	if !loaded && total == 0 {
		if n, err := st.CountRuns(dagID); err != nil {
			return err
		} else if n == 0 {
			return s.dagNotFound(dagID)
		}
	}
	loc := dagLoc(info.DAG)
	now := time.Now()
	base := dagHref(dagID, "runs")
	pageHref := func(state store.RunState, offset int) string {
		v := url.Values{}
		if state != "" {
			v.Set("state", string(state))
		}
		if q.Limit != defaultRunsPage {
			v.Set("limit", strconv.Itoa(q.Limit))
		}
		if offset > 0 {
			v.Set("offset", strconv.Itoa(offset))
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	v := runsListView{DAGID: dagID, DAGHref: dagHref(dagID), State: string(q.State), Total: total, CompareHref: dagHref(dagID, "compare")}
	v.Filters = append(v.Filters, stateFilter{Label: "all", Href: pageHref("", 0), On: q.State == ""})
	for _, rs := range runStates {
		v.Filters = append(v.Filters, stateFilter{Label: string(rs), Href: pageHref(rs, 0), On: q.State == rs})
	}
	if len(runs) > 0 {
		v.From, v.To = q.Offset+1, q.Offset+len(runs)
	}
	if q.Offset > 0 {
		v.Prev = pageHref(q.State, max(q.Offset-q.Limit, 0))
	}
	if q.Offset+len(runs) < total {
		v.Next = pageHref(q.State, q.Offset+q.Limit)
	}
	v.Rows = make([]runRow, len(runs))
	for i, r := range runs {
		v.Rows[i] = runRow{
			RunID:       r.RunID,
			Href:        runHref(r.DAGID, r.RunID),
			State:       string(r.State),
			Type:        r.RunType,
			LogicalDate: newTimeView(r.LogicalDate, loc, now),
			Start:       timeViewPtr(r.StartDate, loc, now),
			End:         timeViewPtr(r.EndDate, loc, now),
			Duration:    spanText(r.StartDate, r.EndDate, now),
			BackfillID:  r.BackfillID,
		}
	}
	return s.render(c, http.StatusOK, "runs", pageData{Title: dagID + " · Runs", Nav: "dags", Data: v, Events: eventsHref(dagID, "")})
}

// spanText is how long something that started at start has taken: until
// end, or so far; "" before it started.
func spanText(start, end *time.Time, now time.Time) string {
	switch {
	case start == nil || start.IsZero():
		return ""
	case end == nil || end.IsZero():
		return durationText(now.Sub(*start).Truncate(time.Second)) + " so far"
	}
	return durationText(end.Sub(*start))
}

// runView is the run page.
type runView struct {
	DAGID, RunID, State, Type string
	// Href is the run page's own path; Self that with the query, where
	// forms send the browser back.
	Href, Self, DAGHref, RunsHref string
	DAGLoaded                     bool
	LogicalDate                   timeView
	IntervalStart, IntervalEnd    timeView
	Queued                        timeView
	Start, End                    *timeView
	Duration                      string
	Params                        string // indented JSON
	BackfillID, BackfillHref      string
	Tasks                         []taskRow
	Gantt                         ganttChart
	// Task is the task ?task= picks, with its tries; Missing names a
	// task the run does not have.
	Task       *taskDetail
	Missing    string
	CanOperate bool
}

// taskRow is a task instance in the run's tasks table: one per task, a
// mapped task's standing for its instances.
type taskRow struct {
	TaskID, State, Href string
	Try, MaxTries       int
	// Mapped is set for a mapped task, Instances to how many it has once
	// it expanded.
	Mapped    bool
	Instances int
	Start     *timeView
	Duration  string
	LogHref   string // the latest try's log; "" before the first try
	Selected  bool
	Cached    *cachedLink
}

// cachedLink marks a task instance that took its result from the task
// cache (docs/artifacts.md#the-task-cache): a link to the task in the
// run whose try it took.
type cachedLink struct {
	Href, RunID string
	Try         int
}

func newCachedLink(from *store.TryRef) *cachedLink {
	if from == nil {
		return nil
	}
	return &cachedLink{Href: runHref(from.DAGID, from.RunID) + "?task=" + url.QueryEscape(from.TaskID), RunID: from.RunID, Try: from.Try}
}

// artifactRow is an artifact of the picked task, with where to download
// it from the API.
type artifactRow struct {
	Name, Path, Size, SHA256, Short, Href string
	Dir                                   bool
}

func artifactRows(ti *store.TaskInstance) []artifactRow {
	rows := make([]artifactRow, len(ti.Artifacts))
	for i, a := range ti.Artifacts {
		rows[i] = artifactRow{Name: a.Name, Path: a.Path, Size: humanize.IBytes(uint64(a.Size)), SHA256: a.SHA256, Short: shortHash(a.SHA256), Dir: a.Dir,
			Href: "/api/v1/dags/" + url.PathEscape(ti.DAGID) + "/runs/" + url.PathEscape(ti.RunID) +
				"/tasks/" + url.PathEscape(ti.TaskID) + "/artifacts/" + url.PathEscape(a.Name)}
	}
	return rows
}

// taskDetail is the task the run page picked, with its tries: a task, or
// an instance of a mapped one.
type taskDetail struct {
	TaskID, State, Queue, Pool, Error string
	Try, MaxTries                     int
	// Key is the instance key, TASK[i] for an instance of a mapped task,
	// whose MapIndex is i (else -1) and Item its element of the list
	// (JSON); TaskHref is then the run page with its task picked.
	Key            string
	MapIndex       int
	Item, TaskHref string
	// Instances lists the instances of a mapped task, a page of them.
	Instances *instancesView
	NotBefore *timeView
	Outputs   string // indented JSON; "" without outputs
	Tries     []tryRow
	// LogTail is the end of the log of a latest try that failed, shown
	// under its error; LogHref that try's log page.
	LogTail, LogHref string
	// Rendered is the manifest of the latest try; nil before the first,
	// or for a try recorded before manifests were.
	Rendered *renderedView
	// Cached is set when the task took its result from the task cache;
	// Artifacts are what its successful try stored, or took from there.
	Cached    *cachedLink
	Artifacts []artifactRow
}

// renderedView is the "Rendered" panel of the picked task: what its latest
// try ran (docs/reproducibility.md#what-each-try-records).
type renderedView struct {
	Try                            int
	With                           string // indented JSON
	DAGVersion, DAGVersionShort    string
	Plugin, PluginSHA256, Worker   string
	When, Env, Params, OutputsRead string
	Facts                          []string // KEY=VALUE
}

func newRenderedView(tr *store.Try) *renderedView {
	m := tr.Manifest
	if m == nil {
		return nil
	}
	v := &renderedView{
		Try:          tr.Number,
		DAGVersion:   m.DAGVersion,
		Plugin:       strings.TrimSpace(m.Plugin.Name + " " + m.Plugin.Version),
		PluginSHA256: m.Plugin.SHA256,
		Env:          strings.Join(m.Env, " "),
	}
	v.DAGVersionShort = v.DAGVersion[:min(12, len(v.DAGVersion))]
	if b, err := json.MarshalIndent(m.With, "", "  "); err == nil {
		v.With = string(b)
	}
	if m.Worker != nil {
		v.Worker = m.Worker.ID + " on " + m.Worker.Host + " (kiln " + m.Worker.KilnVersion + ")"
	}
	if m.When != nil {
		v.When = fmt.Sprintf("%s → %t", m.When.Expr, m.When.Result)
	}
	if len(m.Params) > 0 {
		if b, err := json.Marshal(m.Params); err == nil {
			v.Params = string(b)
		}
	}
	if len(m.OutputsRead) > 0 {
		if b, err := json.Marshal(m.OutputsRead); err == nil {
			v.OutputsRead = string(b)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Plugin.Facts)) {
		v.Facts = append(v.Facts, k+"="+m.Plugin.Facts[k])
	}
	return v
}

// tryRow is one try of the picked task.
type tryRow struct {
	Number                  int
	State, Worker           string
	Queued                  *timeView
	Started, Ended          *timeView
	Waited, Ran             string
	ExitCode, Error, LogURL string
}

func (s *Server) runPage(c echo.Context) error {
	run, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	st := s.backend.Store()
	now := time.Now()
	info, loaded := s.backend.DAG(run.DAGID)
	loc := dagLoc(info.DAG)
	href := runHref(run.DAGID, run.RunID)
	v := runView{
		DAGID:         run.DAGID,
		RunID:         run.RunID,
		State:         string(run.State),
		Type:          run.RunType,
		Href:          href,
		Self:          c.Request().URL.RequestURI(),
		DAGHref:       dagHref(run.DAGID),
		RunsHref:      dagHref(run.DAGID, "runs"),
		DAGLoaded:     loaded,
		LogicalDate:   newTimeView(run.LogicalDate, loc, now),
		IntervalStart: newTimeView(run.DataIntervalStart, loc, now),
		IntervalEnd:   newTimeView(run.DataIntervalEnd, loc, now),
		Queued:        newTimeView(run.QueuedAt, loc, now),
		Start:         timeViewPtr(run.StartDate, loc, now),
		End:           timeViewPtr(run.EndDate, loc, now),
		Duration:      spanText(run.StartDate, run.EndDate, now),
		BackfillID:    run.BackfillID,
		CanOperate:    mayOperate(c),
	}
	if run.BackfillID != "" {
		v.BackfillHref = "/backfills/" + url.PathEscape(run.BackfillID)
	}
	params := run.Params
	if params == nil {
		params = map[string]any{}
	}
	if b, err := json.MarshalIndent(params, "", "  "); err == nil {
		v.Params = string(b)
	}
	// The run's head is a live block of its own: it needs no task.
	if c.Request().Header.Get(fragmentHeader) == "run-head" {
		return s.render(c, http.StatusOK, "run", pageData{Title: run.RunID, Nav: "dags", Data: v})
	}

	// One instance per task: a mapped task's instances are read only
	// when it is picked.
	tis, err := st.TaskInstancesPerTask(run.DAGID, run.RunID)
	if err != nil {
		return err
	}
	s.sortTaskInstances(run.DAGID, tis)
	picked, pickedIdx, err := pickedTask(c)
	if err != nil {
		return err
	}
	instanceOffset, err := queryInt(c, "instance_offset", 0, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	rows := make([]ganttInput, 0, len(tis))
	for _, ti := range tis {
		selectHref := taskPageHref(href, ti.TaskID, store.NoMapIndex)
		row := taskRow{
			TaskID:    ti.TaskID,
			State:     storeState(ti.State),
			Href:      selectHref,
			Try:       ti.TryNumber,
			MaxTries:  ti.MaxTries,
			Start:     timeViewPtr(ti.StartDate, loc, now),
			Duration:  instanceDuration(ti, now),
			Selected:  ti.TaskID == picked,
			Cached:    newCachedLink(ti.CachedFrom),
			Mapped:    expandedTask(ti) || s.mappedTask(run.DAGID, ti.TaskID),
			Instances: ti.MapLength,
		}
		if ti.TryNumber > 0 {
			row.LogHref = logHref(ti.DAGID, ti.RunID, ti.TaskID, ti.TryNumber)
		}
		v.Tasks = append(v.Tasks, row)
		var tries []*store.Try
		if expandedTask(ti) {
			tries = mappedSpan(ti)
		} else if tries, err = st.Tries(ti.DAGID, ti.RunID, ti.TaskID); err != nil {
			return err
		}
		rows = append(rows, ganttInput{TaskID: ti.TaskID, Href: selectHref, Selected: row.Selected, Tries: tries, Instances: ti.MapLength})
		if row.Selected {
			if v.Task, err = s.pickedDetail(ti, pickedIdx, instanceOffset, selectHref, tries, loc, now); err != nil {
				return err
			}
		}
	}
	if picked != "" && v.Task == nil {
		v.Missing = store.InstanceKey(picked, pickedIdx)
	}
	v.Gantt = layoutGantt(rows, now)
	return s.render(c, http.StatusOK, "run", pageData{Title: run.RunID, Nav: "dags", Data: v, Events: eventsHref(run.DAGID, run.RunID)})
}

// pickedDetail is the panel of the task ti the run page picked, with its
// tries: of ti itself, or with idx >= 0 of its instance idx, nil when it
// has none; a mapped task's lists a page of its instances from offset.
func (s *Server) pickedDetail(ti *store.TaskInstance, idx, offset int, taskHref string, tries []*store.Try, loc *time.Location, now time.Time) (*taskDetail, error) {
	st := s.backend.Store()
	var err error
	switch {
	case idx >= ti.MapLength:
		return nil, nil // Missing names it
	case idx >= 0:
		if ti, err = st.GetTaskInstance(ti.DAGID, ti.RunID, store.InstanceKey(ti.TaskID, idx)); err != nil {
			return nil, err
		}
		if tries, err = st.Tries(ti.DAGID, ti.RunID, ti.Key()); err != nil {
			return nil, err
		}
	case expandedTask(ti):
		tries = nil // the span the Gantt chart draws for it: it has none
	}
	d := newTaskDetail(ti, tries, loc, now)
	switch {
	case idx >= 0:
		d.TaskHref = taskHref
	case expandedTask(ti):
		ins, err := s.instancesOf(ti)
		if err != nil {
			return nil, err
		}
		d.Instances = newInstancesView(ins, offset, taskHref, now)
	}
	if FailedTry(ti.State) && ti.TryNumber > 0 {
		k := wire.TryKey{DAGID: ti.DAGID, RunID: ti.RunID, TaskID: ti.Key(), Try: ti.TryNumber}
		if d.LogTail, err = readLogLines(s.backend.LogPath(k), logTailLines, logTailBytes); err != nil {
			return nil, err
		}
		d.LogHref = logHref(ti.DAGID, ti.RunID, ti.Key(), ti.TryNumber)
	}
	return d, nil
}

func newTaskDetail(ti *store.TaskInstance, tries []*store.Try, loc *time.Location, now time.Time) *taskDetail {
	d := &taskDetail{
		TaskID:    ti.TaskID,
		Key:       ti.Key(),
		MapIndex:  ti.MapIndex,
		State:     storeState(ti.State),
		Queue:     ti.Queue,
		Pool:      ti.Pool,
		Error:     ti.Error,
		Try:       ti.TryNumber,
		MaxTries:  ti.MaxTries,
		Cached:    newCachedLink(ti.CachedFrom),
		Artifacts: artifactRows(ti),
	}
	if !ti.NotBefore.IsZero() {
		d.NotBefore = timeViewPtr(&ti.NotBefore, loc, now)
	}
	if ti.MapIndex >= 0 {
		_, d.Item = itemText(ti.Item)
	}
	if len(ti.Outputs) > 0 {
		if b, err := json.MarshalIndent(ti.Outputs, "", "  "); err == nil {
			d.Outputs = string(b)
		}
	}
	if len(tries) > 0 {
		d.Rendered = newRenderedView(tries[len(tries)-1])
	}
	for i := len(tries) - 1; i >= 0; i-- { // the latest first
		tr := tries[i]
		qs, qe, rs, re := trySpans(tr, now)
		row := tryRow{
			Number:  tr.Number,
			State:   string(tr.State),
			Worker:  tr.Worker,
			Started: timeViewPtr(tr.StartDate, loc, now),
			Ended:   timeViewPtr(tr.EndDate, loc, now),
			Error:   tr.Error,
			LogURL:  logHref(tr.DAGID, tr.RunID, tr.Key(), tr.Number),
		}
		if !tr.QueuedAt.IsZero() {
			row.Queued = timeViewPtr(&tr.QueuedAt, loc, now)
		}
		if !qs.IsZero() {
			row.Waited = durationText(qe.Sub(qs))
		}
		if !rs.IsZero() {
			row.Ran = durationText(re.Sub(rs))
		}
		if tr.ExitCode != nil {
			row.ExitCode = strconv.Itoa(*tr.ExitCode)
		}
		d.Tries = append(d.Tries, row)
	}
	return d
}

// clearForm is the clear forms of the run page: POST with tasks (none:
// every task), downstream and only_failed, and map_index for instances of
// the one mapped task in tasks; then back to the page. The form of a
// mapped task's instances says ticked: it clears the instances ticked,
// never the whole task.
func (s *Server) clearForm(c echo.Context) error {
	run, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return badRequest("form: %v", err)
	}
	indexes, err := formMapIndexes(form["map_index"])
	if err != nil {
		return err
	}
	if formBool(form.Get("ticked")) && len(indexes) == 0 {
		return badRequest("tick the instances to clear")
	}
	req := scheduler.ClearRequest{
		Tasks:      form["tasks"],
		MapIndexes: indexes,
		Downstream: formBool(form.Get("downstream")),
		OnlyFailed: formBool(form.Get("only_failed")),
	}
	if _, err := s.backend.Clear(c.Request().Context(), run.DAGID, run.RunID, req); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, backTo(form.Get("next"), runHref(run.DAGID, run.RunID)))
}

// markForm is the mark forms of the run page: POST with state success or
// failed, and task to mark one task instead of the run, with map_index
// one instance of a mapped task.
func (s *Server) markForm(c echo.Context) error {
	run, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	state, task := c.FormValue("state"), c.FormValue("task")
	if state != "success" && state != "failed" {
		return badRequest("state: want success or failed, got %q", state)
	}
	ctx := c.Request().Context()
	indexes, err := formMapIndexes(c.Request().Form["map_index"])
	switch {
	case err != nil:
		return err
	case len(indexes) > 1 || len(indexes) == 1 && task == "":
		return badRequest("map_index: want one, with the task of the instance")
	case len(indexes) == 1:
		task = store.InstanceKey(task, indexes[0])
	}
	if task != "" {
		_, err = s.backend.MarkTasks(ctx, run.DAGID, run.RunID, []string{task}, store.TaskState(state))
	} else {
		_, err = s.backend.MarkRun(ctx, run.DAGID, run.RunID, store.RunState(state))
	}
	if err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, backTo(c.FormValue("next"), runHref(run.DAGID, run.RunID)))
}

// backTo is where a form sends the browser once done: its "next" field
// when that is a page of the same run (or its own page), else page.
func backTo(next, page string) string {
	if p := localPath(next, ""); p != "" {
		u, err := url.Parse(p)
		if err == nil && (u.Path == page || u.EscapedPath() == page) {
			return p
		}
	}
	return page
}

// formBool reads a checkbox: present with any value but "0", "false" or
// "off" is true.
func formBool(v string) bool {
	switch v {
	case "", "0", "false", "off":
		return false
	}
	return true
}

// logHref is the path of a try's log page; key is the try's instance
// key, TASK[i] for an instance of a mapped task.
func logHref(dagID, runID, key string, try int) string {
	h := runHref(dagID, runID) + "/tasks/"
	if taskID, idx, ok := store.SplitInstanceKey(key); ok && idx >= 0 {
		return h + url.PathEscape(taskID) + "/logs?map_index=" + strconv.Itoa(idx) + "&try=" + strconv.Itoa(try)
	}
	return h + url.PathEscape(key) + "/logs?try=" + strconv.Itoa(try)
}

// compareView is the comparison of two runs of a DAG
// (docs/reproducibility.md#comparing-two-runs).
type compareView struct {
	DAGID, DAGHref, RunsHref string
	A, B                     runRef
	Same                     bool
	VersionLines             []diffLine // the unified diff of the sources
	Params                   []compareRow
	Tasks                    []compareRow
}

// compareRow is a difference: What is a param or a task's field, A and B
// its values as text (JSON for values).
type compareRow struct {
	Task, What, A, B string
	State            bool // A and B are task states
}

func compareRows(d *rundiff.Diff) (params, tasks []compareRow) {
	for _, p := range d.Params {
		params = append(params, compareRow{What: p.Key, A: rundiff.ValueText(p.A), B: rundiff.ValueText(p.B)})
	}
	for _, t := range d.Tasks {
		add := func(what, a, b string) { tasks = append(tasks, compareRow{Task: t.TaskID, What: what, A: a, B: b}) }
		values := func(prefix string, vs []rundiff.Value) {
			for _, v := range vs {
				add(prefix+v.Key, rundiff.ValueText(v.A), rundiff.ValueText(v.B))
			}
		}
		change := func(what string, c *rundiff.Change) {
			if c != nil {
				add(what, c.A, c.B)
			}
		}
		if t.Only != "" {
			add("only in "+t.Only, "", "")
			continue
		}
		values("with.", t.With)
		change("plugin", t.Plugin)
		change("plugin sha256", t.PluginSHA256)
		change("environment key", t.EnvKey)
		values("read ", t.OutputsRead)
		values("wrote ", t.Outputs)
		if t.State != nil {
			tasks = append(tasks, compareRow{Task: t.TaskID, What: "state", A: t.State.A, B: t.State.B, State: true})
		}
		if t.Duration != nil {
			add("duration", rundiff.Seconds(t.Duration.A), rundiff.Seconds(t.Duration.B))
		}
	}
	return params, tasks
}

type runRef struct{ RunID, Href, Version string }

// comparePage shows what differs between the two runs ?run= names twice.
func (s *Server) comparePage(c echo.Context) error {
	dagID, err := pathParam(c, "dag")
	if err != nil {
		return err
	}
	runs := c.QueryParams()["run"]
	if len(runs) != 2 {
		return badRequest("tick two runs to compare; %d were given", len(runs))
	}
	d, err := rundiff.Compute(s.backend.Store(), dagID, runs[0], dagID, runs[1])
	if errors.Is(err, rundiff.ErrNotFound) {
		return notFound("%v", err)
	}
	if err != nil {
		return err
	}
	v := compareView{DAGID: dagID, DAGHref: dagHref(dagID), RunsHref: dagHref(dagID, "runs"), Same: d.Same,
		A: runRef{RunID: runs[0], Href: runHref(dagID, runs[0]), Version: shortHash(d.A.DAGVersion)},
		B: runRef{RunID: runs[1], Href: runHref(dagID, runs[1]), Version: shortHash(d.B.DAGVersion)}}
	v.Params, v.Tasks = compareRows(d)
	if d.Version != nil {
		for line := range strings.Lines(d.Version.Diff) {
			line = strings.TrimSuffix(line, "\n")
			kind := "ctx"
			switch {
			case strings.HasPrefix(line, "@@"), strings.HasPrefix(line, "--- "), strings.HasPrefix(line, "+++ "):
				kind = "hunk"
			case strings.HasPrefix(line, "+"):
				kind = "add"
			case strings.HasPrefix(line, "-"):
				kind = "del"
			}
			v.VersionLines = append(v.VersionLines, diffLine{Kind: kind, Text: line})
		}
	}
	return s.render(c, http.StatusOK, "compare", pageData{Title: dagID + " · Compare runs", Nav: "dags", Data: v})
}
