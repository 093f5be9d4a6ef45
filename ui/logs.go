package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/internal/logtimes"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// followLog streams a try's log as Server-Sent Events: what the file holds,
// then what is appended to it, until the try has finished and its log is
// sent whole. The stream is told rather than polling: fsnotify says when
// the file may have grown (logwatch.go) and the store's change feed when
// the task may have ended; the file is also read every logPoll, in case
// either stays quiet.
//
// Each event carries a piece of the log: its lines are the event's data
// lines, so a client that concatenates the data of the events gets the log
// back ("a\nb" is "data: a\ndata: b"; a piece ending in a newline ends with
// an empty data line). SSE has no way to carry a carriage return, so "\r\n"
// and a lone "\r" both arrive as "\n". A piece never ends inside a UTF-8
// character. Its id is the byte offset in the file after it; a client that
// reconnects with Last-Event-ID resumes there. The stream ends with
//
//	event: end
//	data: {"try_number":N,"state":"success"}
//
// Only one read buffer is held per stream, whatever the log's size.
//
// A client that has the log up to some offset already (the log page, which
// renders it) starts there with ?offset=N: an EventSource cannot send
// Last-Event-ID on its first request. When it reconnects, the header it
// sends wins.
//
// Stamped (?timestamps=1), each line of the data starts with its receive
// time (internal/logtimes); ids stay byte offsets in the file.
func (s *Server) followLog(c echo.Context, k wire.TryKey, stamped bool) error {
	offset, err := logOffset(c)
	if err != nil {
		return err
	}
	if id := c.Request().Header.Get("Last-Event-ID"); id != "" {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil || n < 0 {
			return badRequest("Last-Event-ID: want a byte offset, got %q", id)
		}
		offset = n
	}
	resp := startEventStream(c)
	ls := &logStream{w: bufio.NewWriter(resp), flush: resp.Flush, offset: offset}
	if stamped {
		ls.times = &logtimes.Index{}
	}
	err = s.streamLog(c, k, ls)
	if errors.Is(err, errStreamClosed) {
		return nil // the client left or the server is stopping
	}
	if err != nil {
		// The status is sent already: say it in the stream, then stop.
		s.log.Error("following log", "dag", k.DAGID, "run", k.RunID, "task", k.TaskID, "try", k.Try, "err", err)
		ls.event("error", jsonString(ErrorBody{Error: err.Error()}))
		ls.w.Flush()
		ls.flush()
	}
	return nil
}

