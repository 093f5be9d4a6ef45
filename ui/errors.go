package ui

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// apiError is an error answered with a given status and message.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error {
	return &apiError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

// unauthorized answers 401: the request says nothing about who makes it,
// or what it says does not hold (auth.go).
func unauthorized(format string, args ...any) error {
	return &apiError{http.StatusUnauthorized, fmt.Sprintf(format, args...)}
}

// forbidden answers 403: who makes the request is known and may not do
// this (auth.go).
func forbidden(format string, args ...any) error {
	return &apiError{http.StatusForbidden, fmt.Sprintf(format, args...)}
}

// handleError answers a failed request with the status the error calls
// for: on the API (and /healthz, /metrics) with {"error": "..."}, on a
// browser page with the HTML error page.
func (s *Server) handleError(err error, c echo.Context) {
	status, msg := classify(err)
	req := c.Request()
	if status >= 500 {
		s.log.Error("API request failed", "method", req.Method, "path", req.URL.Path, "status", status, "err", err)
	}
	if c.Response().Committed {
		return // a stream already under way; nothing more can be said
	}
	switch {
	case req.Method == http.MethodHead:
		err = c.NoContent(status)
	case isPagePath(req.URL.Path):
		err = s.errorPage(c, status, msg)
	default:
		err = c.JSON(status, ErrorBody{Error: msg})
	}
	if err != nil {
		s.log.Debug("writing error answer", "path", req.URL.Path, "err", err)
	}
}

// isPagePath tells a browser page's path from the API's and the probes'.
func isPagePath(path string) bool {
	return !strings.HasPrefix(path, "/api/") && path != "/api" && path != "/healthz" && path != "/metrics"
}

// errorPageView is what error.html shows.
type errorPageView struct {
	Status  int
	Text    string // the status's name: Not Found
	Message string
}

// errorPage answers with error.html: the whole page, even when a live
// update asked for a fragment (kiln.js keeps the block it has on an error).
func (s *Server) errorPage(c echo.Context, status int, msg string) error {
	c.Request().Header.Del(fragmentHeader)
	text := http.StatusText(status)
	if text == "" {
		text = "Error"
	}
	v := errorPageView{Status: status, Text: text, Message: msg}
	if err := s.render(c, status, "error", pageData{Title: text, Data: v}); err != nil {
		s.log.Error("rendering the error page", "err", err)
		return c.String(status, msg)
	}
	return nil
}

// classify maps an error to its HTTP status and message.
func classify(err error) (int, string) {
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		return ae.status, ae.msg
	case errors.As(err, &he):
		msg := strings.ToLower(http.StatusText(he.Code))
		if m, ok := he.Message.(string); ok && m != "" {
			msg = strings.ToLower(m)
		}
		return he.Code, msg
	case errors.Is(err, scheduler.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, scheduler.ErrInvalid):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, scheduler.ErrConflict), errors.Is(err, store.ErrConflict):
		return http.StatusConflict, err.Error()
	case errors.Is(err, scheduler.ErrNoArtifactStore):
		return http.StatusServiceUnavailable, err.Error()
	}
	return http.StatusInternalServerError, err.Error()
}

// pathParam returns a path parameter, unescaped. Echo matches routes on the
// raw path when the request escaped anything, and leaves the parameters
// escaped then.
func pathParam(c echo.Context, name string) (string, error) {
	v := c.Param(name)
	if c.Request().URL.RawPath == "" {
		return v, nil
	}
	u, err := url.PathUnescape(v)
	if err != nil {
		return "", badRequest("%s: bad escape in %q", name, v)
	}
	return u, nil
}

// queryInt reads an integer query parameter in [lo, hi], or def when absent.
func queryInt(c echo.Context, name string, def, lo, hi int) (int, error) {
	s := c.QueryParam(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest("%s: want an integer from %d to %d, got %q", name, lo, hi, s)
	}
	return n, nil
}
