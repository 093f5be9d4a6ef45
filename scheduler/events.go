package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/diskfull"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// intake consumes worker events. Log chunks are written to the try's log
// file here and acked at once (writing at an offset is idempotent); every
// other event goes to the loop, which acks it after its commit. A chunk
// that finds the disk full stops the scheduler with stop: nothing more
// can be recorded, and the chunk, not acked, comes again after a restart.
func (s *Scheduler) intake(ctx context.Context, cons jetstream.Consumer, stop context.CancelCauseFunc) {
	// A heartbeat every 2 s, not the default 15 s: a pull that goes
	// unanswered (as a fresh connection's first can, see
	// cluster.Messages) is sent again after two missing ones, before
	// workers' heartbeats could be taken as lost.
	it, err := cons.Messages(jetstream.PullMaxMessages(1024), jetstream.PullHeartbeat(2*time.Second))
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
		worker, _, ok := wire.ParseEventSubject(msg.Subject())
		if !ok {
			s.log.Warn("dropping a worker event on a subject that names no worker", "subject", msg.Subject())
			_ = msg.Term()
			continue
		}
		var ev wire.Event
		if err := json.Unmarshal(msg.Data(), &ev); err != nil {
			s.log.Warn("dropping a malformed worker event", "subject", msg.Subject(), "err", err)
			_ = msg.Term()
			continue
		}
		if ev.Kind == wire.EventLog {
			if err := s.logs.write(ev.TryKey, ev.Offset, ev.Data, time.Now()); err != nil {
				if diskfull.Is(err) {
					stop(fmt.Errorf("writing the log of %s: %w", ev.TryKey, err))
					return
				}
				s.log.Warn("writing a log chunk", "try", ev.TryKey.String(), "err", err)
				_ = msg.NakWithDelay(time.Second)
				continue
			}
			_ = msg.Ack()
			continue
		}
		select {
		case s.events <- eventMsg{ev: ev, worker: worker, msg: msg}:
		case <-ctx.Done():
			return
		}
	}
}

// applyEvent applies a worker event to the try it names. An event for a
// try that is not the task instance's current one is stale: acked and
// ignored, so redeliveries and zombie workers never count twice. So is an
// event from another worker than the one that holds the try: the first
// started or finished event of an assignment binds the try to its sender
// (docs/architecture.md#tries-and-fencing).
func (s *Scheduler) applyEvent(em eventMsg) {
	s.t.acks = append(s.t.acks, em.msg)
	ev := em.ev
	now := s.clock.Now()
	if ev.Kind == wire.EventFinished {
		s.logs.finished(ev.TryKey) // its chunks were all read before it
	}
	s.workerSeen(em.worker)
	if s.applyCallbackEvent(ev, em.worker, now) {
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
	if !s.fromHolder(ev, em.worker, ti.Worker) {
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
			ti.Worker = em.worker
			if tr != nil {
				tr.State = store.TaskRunning
				tr.StartDate = ti.StartDate
				tr.Worker = em.worker
			}
			s.putStarted(ti, tr)
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
		ti.Worker = em.worker
		if tr != nil {
			applyRuntime(tr, em.worker, ev.Runtime)
			s.putTry(tr)
		}
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
		t := ar.dag.Task(ti.TaskID)
		var arts []store.Artifact
		if ev.Success {
			var err error
			if arts, err = checkArtifacts(t, ev.Artifacts); err != nil {
				ev.Success, ev.Error = false, err.Error()
				s.note(k, "kiln: "+ev.Error)
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
		ti.Artifacts = arts
		ti.Error = ""
		s.putTI(ti)
		if len(arts) > 0 {
			s.t.refs = append(s.t.refs, artifactRefs{arts, now})
		}
		if tr != nil {
			tr.State = store.TaskSuccess
			tr.StartDate = ti.StartDate
			tr.EndDate = ti.EndDate
			tr.ExitCode = ev.ExitCode
			tr.Outputs = ev.Outputs
			tr.Artifacts = arts
			tr.Worker = em.worker
			s.keepInCache(t, tr, now)
			s.putTry(tr)
		}
		s.forget(k)
		s.taskCallbacks(ti, onSuccess, now)
		s.taskOutlets(ti, now)
	}
}

// fromHolder reports whether an event comes from the worker that holds its
// try: the one bound to it (holder), or any worker while none is.
func (s *Scheduler) fromHolder(ev wire.Event, sender, holder string) bool {
	if holder == "" || holder == sender {
		return true
	}
	s.log.Warn("ignoring an event from a worker that does not hold the try",
		"try", ev.TryKey.String(), "kind", ev.Kind, "worker", sender, "holder", holder)
	return false
}

// tick does the time-driven work of a turn: cron runs, and the tries in
// flight whose worker went silent or whose assignment may be lost.
func (s *Scheduler) tick(now time.Time) {
	s.cron(now)
	s.checkFlights(now)
	s.logs.sweep(now)
}
