package ui

import (
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// backup answers GET /api/v1/backup: a consistent copy of the store file,
// for `kiln db backup` while the server runs
// (docs/operations.md#damaged-or-full-data-folder). Its length is sent
// first, so that a client can tell a copy cut short.
func (s *Server) backup(c echo.Context) error {
	_, err := s.backend.Store().WriteBackup(func(size int64) io.Writer {
		h := c.Response().Header()
		h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
		h.Set(echo.HeaderContentLength, strconv.FormatInt(size, 10))
		h.Set(echo.HeaderContentDisposition, `attachment; filename="kiln.db"`)
		c.Response().WriteHeader(http.StatusOK)
		return c.Response()
	})
	return err
}
