package ui

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrLogStreamCut reports a followed log whose stream ended before its end
// event: the server stopped or the connection broke.
var ErrLogStreamCut = errors.New("log stream ended before the try did")

// DecodeLogStream reads the Server-Sent Events of a followed log (see
// GET /api/v1/dags/{dag}/runs/{run}/tasks/{task}/logs?follow=1) from r and
// writes the log to w as it arrives, until the end event, whose data it
// returns. A stream that stops without one is ErrLogStreamCut.
func DecodeLogStream(r io.Reader, w io.Writer) (LogEnd, error) {
	sr := newSSEReader(r)
	for {
		ev, err := sr.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return LogEnd{}, ErrLogStreamCut
			}
			return LogEnd{}, err
		}
		switch {
		case ev.name == "end":
			var end LogEnd
			if err := json.Unmarshal([]byte(ev.text()), &end); err != nil {
				return LogEnd{}, fmt.Errorf("decoding the end of the log stream: %w", err)
			}
			return end, nil
		case ev.name == "error":
			var e ErrorBody
			if json.Unmarshal([]byte(ev.text()), &e) != nil || e.Error == "" {
				e.Error = ev.text()
			}
			return LogEnd{}, errors.New(e.Error)
		case (ev.name == "" || ev.name == "message") && len(ev.data) > 0:
			if _, err := io.WriteString(w, ev.text()); err != nil {
				return LogEnd{}, err
			}
		}
	}
}
