package ui

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// The datasets routes (docs/api.md#datasets): every dataset with its
// producers, consumers and last event; one dataset's events; an external
// producer's event.

// maxDatasetEvents bounds the events one answer lists.
const maxDatasetEvents = 1000

// DatasetEventRequest is the body of POST /api/v1/datasets/events.
type DatasetEventRequest struct {
	URI   string         `json:"uri"`
	Extra map[string]any `json:"extra"`
}

// listDatasets answers GET /api/v1/datasets.
func (s *Server) listDatasets(c echo.Context) error {
	list, err := s.backend.Datasets(c.Request().Context())
	if err != nil {
		return err
	}
	if list, err = pageOf(c, list); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

// listDatasetEvents answers GET /api/v1/datasets/events?uri=URI[&limit=N]:
// the dataset's events, newest first, the count of all in X-Total-Count.
func (s *Server) listDatasetEvents(c echo.Context) error {
	uri := c.QueryParam("uri")
	if uri == "" {
		return badRequest("uri: required, the dataset's URI")
	}
	limit := 100
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxDatasetEvents {
			return badRequest("limit: want 1 to %d, got %q", maxDatasetEvents, v)
		}
		limit = n
	}
	events, total, err := s.backend.Store().DatasetEvents(uri, limit)
	if err != nil {
		return err
	}
	if events == nil {
		events = []store.DatasetEvent{}
	}
	c.Response().Header().Set("X-Total-Count", strconv.Itoa(total))
	return c.JSON(http.StatusOK, events)
}

// emitDatasetEvent answers POST /api/v1/datasets/events: an external
// producer's event, 201 with the event as recorded.
func (s *Server) emitDatasetEvent(c echo.Context) error {
	var req DatasetEventRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if req.URI == "" {
		return badRequest("uri: required, the dataset's URI")
	}
	if req.Extra != nil {
		dag.NormalizeNumbers(req.Extra)
	}
	by := ""
	if p := principal(c); p != nil {
		by = p.Name
	}
	e, err := s.backend.EmitDatasetEvent(c.Request().Context(), scheduler.DatasetEventRequest{URI: req.URI, Extra: req.Extra, By: by})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, e)
}
