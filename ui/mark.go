package ui

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// MarkRequest is the body of PATCH /api/v1/dags/{dag}/runs/{run} and of
// PATCH /api/v1/dags/{dag}/runs/{run}/tasks/{task}: the state to set by
// hand, "success" or "failed".
type MarkRequest struct {
	State *string `json:"state"` // required
}

// markState reads a MarkRequest and returns its state.
func markState(c echo.Context) (string, error) {
	var req MarkRequest
	if err := decodeBody(c, &req, false); err != nil {
		return "", err
	}
	switch {
	case req.State == nil:
		return "", badRequest("state: required (success or failed)")
	case *req.State != "success" && *req.State != "failed":
		return "", badRequest("state: want success or failed, got %q", *req.State)
	}
	return *req.State, nil
}

// patchRun marks a run success or failed and answers the run as it is
// then.
func (s *Server) patchRun(c echo.Context) error {
	run, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	state, err := markState(c)
	if err != nil {
		return err
	}
	if _, err := s.backend.MarkRun(c.Request().Context(), run.DAGID, run.RunID, store.RunState(state)); err != nil {
		return err
	}
	if run, err = s.backend.Store().GetRun(run.DAGID, run.RunID); err != nil {
		return err
	}
	view, err := s.runView(run)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view)
}

// patchTaskInstance marks one task instance success or failed, an
// instance of a mapped task with ?map_index, and answers it as it is
// then, with its tries. Marking a mapped task as a whole marks each of
// its instances.
func (s *Server) patchTaskInstance(c echo.Context) error {
	run, ti, err := s.lookupTask(c)
	if err != nil {
		return err
	}
	key, st := ti.Key(), s.backend.Store()
	state, err := markState(c)
	if err != nil {
		return err
	}
	if _, err := s.backend.MarkTasks(c.Request().Context(), run.DAGID, run.RunID, []string{key}, store.TaskState(state)); err != nil {
		return err
	}
	if ti, err = st.GetTaskInstance(run.DAGID, run.RunID, key); err != nil {
		return err
	}
	tries, err := st.Tries(run.DAGID, run.RunID, key)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, NewTaskInstance(ti, tries))
}
