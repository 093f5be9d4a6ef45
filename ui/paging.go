package ui

import (
	"math"
	"strconv"

	"github.com/labstack/echo/v4"
)

// maxPageLimit bounds the limit query parameter of the lists held in
// memory (DAGs, import errors, backfills, pools, plugins).
const maxPageLimit = 10000

// pageOf applies the optional limit and offset query parameters to a list
// held in memory, and tells the list's whole length in X-Total-Count, as
// the run list does. Without limit the list is answered whole.
func pageOf[T any](c echo.Context, items []T) ([]T, error) {
	limit, err := queryInt(c, "limit", maxPageLimit, 1, maxPageLimit)
	if err != nil {
		return nil, err
	}
	offset, err := queryInt(c, "offset", 0, 0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	c.Response().Header().Set("X-Total-Count", strconv.Itoa(len(items)))
	offset = min(offset, len(items))
	return items[offset:min(offset+limit, len(items))], nil
}
