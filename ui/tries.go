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
	Try
	// Manifest is what the try ran (docs/reproducibility.md#what-each-try-records); null for a
	// try recorded before manifests were.
	Manifest *store.Manifest `json:"manifest"`
}

func tryDetail(tr *store.Try) TryDetail {
	return TryDetail{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.TaskID, Try: NewTry(tr), Manifest: tr.Manifest}
}

// lookupTask resolves the run and task instance of a request's path. A
// run that does not exist is a 404, and so is a task the run does not
// have, naming the closest one it has.
func (s *Server) lookupTask(c echo.Context) (*store.Run, *store.TaskInstance, error) {
	run, err := s.lookupRun(c)
	if err != nil {
		return nil, nil, err
	}
	taskID, err := pathParam(c, "task")
	if err != nil {
		return nil, nil, err
	}
	st := s.backend.Store()
	ti, err := st.GetTaskInstance(run.DAGID, run.RunID, taskID)
	if errors.Is(err, store.ErrNotFound) {
		tis, err := st.TaskInstances(run.DAGID, run.RunID)
		if err != nil {
			return nil, nil, err
		}
		return nil, nil, s.taskNotFound(run, taskID, tis)
	}
	if err != nil {
		return nil, nil, err
	}
	return run, ti, nil
}

// taskNotFound is the 404 of a task the run does not have, naming the
// closest one it has.
func (s *Server) taskNotFound(run *store.Run, task string, tis []*store.TaskInstance) error {
	ids := make([]string, len(tis))
	for i, ti := range tis {
		ids[i] = ti.TaskID
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
	tries, err := s.backend.Store().Tries(run.DAGID, run.RunID, ti.TaskID)
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
	taskID := ti.TaskID
	raw, err := pathParam(c, "n")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return badRequest("try number %q: want a whole number from 1", raw)
	}
	tr, err := s.backend.Store().GetTry(run.DAGID, run.RunID, taskID, n)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("task %q of run %q has no try %d", taskID, run.RunID, n)
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tryDetail(tr))
}
