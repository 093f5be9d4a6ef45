package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// intake consumes worker events. Log chunks are written to the try's log
// file here and acked at once (writing at an offset is idempotent); every
// other event goes to the loop, which acks it after its commit.
func (s *Scheduler) intake(ctx context.Context, cons jetstream.Consumer) {
	it, err := cons.Messages(jetstream.PullMaxMessages(1024))
	if err != nil {
		s.log.Error("consuming worker events", "err", err)
		s.setHealth(fmt.Errorf("consuming worker events: %w", err))
		return
	}
	go func() {
		<-ctx.Done()
		it.Stop()
	}()
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return
			}
			s.log.Warn("reading worker events", "err", err)
			continue
		}
		var ev wire.Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			s.log.Warn("dropping a malformed worker event", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
		if ev.Kind == wire.EventLog {
			if err := s.logs.write(ev.TryKey, ev.Offset, ev.Data); err != nil {
				s.log.Warn("writing a log chunk", "try", ev.TryKey.String(), "err", err)
				_ = msg.NakWithDelay(time.Second)
				continue
			}
			_ = msg.Ack()
			continue
		}
		select {
		case s.events <- eventMsg{ev: ev, msg: msg}:
		case <-ctx.Done():
			return
		}
	}
}

// applyEvent applies a worker event to the try it names. An event for a
// try that is not the task instance's current one is stale: acked and
// ignored, so redeliveries and zombie workers never count twice.
func (s *Scheduler) applyEvent(em eventMsg) {
	s.t.acks = append(s.t.acks, em.msg)
	ev := em.ev
	now := s.clock.Now()
	if ev.Kind == wire.EventFinished {
		s.logs.finished(ev.TryKey) // its chunks were all read before it
	}
	if s.applyCallbackEvent(ev, now) {
		return
	}
	ar := s.active[runKey{ev.DAGID, ev.RunID}]
	if ar == nil {
		return
	}
	ti := ar.tis[ev.TaskID]
	if ti == nil || ti.TryNumber != ev.Try || (ti.State != store.TaskQueued && ti.State != store.TaskRunning) {
		return
	}
	k := tryKeyOf(ti)
	f := s.flights[k]
	var tr *store.Try
	if f != nil {
		tr = f.try
	}
	switch ev.Kind {
	case wire.EventStarted:
		if ti.State == store.TaskQueued {
			ti.State = store.TaskRunning
			ti.StartDate = timePtr(ev.Time.UTC())
			ti.Worker = ev.Worker
			s.putTI(ti)
			if tr != nil {
				tr.State = store.TaskRunning
				tr.StartDate = ti.StartDate
				tr.Worker = ev.Worker
				s.putTry(tr)
			}
			s.metrics.taskStarted(ar, ti, now)
		}
		if f != nil {
			f.started(now)
		}
	case wire.EventHeartbeat:
		if f != nil {
			f.beat = now
		}
	case wire.EventFinished:
		if ti.StartDate == nil {
			ti.StartDate = timePtr(ev.Time.UTC())
		}
		ti.Worker = ev.Worker
		if t := ar.dag.Task(ti.TaskID); t != nil && t.Sensor != nil {
			switch {
			case ev.SensorTimeout:
				s.sensorTimedOut(ar, t, ti, now)
				return
			case ev.PokeAgain:
				s.reschedule(t, ti, now)
				return
			}
		}
		if !ev.Success {
			s.tryFailed(ar, ti, ev.Error, ev.ExitCode, now)
			return
		}
		ti.Pokes, ti.FirstPoke = 0, nil
		ti.State = store.TaskSuccess
		ti.EndDate = timePtr(now.UTC())
		ti.Outputs = ev.Outputs
		ti.Error = ""
		s.putTI(ti)
		if tr != nil {
			tr.State = store.TaskSuccess
			tr.StartDate = ti.StartDate
			tr.EndDate = ti.EndDate
			tr.ExitCode = ev.ExitCode
			tr.Outputs = ev.Outputs
			tr.Worker = ev.Worker
			s.putTry(tr)
		}
		s.forget(k)
		s.taskCallbacks(ti, onSuccess, now)
	}
}

// tick does the time-driven work of a turn: cron runs, and the tries in
// flight whose worker went silent or whose assignment may be lost.
func (s *Scheduler) tick(now time.Time) {
	s.cron(now)
	s.checkFlights(now)
	s.logs.sweep(now)
}
