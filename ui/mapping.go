package ui

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// Mapped tasks in the API and the pages (docs/api.md#mapped-tasks). A
// mapped task has one task instance that stands for it as a whole, under
// its id, with its map_length and the state of its instances taken
// together; and one instance per element of its list, which a request
// names by the task's id and ?map_index=N.

// queryMapIndex reads ?map_index: the map index it names, or
// store.NoMapIndex when the request names none.
func queryMapIndex(c echo.Context) (int, error) {
	q := c.QueryParam("map_index")
	if q == "" {
		return store.NoMapIndex, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 0 {
		return 0, badRequest("map_index: want a whole number from 0, got %q", q)
	}
	return n, nil
}

// instanceKey returns the instance key of what a request names by task
// id and ?map_index: the task's id without a map index, else the key of
// that instance of the mapped task, once checked that the task has it.
func (s *Server) instanceKey(c echo.Context, run *store.Run, taskID string) (string, error) {
	idx, err := queryMapIndex(c)
	if err != nil || idx == store.NoMapIndex {
		return taskID, err
	}
	ti, err := s.findTaskInstance(run, taskID)
	if err != nil {
		return "", err
	}
	if err := s.checkMapIndex(run, ti, idx); err != nil {
		return "", err
	}
	return store.InstanceKey(taskID, idx), nil
}

// checkMapIndex says why ti, a task's own instance, has no instance with
// map index idx, or nil when it has: a 400 that names the problem.
func (s *Server) checkMapIndex(run *store.Run, ti *store.TaskInstance, idx int) error {
	switch {
	case ti.MapIndex >= 0:
		return badRequest("map_index %d: %q is an instance of a mapped task already: name the task %q with map_index", idx, ti.Key(), ti.TaskID)
	case ti.MapLength > 0 && idx < ti.MapLength:
		return nil
	case ti.MapLength > 0:
		return badRequest("map_index %d: task %q has map indexes 0 to %d in run %q", idx, ti.TaskID, ti.MapLength-1, run.RunID)
	case s.mappedTask(run.DAGID, ti.TaskID):
		return badRequest("map_index %d: task %q is mapped but has not expanded in run %q: it has no instances yet", idx, ti.TaskID, run.RunID)
	}
	return badRequest("map_index %d: task %q is not mapped: only the instances of a mapped task have a map index", idx, ti.TaskID)
}

// mappedTask reports whether the loaded DAG dagID has a mapped task id.
func (s *Server) mappedTask(dagID, id string) bool {
	info, ok := s.backend.DAG(dagID)
	if !ok || info.DAG == nil {
		return false
	}
	t := info.DAG.Task(id)
	return t != nil && t.Map != nil
}

// findTaskInstance returns the task instance of a run by instance key: a
// 404 naming the closest task the run has when it has none.
func (s *Server) findTaskInstance(run *store.Run, key string) (*store.TaskInstance, error) {
	st := s.backend.Store()
	ti, err := st.GetTaskInstance(run.DAGID, run.RunID, key)
	if errors.Is(err, store.ErrNotFound) {
		tis, err := st.TaskInstances(run.DAGID, run.RunID)
		if err != nil {
			return nil, err
		}
		return nil, s.taskNotFound(run, key, tis)
	}
	return ti, err
}

// expandedTask reports whether ti stands for a mapped task that expanded
// into instances.
func expandedTask(ti *store.TaskInstance) bool { return ti.MapIndex < 0 && ti.MapLength > 0 }

// notTriedText says why a task instance has no try to show: it has not
// been tried yet, or it stands for a mapped task, whose instances have
// the tries.
func notTriedText(runID string, ti *store.TaskInstance) string {
	if expandedTask(ti) {
		return fmt.Sprintf("task %q of run %q is mapped: its instances have the tries; name one with map_index (0 to %d)", ti.TaskID, runID, ti.MapLength-1)
	}
	return fmt.Sprintf("task %q of run %q has not been tried yet", ti.Key(), runID)
}
