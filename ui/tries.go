package ui

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/suggest"
	"github.com/kilnhq/kiln/store"
)

// TryDetail is one try of a task instance with its manifest, as
// GET …/tasks/{task}/tries[/{n}] answer it (docs/api.md#tries).
type TryDetail struct {
	DAGID  string `json:"dag_id"`
	RunID  string `json:"run_id"`
	TaskID string `json:"task_id"`
	// MapIndex is the map index of the try's task instance, -1 for an
	// unmapped task (docs/api.md#mapped-tasks).
	MapIndex int `json:"map_index"`
	Try
	// Manifest is what the try ran (docs/reproducibility.md#what-each-try-records); null for a
	// try recorded before manifests were.
	Manifest *store.Manifest `json:"manifest"`
}

func tryDetail(tr *store.Try) TryDetail {
	return TryDetail{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.TaskID, MapIndex: tr.MapIndex, Try: NewTry(tr), Manifest: tr.Manifest}
}

// lookupTask resolves the run and task instance of a request's path:
// {task}, or with ?map_index=N instance N of that mapped task. A run that
// does not exist is a 404, and so is a task the run does not have, naming
// the closest one it has; a map index the task does not have is a 400.
func (s *Server) lookupTask(c echo.Context) (*store.Run, *store.TaskInstance, error) {
	run, err := s.lookupRun(c)
	if err != nil {
		return nil, nil, err
	}
	taskID, err := pathParam(c, "task")
	if err != nil {
		return nil, nil, err
	}
	key, err := s.instanceKey(c, run, taskID)
	if err != nil {
		return nil, nil, err
	}
	ti, err := s.findTaskInstance(run, key)
	if err != nil {
		return nil, nil, err
	}
	return run, ti, nil
}

// taskNotFound is the 404 of a task the run does not have, naming the
// closest one it has.
func (s *Server) taskNotFound(run *store.Run, task string, tis []*store.TaskInstance) error {
	var ids []string
	for _, ti := range tis {
		if ti.MapIndex < 0 {
			ids = append(ids, ti.TaskID)
		}
	}
	return notFound("task %q not found in run %q of DAG %q%s", task, run.RunID, run.DAGID, suggest.DidYouMean(task, ids))
}

// listTries answers GET …/tasks/{task}/tries: every try of the task
// instance, oldest first, each with its manifest.
func (s *Server) listTries(c echo.Context) error {
	run, ti, err := s.lookupTask(c)
	if err != nil {
		return err
	}
	tries, err := s.backend.Store().Tries(run.DAGID, run.RunID, ti.Key())
	if err != nil {
		return err
	}
	out := make([]TryDetail, len(tries))
	for i, tr := range tries {
		out[i] = tryDetail(tr)
	}
	return c.JSON(http.StatusOK, out)
}

// getTry answers GET …/tasks/{task}/tries/{n}.
func (s *Server) getTry(c echo.Context) error {
	run, ti, err := s.lookupTask(c)
	if err != nil {
		return err
	}
	raw, err := pathParam(c, "n")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return badRequest("try number %q: want a whole number from 1", raw)
	}
	tr, err := s.backend.Store().GetTry(run.DAGID, run.RunID, ti.Key(), n)
	switch {
	case errors.Is(err, store.ErrNotFound) && expandedTask(ti):
		return notFound("%s", notTriedText(run.RunID, ti))
	case errors.Is(err, store.ErrNotFound):
		return notFound("task %q of run %q has no try %d", ti.Key(), run.RunID, n)
	case err != nil:
		return err
	}
	return c.JSON(http.StatusOK, tryDetail(tr))
}
