package ui

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// The run page's view of a mapped task (docs/api.md#mapped-tasks): its
// row stands for its instances together, the panel of the picked task
// lists them a page at a time, and ?task=TASK&map_index=N picks one, with
// its tries and log as any task's.

// instancePage is how many instances the panel of a mapped task lists at a
// time: a map over 10,000 items pages through them.
const instancePage = 1000

// itemChars is where an item is cut in the list of instances; its tooltip
// holds up to itemTitleChars.
const (
	itemChars      = 60
	itemTitleChars = 1000
)

// pickedTask reads what the run page's query picks: ?task=, with
// ?map_index=N an instance of that mapped task. ?task=TASK[N] picks the
// instance too, as the keys the API lists name it.
func pickedTask(c echo.Context) (taskID string, idx int, err error) {
	taskID = c.QueryParam("task")
	if idx, err = queryMapIndex(c); err != nil {
		return "", 0, err
	}
	if id, i, ok := store.SplitInstanceKey(taskID); ok && i >= 0 && idx == store.NoMapIndex {
		return id, i, nil
	}
	return taskID, idx, nil
}

// instancesOf returns the instances of the expanded mapped task that
// parent stands for, in index order: those of its list, not those an
// earlier, longer one left.
func (s *Server) instancesOf(parent *store.TaskInstance) ([]*store.TaskInstance, error) {
	tis, err := s.backend.Store().TaskInstances(parent.DAGID, parent.RunID)
	if err != nil {
		return nil, err
	}
	ins := slices.DeleteFunc(tis, func(ti *store.TaskInstance) bool {
		return ti.TaskID != parent.TaskID || ti.MapIndex < 0 || ti.MapIndex >= parent.MapLength
	})
	slices.SortFunc(ins, func(a, b *store.TaskInstance) int { return a.MapIndex - b.MapIndex })
	return ins, nil
}

// instancesView is the list of a mapped task's instances in its panel,
// one page of them.
type instancesView struct {
	Rows []instanceRow
	// Total is how many instances the task has; From and To number those
	// shown, from 1. Prev and Next are the pages around ("" at the ends).
	Total, From, To int
	Prev, Next      string
}

// instanceRow is one instance of a mapped task.
type instanceRow struct {
	Index             int
	Item, ItemTitle   string // the item as JSON, cut to itemChars and itemTitleChars
	State, Href       string
	Try, MaxTries     int
	Duration, LogHref string // LogHref: the latest try's log; "" before the first
}

// newInstancesView lists instances ins of a mapped task (in index order)
// from offset, at most instancePage of them; pageHref is the run page with
// the task picked, to which the pages add their offset.
func newInstancesView(ins []*store.TaskInstance, offset int, pageHref string, now time.Time) *instancesView {
	v := &instancesView{Total: len(ins)}
	offset = min(offset, len(ins))
	end := min(offset+instancePage, len(ins))
	if end > offset {
		v.From, v.To = offset+1, end
	}
	if offset > 0 {
		v.Prev = instancesPageHref(pageHref, max(offset-instancePage, 0))
	}
	if end < len(ins) {
		v.Next = instancesPageHref(pageHref, end)
	}
	v.Rows = make([]instanceRow, 0, end-offset)
	for _, in := range ins[offset:end] {
		row := instanceRow{
			Index:    in.MapIndex,
			State:    storeState(in.State),
			Href:     pageHref + "&map_index=" + strconv.Itoa(in.MapIndex),
			Try:      in.TryNumber,
			MaxTries: in.MaxTries,
			Duration: instanceDuration(in, now),
		}
		row.Item, row.ItemTitle = itemText(in.Item)
		if in.TryNumber > 0 {
			row.LogHref = logHref(in.DAGID, in.RunID, in.Key(), in.TryNumber)
		}
		v.Rows = append(v.Rows, row)
	}
	return v
}

// instancesPageHref is the page of instances from offset.
func instancesPageHref(pageHref string, offset int) string {
	if offset == 0 {
		return pageHref
	}
	return pageHref + "&instance_offset=" + strconv.Itoa(offset)
}

// instanceDuration is how long a task instance ran, as the tasks table
// says it: "" for one that ended without running.
func instanceDuration(ti *store.TaskInstance, now time.Time) string {
	if ti.State.Finished() && ti.EndDate != nil && ti.StartDate == nil {
		return "" // skipped, upstream_failed, marked
	}
	return spanText(ti.StartDate, ti.EndDate, now)
}

// itemText is an item as JSON, cut to itemChars for the list and to
// itemTitleChars for its tooltip.
func itemText(item any) (short, title string) {
	b, err := json.Marshal(item)
	if err != nil {
		return "", ""
	}
	s := string(b)
	return cutLabel(s, itemChars), cutLabel(s, itemTitleChars)
}

// mappedSpan is what a mapped task's row of the Gantt chart draws, as one
// try: from the task's expansion to its end, in its state; its instances'
// own tries are on their panels.
func mappedSpan(parent *store.TaskInstance) []*store.Try {
	if parent.StartDate == nil {
		return nil
	}
	span := &store.Try{MapIndex: store.NoMapIndex, DAGID: parent.DAGID, RunID: parent.RunID, TaskID: parent.TaskID,
		State: parent.State, QueuedAt: *parent.StartDate, StartDate: parent.StartDate}
	if parent.State.Finished() {
		span.EndDate = parent.EndDate
	}
	return []*store.Try{span}
}

// instancesText is "1 instance" or "N instances".
func instancesText(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return strconv.Itoa(n) + " instances"
}

// formMapIndexes reads the map_index fields of a form: the instances of
// the mapped task its task field names.
func formMapIndexes(values []string) ([]int, error) {
	var out []int
	for _, v := range values {
		i, err := strconv.Atoi(v)
		if err != nil || i < 0 {
			return nil, badRequest("map_index: want a whole number from 0, got %q", v)
		}
		out = append(out, i)
	}
	return out, nil
}

// taskPageHref is the run page with a task, or an instance of a mapped
// one (idx >= 0), picked.
func taskPageHref(runPage, taskID string, idx int) string {
	h := runPage + "?task=" + url.QueryEscape(taskID)
	if idx >= 0 {
		h += "&map_index=" + strconv.Itoa(idx)
	}
	return h
}
