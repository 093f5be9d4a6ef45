package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

const (
	// asyncTimeout fails an asynchronous publish JetStream has not
	// confirmed in time; it is then retried synchronously.
	asyncTimeout = 10 * time.Second
	// asyncWindow is how many log events of one try may await
	// JetStream's confirmation at once. It bounds the memory a chatty task
	// costs and slows the task down when NATS cannot keep up.
	asyncWindow = 8
	// stallWait is how long an asynchronous publish waits for room when
	// the connection's window of unconfirmed publishes is full.
	stallWait = 30 * time.Second
	// attemptTimeout bounds one synchronous publish attempt.
	attemptTimeout = 5 * time.Second
	// reportTimeout bounds the retries of a try's events: a worker cut
	// off from NATS for longer gives up on the try's report, and the
	// scheduler fails the try when its heartbeats stop.
	reportTimeout = 5 * time.Minute
)

// events publishes the events of one try to KILN_EVENTS.
type events struct {
	js     jetstream.JetStream
	key    wire.TryKey
	worker string
	msgIDs string // Worker.msgIDs
	log    *slog.Logger

	// Asynchronous publishes awaiting confirmation, in order; a goroutine
	// confirms them, or retries them synchronously.
	pending chan jetstream.PubAckFuture
	done    chan struct{}
	ctx     context.Context // bounds the retries
	poke    int             // the sensor poke of the assignment, 0 otherwise
}

func (w *Worker) newEvents(ctx context.Context, k wire.TryKey, poke int, log *slog.Logger) *events {
	e := &events{
		js: w.js, key: k, poke: poke, worker: w.cfg.Name, msgIDs: w.msgIDs, log: log, ctx: ctx,
		pending: make(chan jetstream.PubAckFuture, asyncWindow),
		done:    make(chan struct{}),
	}
	go e.confirm()
	return e
}

// event returns a new event of the try.
func (e *events) event(kind wire.EventKind) *wire.Event {
	return &wire.Event{TryKey: e.key, Kind: kind, Time: time.Now().UTC()}
}

func (e *events) msg(ev *wire.Event, id string) (*nats.Msg, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encoding %s event: %w", ev.Kind, err)
	}
	m := nats.NewMsg(wire.EventSubject(e.worker, ev.Kind, ev.DAGID))
	m.Data = data
	m.Header.Set(jetstream.MsgIDHeader, id)
	return m, nil
}

// msgID is the de-duplication id of an event: this worker process, kind,
// try, the sensor poke (each poke of a try reports again), and what tells
// events of one kind apart.
func (e *events) msgID(kind wire.EventKind, seq int64) string {
	return fmt.Sprintf("%s:%s:%s:%d:%d", e.msgIDs, kind, e.key, e.poke, seq)
}

// publish publishes ev and waits for JetStream to store it, retrying until
// ctx ends. Retries are stored once, thanks to the message id.
func (e *events) publish(ctx context.Context, ev *wire.Event, seq int64) error {
	m, err := e.msg(ev, e.msgID(ev.Kind, seq))
	if err != nil {
		return err
	}
	return e.publishMsg(ctx, m)
}

func (e *events) publishMsg(ctx context.Context, m *nats.Msg) error {
	delay := 50 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		// A fresh message each time: a publish sets its own reply inbox.
		_, err := e.js.PublishMsg(actx, &nats.Msg{Subject: m.Subject, Header: m.Header, Data: m.Data})
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("publishing %s: %w", m.Subject, err)
		}
		e.log.Debug("publishing an event failed; retrying", "subject", m.Subject, "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("publishing %s: %w", m.Subject, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}

// publishAsync publishes ev without waiting for JetStream, unless
// asyncWindow events already wait. flush waits for all of them.
func (e *events) publishAsync(ev *wire.Event, seq int64) {
	m, err := e.msg(ev, e.msgID(ev.Kind, seq))
	if err != nil {
		e.log.Error("dropping an event", "error", err)
		return
	}
	f, err := e.js.PublishMsgAsync(m, jetstream.WithStallWait(stallWait))
	if err != nil {
		if err := e.publishMsg(e.ctx, m); err != nil {
			e.log.Warn("an event was lost", "kind", ev.Kind, "error", err)
		}
		return
	}
	e.pending <- f
}

func (e *events) confirm() {
	defer close(e.done)
	for f := range e.pending {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			e.log.Debug("asynchronous publish failed; retrying", "error", err)
			if err := e.publishMsg(e.ctx, f.Msg()); err != nil {
				e.log.Warn("an event was lost", "error", err)
			}
		}
	}
}

// flush waits until every asynchronous publish is stored, or given up on.
// No publishAsync may follow.
func (e *events) flush() {
	close(e.pending)
	<-e.done
}
