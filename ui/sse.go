package ui

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html):
// how the API starts a stream (followed logs, the event stream) and how
// its Go clients (DecodeLogStream, ReadEvents) read one.

// errStreamClosed ends a stream whose client left or whose server stops.
var errStreamClosed = errors.New("stream closed")

// startEventStream answers 200 with the header of an event stream and
// sends it at once.
func startEventStream(c echo.Context) *echo.Response {
	resp := c.Response()
	h := resp.Header()
	h.Set(echo.HeaderContentType, "text/event-stream; charset=utf-8")
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	resp.WriteHeader(http.StatusOK)
	resp.Flush()
	return resp
}

// sseEvent is one event read from a stream.
type sseEvent struct {
	name string   // the event field; "" for a plain message
	id   string   // the id field; "" when there was none
	data []string // the data lines
}

// text is the event's data: its data lines joined by newlines.
func (e *sseEvent) text() string { return strings.Join(e.data, "\n") }

// sseReader reads the events of a stream.
type sseReader struct {
	br *bufio.Reader
}

func newSSEReader(r io.Reader) *sseReader { return &sseReader{br: bufio.NewReader(r)} }

// next returns the next event that has a field other than a comment. At
// the end of the stream it returns io.EOF, also when the stream stops
// inside an event: an event counts only once a blank line ends it.
func (r *sseReader) next() (sseEvent, error) {
	var (
		ev     sseEvent
		fields bool
	)
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			return sseEvent{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if fields {
				return ev, nil
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.name, fields = value, true
		case "data":
			ev.data, fields = append(ev.data, value), true
		case "id":
			ev.id, fields = value, true
		}
	}
}
