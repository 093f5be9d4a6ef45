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

func encode(v any) ([]byte, error) { return json.Marshal(v) }

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
	tr := s.tries[k]
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
		s.heartbeats[k] = now
		delete(s.lostCheck, k)
	case wire.EventHeartbeat:
		s.heartbeats[k] = now
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
		s.forgetTry(k)
		s.taskCallbacks(ti, onSuccess, now)
	}
}

// tick does the time-driven work of a turn: cron runs, tries whose worker
// went silent, assignments that were lost.
func (s *Scheduler) tick(now time.Time) {
	s.cron(now)
	s.checkCallbacks(now)
	for _, ar := range s.active {
		for _, ti := range ar.tis {
			if ti.State != store.TaskRunning && ti.State != store.TaskQueued {
				continue
			}
			k := tryKeyOf(ti)
			if ti.State == store.TaskRunning {
				last, ok := s.heartbeats[k]
				if !ok {
					s.heartbeats[k] = now // recovered: give the worker a full timeout
					continue
				}
				var msg string
				switch t := ar.dag.Task(ti.TaskID); {
				case now.Sub(last) > s.cfg.HeartbeatTimeout:
					msg = fmt.Sprintf("worker %s stopped sending heartbeats: no heartbeat for %s", ti.Worker, s.cfg.HeartbeatTimeout)
					s.metrics.zombies.WithLabelValues("heartbeat").Inc()
				case t != nil && t.Timeout > 0 && ti.StartDate != nil && now.Sub(*ti.StartDate) > t.Timeout+s.cfg.HeartbeatTimeout:
					// The worker enforces timeouts; this catches one that did not.
					msg = fmt.Sprintf("timed out after %s: worker %s did not stop the task", t.Timeout, ti.Worker)
					s.metrics.zombies.WithLabelValues("timeout").Inc()
				default:
					continue
				}
				s.logs.note(k, msg)
				s.t.cancels = append(s.t.cancels, wire.Cancel{TryKey: k, Reason: msg})
				s.tryFailed(ar, ti, msg, nil, now)
				continue
			}
			if at, ok := s.lostCheck[k]; ok && !now.Before(at) {
				s.checkLost(ar, ti, now)
			}
		}
	}
}

// checkLost handles a queued try whose assignment may be gone: published
// but not stored, or taken by a worker that died before it started. If the
// assignment is still waiting in the stream, it is left alone; otherwise
// the task is queued again as a new try that does not count against its
// retries (the old try number is fenced off, so a late worker cannot count).
func (s *Scheduler) checkLost(ar *activeRun, ti *store.TaskInstance, now time.Time) {
	k := tryKeyOf(ti)
	if seq, ok := s.assigned[k]; ok && s.assignmentPending(seq) {
		s.lostCheck[k] = now.Add(s.cfg.HeartbeatTimeout)
		return
	}
	if tr := s.tries[k]; tr != nil {
		tr.State = store.TaskFailed
		tr.EndDate = timePtr(now.UTC())
		tr.Error = "assignment lost before any worker started it; queued again"
		s.putTry(tr)
	}
	s.forgetTry(k)
	s.metrics.lost.Inc()
	ti.MaxTries++
	ti.State = store.TaskScheduled
	s.putTI(ti)
	s.metrics.taskReady(ti, now)
}

// assignmentPending reports whether an assignment is still in the tasks
// stream, i.e. no worker has taken it yet.
func (s *Scheduler) assignmentPending(seq uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.js.Stream(ctx, wire.TasksStream)
	if err != nil {
		return true // unsure: check again later
	}
	_, err = st.GetMsg(ctx, seq)
	return err == nil || !errors.Is(err, jetstream.ErrMsgNotFound)
}

func (s *Scheduler) sendCancel(c wire.Cancel) {
	data, err := encode(c)
	if err == nil {
		err = s.cfg.NATS.Publish(wire.CancelSubject, data)
	}
	if err != nil {
		s.log.Warn("sending a cancel", "try", c.TryKey.String(), "err", err)
	}
}
