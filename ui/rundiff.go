package ui

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/rundiff"
)

// diffRuns answers what differs between the run of the path and the run
// named by ?run_b= (of the DAG named by ?dag_b=, by default the same)
// (docs/reproducibility.md#comparing-two-runs).
func (s *Server) diffRuns(c echo.Context) error {
	runA, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	runB := c.QueryParam("run_b")
	if runB == "" {
		return badRequest("run_b: required, the run to compare with")
	}
	dagB := c.QueryParam("dag_b")
	if dagB == "" {
		dagB = runA.DAGID
	}
	d, err := rundiff.Compute(s.backend.Store(), runA.DAGID, runA.RunID, dagB, runB)
	if errors.Is(err, rundiff.ErrNotFound) {
		return notFound("%v", err)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}
