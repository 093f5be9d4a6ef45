package ui

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrLogStreamCut reports a followed log whose stream ended before its end
// event: the server stopped or the connection broke.
var ErrLogStreamCut = errors.New("log stream ended before the try did")

// DecodeLogStream reads the Server-Sent Events of a followed log (see
// GET /api/v1/dags/{dag}/runs/{run}/tasks/{task}/logs?follow=1) from r and
// writes the log to w as it arrives, until the end event, whose data it
// returns. A stream that stops without one is ErrLogStreamCut.
func DecodeLogStream(r io.Reader, w io.Writer) (LogEnd, error) {
	br := bufio.NewReader(r)
	var (
		event string
		data  []string
		seen  bool // a data line was seen in the current event
	)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return LogEnd{}, ErrLogStreamCut
			}
			return LogEnd{}, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line != "" {
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				event = value
			case "data":
				data = append(data, value)
				seen = true
			}
			continue
		}
		// A blank line dispatches the event.
		text := strings.Join(data, "\n")
		switch {
		case event == "end":
			var end LogEnd
			if err := json.Unmarshal([]byte(text), &end); err != nil {
				return LogEnd{}, fmt.Errorf("decoding the end of the log stream: %w", err)
			}
			return end, nil
		case event == "error":
			var e ErrorBody
			if json.Unmarshal([]byte(text), &e) != nil || e.Error == "" {
				e.Error = text
			}
			return LogEnd{}, errors.New(e.Error)
		case (event == "" || event == "message") && seen:
			if _, err := io.WriteString(w, text); err != nil {
				return LogEnd{}, err
			}
		}
		event, data, seen = "", data[:0], false
	}
}
