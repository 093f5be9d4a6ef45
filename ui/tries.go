package ui

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

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

// lookupTask resolves the run and task of a request's path, answering 404
// for either that does not exist.
func (s *Server) lookupTask(c echo.Context) (*store.Run, string, error) {
	run, err := s.lookupRun(c)
	if err != nil {
		return nil, "", err
	}
	taskID, err := pathParam(c, "task")
	if err != nil {
		return nil, "", err
	}
	if _, err := s.backend.Store().GetTaskInstance(run.DAGID, run.RunID, taskID); errors.Is(err, store.ErrNotFound) {
		return nil, "", notFound("task %q not found in run %q of DAG %q", taskID, run.RunID, run.DAGID)
	} else if err != nil {
		return nil, "", err
	}
	return run, taskID, nil
}

// listTries answers GET …/tasks/{task}/tries: every try of the task
// instance, oldest first, each with its manifest.
func (s *Server) listTries(c echo.Context) error {
	run, taskID, err := s.lookupTask(c)
	if err != nil {
		return err
	}
	tries, err := s.backend.Store().Tries(run.DAGID, run.RunID, taskID)
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
	run, taskID, err := s.lookupTask(c)
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
	tr, err := s.backend.Store().GetTry(run.DAGID, run.RunID, taskID, n)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("task %q of run %q has no try %d", taskID, run.RunID, n)
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, tryDetail(tr))
}
