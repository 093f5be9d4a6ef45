package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// maxBodyBytes bounds a request body; every body of the API is small.
const maxBodyBytes = 1 << 20

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
	}
	return http.StatusInternalServerError, err.Error()
}

// decodeBody decodes the request's JSON body into v, refusing unknown
// fields, trailing data and bodies over maxBodyBytes, and answers 400 (413
// for a body too large) naming the field at fault. An empty body is an
// error unless emptyOK, when v is left as it is. Numbers in fields of type
// any decode as json.Number (see dag.NormalizeNumbers).
func decodeBody(c echo.Context, v any, emptyOK bool) error {
	if err := decodeJSON(c, v, emptyOK); err != nil {
		return bodyError(err)
	}
	return nil
}

// errTrailingData reports a body with more after its JSON value.
var errTrailingData = errors.New("unexpected data after the JSON value")

// decodeJSON is decodeBody returning the decoder's own errors.
func decodeJSON(c echo.Context, v any, emptyOK bool) error {
	r := c.Request()
	body := http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) && emptyOK {
			return nil
		}
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errTrailingData
	}
	return nil
}

// bodyError turns a JSON decoding error into a 400 answer naming the field
// at fault where there is one.
func bodyError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes", mbe.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("body: empty; want a JSON object")
	case errors.Is(err, errTrailingData):
		return badRequest("body: %v", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("body: JSON ends too early")
	case errors.As(err, &syn):
		return badRequest("body: invalid JSON at byte %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("body: want a JSON object, got %s", typ.Value)
		}
		return badRequest("%s: want %s, got %s", typ.Field, jsonKind(typ.Type.String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("body: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return badRequest("body: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// jsonKind names a Go type the way a JSON user would.
func jsonKind(goType string) string {
	switch strings.TrimLeft(goType, "*") {
	case "bool":
		return "a boolean"
	case "int", "int64", "float64":
		return "a number"
	case "string", "time.Time":
		return "a string"
	case "[]string":
		return "an array of strings"
	}
	if strings.HasPrefix(goType, "map[") {
		return "an object"
	}
	return goType
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