func (s *Server) streamLog(c echo.Context, k wire.TryKey, ls *logStream) error {
	ctx := c.Request().Context()
	path := s.backend.LogPath(k)
	st := s.backend.Store()
	// Both watches begin before the first look at the try and the file.
	changes := st.ChangesAfter(st.LastChange())
	lw := s.folders.watchLog(path)
	defer lw.close()
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 32<<10)
	tick := time.NewTicker(s.logPoll)
	defer tick.Stop()
	idle := time.Now()
	for {
		// Ask before reading: a try that had finished then has its whole
		// log in the file by the time the read reaches the end.
		finished := s.backend.TryFinished(k)
		if f == nil {
			var err error
			f, err = os.Open(path)
			switch {
			case errors.Is(err, os.ErrNotExist):
				f = nil
			case err != nil:
				return err
			default:
				if _, err := f.Seek(ls.offset, io.SeekStart); err != nil {
					return err
				}
				if ls.times != nil {
					if ls.times, err = logtimes.Open(path); err != nil {
						return err
					}
					ls.stamp = logtimes.NewStamper(ls.times, atLineStart(f, ls.offset))
				}
			}
		}
		if ls.stamp != nil {
			// The times of what the file holds were written before it.
			if err := ls.times.Update(); err != nil {
				return err
			}
		}
		sent := false
		for f != nil {
			n, err := f.Read(buf)
			if n > 0 {
				ls.data(buf[:n], false)
				sent = true
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if finished {
			ls.data(nil, true)
			ls.event("end", jsonString(s.logEnd(k)))
			sent = true
		}
		if sent {
			idle = time.Now()
		} else if time.Since(idle) >= s.keepAlive {
			ls.comment("keep-alive")
			idle = time.Now()
		}
		if err := ls.w.Flush(); err != nil {
			return errStreamClosed
		}
		ls.flush()
		if finished {
			return nil
		}
		if err := s.waitForLog(ctx, k, changes, lw, tick); err != nil {
			return err
		}
	}
}

// waitForLog waits until a followed log may have grown or its try may have
// ended: its file's folder changed, the store committed a change of its
// task, or the poll ticked.
func (s *Server) waitForLog(ctx context.Context, k wire.TryKey, changes *store.ChangeCursor, lw *logWatch, tick *time.Ticker) error {
	var buf []store.Change
	for {
		select {
		case <-ctx.Done():
			return errStreamClosed
		case <-s.stopping:
			return errStreamClosed
		case <-lw.C:
			lw.update() // a folder on the way to the file may have appeared
			return nil
		case <-tick.C:
			lw.update()
			return nil
		case <-changes.Wait():
			var err error
			buf, err = changes.Read(buf[:0])
			switch {
			case errors.Is(err, store.ErrClosed):
				return errStreamClosed
			case err != nil: // lost changes: look again
				return nil
			}
			for _, c := range buf {
				if c.DAGID == k.DAGID && c.RunID == k.RunID && c.TaskID == k.TaskID {
					return nil
				}
			}
		}
	}
}

// The tail of a failed try's log shown with its error (the run page, and
// GET .../logs?tail=N for `kiln runs show`): its last logTailLines lines
// (at most maxTailLines when asked), at most logTailBytes.
const (
	logTailLines = 10
	maxTailLines = 100
	logTailBytes = 2 << 10
)

// readLogLines returns the last lines of a log file, at most maxBytes
// long: a line cut by that bound is left out, unless it is the only one.
// Line ends are "\n" and the text has none at its end. A missing file
// is an empty log.
func readLogLines(path string, lines int, maxBytes int64) (string, error) {
	t, err := readLogTail(path, maxBytes, false, false)
	if err != nil {
		return "", err
	}
	text := strings.TrimRight(t.text, "\n")
	for i, n := len(text), 0; i > 0; {
		i = strings.LastIndexByte(text[:i], '\n')
		if i < 0 {
			break
		}
		if n++; n == lines {
			return text[i+1:], nil
		}
	}
	return text, nil
}

// logEnd is the data of the end event: the try and its final state.
func (s *Server) logEnd(k wire.TryKey) LogEnd {
	end := LogEnd{TryNumber: k.Try}
	if t, err := s.backend.Store().GetTry(k.DAGID, k.RunID, k.TaskID, k.Try); err == nil {
		end.State = t.State
	}
	return end
}

// logOffset reads ?offset=N, the byte of the log to start at; 0 without it.
func logOffset(c echo.Context) (int64, error) {
	q := c.QueryParam("offset")
	if q == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("offset: want a byte offset (0 or more), got %q", q)
	}
	return n, nil
}

// logStream writes the events of a followed log.
type logStream struct {
	w       *bufio.Writer
	flush   func()
	offset  int64  // file offset after the data sent
	pending []byte // read but held back: a partial character or a "\r"
	// times and stamp put each line's receive time before it, when asked
	// (stamp is set once the file is open); stamped is a buffer.
	times   *logtimes.Index
	stamp   *logtimes.Stamper
	stamped []byte
}

// data sends a piece of the log. Unless final, it holds back a trailing
// partial UTF-8 character, and a trailing "\r" that may start a "\r\n",
// until the next piece.
func (ls *logStream) data(p []byte, final bool) {
	b := append(ls.pending, p...)
	n := len(b)
	if !final {
		n = completePrefix(b)
	}
	if n > 0 {
		piece := b[:n]
		if ls.stamp != nil {
			ls.stamped = ls.stamp.Stamp(ls.stamped[:0], piece, ls.offset)
			piece = ls.stamped
		}
		ls.offset += int64(n)
		text := strings.ReplaceAll(string(piece), "\r\n", "\n")
		text = strings.ReplaceAll(text, "\r", "\n")
		fmt.Fprintf(ls.w, "id: %d\n", ls.offset)
		for line := range strings.SplitSeq(text, "\n") {
			fmt.Fprintf(ls.w, "data: %s\n", line)
		}
		ls.w.WriteByte('\n')
	}
	ls.pending = append(ls.pending[:0], b[n:]...)
}

func (ls *logStream) event(name, data string) {
	fmt.Fprintf(ls.w, "event: %s\ndata: %s\n\n", name, data)
}

func (ls *logStream) comment(text string) {
	fmt.Fprintf(ls.w, ": %s\n\n", text)
}

// completePrefix returns the length of b without a trailing partial UTF-8
// character or a trailing "\r".
func completePrefix(b []byte) int {
	n := len(b)
	for i := n - 1; i >= 0 && i >= n-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:n]) {
				n = i
			}
			break
		}
	}
	if n > 0 && b[n-1] == '\r' {
		n--
	}
	return n
}

func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return `{}`
	}
	return string(b)
}
