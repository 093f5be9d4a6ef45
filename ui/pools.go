package ui

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

func (s *Server) listPools(c echo.Context) error {
	pools, err := s.backend.Store().Pools()
	if err != nil {
		return err
	}
	if pools, err = pageOf(c, pools); err != nil {
		return err
	}
	out := make([]Pool, len(pools))
	for i, p := range pools {
		out[i] = Pool{Name: p.Name, Slots: p.Slots}
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) setPool(c echo.Context) error {
	name, err := poolName(c)
	if err != nil {
		return err
	}
	var req SetPoolRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	switch {
	case req.Slots == nil:
		return badRequest("slots: required")
	case *req.Slots < 0:
		return badRequest("slots: want 0 or more, got %d", *req.Slots)
	}
	if err := s.backend.SetPool(c.Request().Context(), name, *req.Slots); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, Pool{Name: name, Slots: *req.Slots})
}

func (s *Server) deletePool(c echo.Context) error {
	name, err := poolName(c)
	if err != nil {
		return err
	}
	if err := s.backend.DeletePool(c.Request().Context(), name); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func poolName(c echo.Context) (string, error) {
	name, err := pathParam(c, "name")
	if err == nil && name == "" {
		err = badRequest("name: empty pool name")
	}
	return name, err
}
