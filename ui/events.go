package ui

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// streamEvents answers GET /api/v1/events: the store's change feed as
// Server-Sent Events, so that clients are told when a run, task instance,
// try or backfill changes instead of polling (docs/operations.md, "Event
// stream").
//
// Each change is an event named after its kind (run, task, try, backfill)
// whose data is an Event and whose id is the change's sequence number. The
// query ?dag=ID keeps the changes of one DAG, and with &run=ID those of one
// run (its run, task and try events). A client that reconnects with
// Last-Event-ID, or starts with ?after=SEQ (which an EventSource cannot
// send as a header on its first request), resumes after that change;
// without either the stream starts with the next change. A reader that fell behind the
// store's ring of recent changes, or names a number from before a restart,
// gets an event named lost: what it follows may have changed, so it
// re-reads it. With nothing to send for a while the stream sends a
// comment, with the id of the newest change it passed over, so that
// proxies keep the connection and a reconnect does not resume before
// changes the filter left out. The stream ends when the client goes away
// or the server shuts down.
func (s *Server) streamEvents(c echo.Context) error {
	f, err := s.eventFilter(c)
	if err != nil {
		return err
	}
	st := s.backend.Store()
	after := st.LastChange()
	for _, from := range []struct{ what, v string }{
		{"after", c.QueryParam("after")},
		{"Last-Event-ID", c.Request().Header.Get("Last-Event-ID")},
	} {
		if from.v == "" {
			continue
		}
		n, err := strconv.ParseUint(from.v, 10, 64)
		if err != nil {
			return badRequest("%s: want an event id, got %q", from.what, from.v)
		}
		after = n
	}
	// The cursor is taken before the answer's header goes out, so that a
	// client that reads the state it follows once the stream is open
	// misses no change made after that read.
	cur := st.ChangesAfter(after)
	resp := startEventStream(c)
	es := &eventWriter{w: bufio.NewWriter(resp), flush: resp.Flush, id: after}
	err = s.sendEvents(c, cur, f, es)
	if errors.Is(err, errStreamClosed) {
		return nil
	}
	return err
}

// eventFilter reads ?dag and ?run; the run must exist, and so must the DAG
// (loaded, or with runs in the store).
func (s *Server) eventFilter(c echo.Context) (eventFilter, error) {
	f := eventFilter{dagID: c.QueryParam("dag"), runID: c.QueryParam("run")}
	st := s.backend.Store()
	switch {
	case f.runID != "" && f.dagID == "":
		return f, badRequest("run: needs dag, the run's DAG")
	case f.runID != "":
		if _, err := st.GetRun(f.dagID, f.runID); errors.Is(err, store.ErrNotFound) {
			return f, notFound("run %q of DAG %q not found", f.runID, f.dagID)
		} else if err != nil {
			return f, err
		}
	case f.dagID != "":
		if _, ok := s.backend.DAG(f.dagID); !ok {
			if n, err := st.CountRuns(f.dagID); err != nil {
				return f, err
			} else if n == 0 {
				return f, s.dagNotFound(f.dagID)
			}
		}
	}
	return f, nil
}

// eventFilter keeps the changes of one DAG or one run; empty fields keep
// everything.
type eventFilter struct {
	dagID, runID string
}

func (f eventFilter) keeps(c *store.Change) bool {
	return (f.dagID == "" || c.DAGID == f.dagID) && (f.runID == "" || c.RunID == f.runID)
}

func (s *Server) sendEvents(c echo.Context, cur *store.ChangeCursor, f eventFilter, es *eventWriter) error {
	ctx := c.Request().Context()
	keepAlive := time.NewTicker(s.keepAlive)
	defer keepAlive.Stop()
	var buf []store.Change
	sent := false // since the last keep-alive tick
	for {
		var err error
		buf, err = cur.Read(buf[:0])
		switch {
		case errors.Is(err, store.ErrChangesLost):
			es.lost(cur.Seq())
			sent = true
		case errors.Is(err, store.ErrClosed):
			return errStreamClosed
		case err != nil:
			return err
		}
		for i := range buf {
			if f.keeps(&buf[i]) {
				es.change(&buf[i])
				sent = true
			}
		}
		if err := es.send(); err != nil {
			return errStreamClosed
		}
		select {
		case <-ctx.Done():
			return errStreamClosed
		case <-s.stopping:
			return errStreamClosed
		case <-cur.Wait():
		case <-keepAlive.C:
			if !sent {
				es.keepAlive(cur.Seq())
				if err := es.send(); err != nil {
					return errStreamClosed
				}
			}
			sent = false
		}
	}
}

// eventWriter writes the events of GET /api/v1/events.
type eventWriter struct {
	w     *bufio.Writer
	flush func()
	id    uint64 // the last id sent, or where the stream started
}

func (es *eventWriter) change(c *store.Change) {
	es.event(Event{
		Seq: c.Seq, Kind: string(c.Kind), DAGID: c.DAGID, RunID: c.RunID, TaskID: c.TaskID,
		TryNumber: c.Try, BackfillID: c.BackfillID, State: c.State,
	})
}

func (es *eventWriter) lost(seq uint64) { es.event(Event{Seq: seq, Kind: EventLost}) }

func (es *eventWriter) event(e Event) {
	data, err := json.Marshal(e)
	if err != nil {
		return // strings and numbers always encode
	}
	fmt.Fprintf(es.w, "id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Kind, data)
	es.id = e.Seq
}

// keepAlive sends a comment, and moves the client's last event id past
// the changes the filter left out.
func (es *eventWriter) keepAlive(seq uint64) {
	io.WriteString(es.w, ": keep-alive\n")
	if seq != es.id {
		fmt.Fprintf(es.w, "id: %d\n", seq)
		es.id = seq
	}
	es.w.WriteByte('\n')
}

// send writes out what is buffered; an error means the client is gone.
func (es *eventWriter) send() error {
	if es.w.Buffered() == 0 {
		return nil
	}
	if err := es.w.Flush(); err != nil {
		return err
	}
	es.flush()
	return nil
}

// EventLost is the kind of the event that tells a reader of the event
// stream it lost changes.
const EventLost = "lost"

// ReadEvents reads the Server-Sent Events of GET /api/v1/events from r and
// calls fn with each, until r ends (io.EOF) or fn returns an error, which
// ReadEvents returns.
func ReadEvents(r io.Reader, fn func(Event) error) error {
	sr := newSSEReader(r)
	for {
		ev, err := sr.next()
		if err != nil {
			return err
		}
		if len(ev.data) == 0 {
			continue // a keep-alive moving the last event id
		}
		var e Event
		if err := json.Unmarshal([]byte(ev.text()), &e); err != nil {
			return fmt.Errorf("decoding event %s %q: %w", ev.id, ev.text(), err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}
