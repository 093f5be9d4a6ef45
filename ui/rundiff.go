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
	d, err := s.runDiff(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, d)
}

// runDiff computes the diff a request asks for.
func (s *Server) runDiff(c echo.Context) (*rundiff.Diff, error) {
	dagA, err := pathParam(c, "dag")
	if err != nil {
		return nil, err
	}
	runA, err := pathParam(c, "run")
	if err != nil {
		return nil, err
	}
	if _, err := s.lookupRun(c); err != nil {
		return nil, err
	}
	runB := c.QueryParam("run_b")
	if runB == "" {
		return nil, badRequest("run_b: required, the run to compare with")
	}
	dagB := c.QueryParam("dag_b")
	if dagB == "" {
		dagB = dagA
	}
	d, err := rundiff.Compute(s.backend.Store(), dagA, runA, dagB, runB)
	if errors.Is(err, rundiff.ErrNotFound) {
		return nil, notFound("%v", err)
	}
	return d, err
}
