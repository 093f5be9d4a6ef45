package scheduler

import (
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// flight is the loop's one record of a try that has not ended: a task's
// try from the turn that queues it, or a callback stage's. Everything the
// loop keeps about a try in flight — its stored record, where its
// assignment sits in the tasks stream, its last heartbeat, when to check
// that its assignment was not lost — lives here, and forget is the one
// path that drops it. Nothing else keeps per-try state, so memory and the
// loop's wake-ups follow the tries in flight, not the tries ever made.
type flight struct {
	try      *store.Try
	callback bool
	// gen counts the assignments made for this try: a sensor's try gets
	// one per poke. Answers from the helpers carry the generation they
	// were asked about; a stale one is ignored.
	gen uint64
	// seq is the assignment's sequence in the tasks stream, known once
	// JetStream acknowledged it; 0 when unknown (not yet published, or
	// recovered after a restart).
	seq uint64
	// beat is when the worker last reported the try; zero while queued.
	beat time.Time
	// checkAt is when to ask whether a queued try's assignment is still
	// waiting in the stream; zero: no check due.
	checkAt time.Time
	// checking is set while a check is out with the helper.
	checking bool
}

// track starts the record of a try in flight. A try already tracked (a
// sensor's next poke) keeps its record under a new generation.
func (s *Scheduler) track(tr *store.Try, callback bool) *flight {
	k := wire.TryKey{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.Key(), Try: tr.Number}
	f := s.flights[k]
	if f == nil {
		f = &flight{try: tr, callback: callback}
		s.flights[k] = f
	}
	f.gen++
	f.seq, f.beat, f.checkAt, f.checking = 0, time.Time{}, time.Time{}, false
	return f
}

// tryOf returns the stored record of a try in flight, or nil.
func (s *Scheduler) tryOf(k wire.TryKey) *store.Try {
	if f := s.flights[k]; f != nil {
		return f.try
	}
	return nil
}

// forget drops the record of a try that ended. Its log keeps taking the
// worker's last chunks for a heartbeat timeout more (logStore.release).
func (s *Scheduler) forget(k wire.TryKey) {
	f := s.flights[k]
	if f == nil {
		return
	}
	if !f.callback {
		s.metrics.tryEnded(f.try)
	}
	delete(s.flights, k)
	s.logs.release(k, s.clock.Now().Add(s.cfg.HeartbeatTimeout))
}

// started records that a worker took the try.
func (f *flight) started(now time.Time) {
	f.beat = now
	f.checkAt = time.Time{}
}

// published applies JetStream's answer to the publication of a try's
// assignment: once stored, the assignment is checked for loss after a
// heartbeat timeout; when it could not be published, at once.
func (s *Scheduler) published(p publishResult, now time.Time) {
	f := s.flights[p.key]
	if f == nil || f.gen != p.gen {
		return
	}
	if p.err != nil {
		s.metrics.publishErrors.Inc()
		s.log.Warn("publishing an assignment", "try", p.key.String(), "err", p.err)
		f.seq = 0
		if f.try.State == store.TaskQueued && !f.checking {
			f.checkAt = now
		}
		return
	}
	f.seq = p.seq
	if !f.callback {
		s.metrics.assignmentPublished(p.key, p.at)
	}
	if f.try.State == store.TaskQueued && f.beat.IsZero() && !f.checking {
		f.checkAt = now.Add(s.cfg.HeartbeatTimeout)
	}
}

// checked applies the helper's answer to whether a queued try's
// assignment is still waiting in the tasks stream.
func (s *Scheduler) checked(c checkResult, now time.Time) {
	f := s.flights[c.key]
	if f == nil || f.gen != c.gen {
		return
	}
	f.checking = false
	if f.try.State != store.TaskQueued {
		return // a worker started it meanwhile
	}
	switch {
	case c.err != nil:
		s.log.Warn("checking a queued try's assignment", "try", c.key.String(), "err", c.err)
		f.checkAt = now.Add(s.cfg.HeartbeatTimeout / 4)
	case c.pending:
		if c.seq != 0 {
			f.seq = c.seq
		}
		f.checkAt = now.Add(s.cfg.HeartbeatTimeout)
	default:
		s.lost(c.key, f, now)
	}
}

// lost handles a queued try whose assignment is gone from the stream
// although no worker reported it: published but not stored, or taken by a
// worker that died before it started, or lost in a restart. A task is
// queued again as a new try that does not count against its retries (the
// old try number is fenced off, so a late worker cannot count); a callback
// fails with the reason.
func (s *Scheduler) lost(k wire.TryKey, f *flight, now time.Time) {
	tr := f.try
	tr.State = store.TaskFailed
	tr.EndDate = timePtr(now.UTC())
	if f.callback {
		tr.Error = "the callback's assignment was lost before any worker started it; it did not run"
		s.noteIdle(k, tr.Error)
		s.putTry(tr)
		s.forget(k)
		return
	}
	tr.Error = "assignment lost before any worker started it; queued again"
	s.putTry(tr)
	s.forget(k)
	s.metrics.lost.Inc()
	ar := s.active[runKey{k.DAGID, k.RunID}]
	if ar == nil {
		return
	}
	ti := ar.tis[k.TaskID]
	if ti == nil || ti.TryNumber != k.Try || ti.State != store.TaskQueued {
		return
	}
	ti.MaxTries++
	ti.State = store.TaskScheduled
	s.putTI(ti)
	s.metrics.taskReady(ti, now)
}

// checkFlights does the time-driven work on the tries in flight: it fails
// those whose worker went silent or overran its timeout, and asks the
// helper about queued ones whose assignment may be lost.
func (s *Scheduler) checkFlights(now time.Time) {
	for k, f := range s.flights {
		switch f.try.State {
		case store.TaskQueued:
			if !f.checking && !f.checkAt.IsZero() && !now.Before(f.checkAt) {
				f.checking = true
				s.t.checks = append(s.t.checks, checkRequest{key: k, gen: f.gen, seq: f.seq})
			}
		case store.TaskRunning:
			if f.beat.IsZero() {
				f.beat = now // a worker reported nothing yet: give it a full timeout
				continue
			}
			if f.callback {
				s.checkCallback(k, f, now)
			} else {
				s.checkTask(k, f, now)
			}
		}
	}
}

// checkTask fails a running task's try whose worker stopped sending
// heartbeats, or did not stop the task at its timeout.
func (s *Scheduler) checkTask(k wire.TryKey, f *flight, now time.Time) {
	ar := s.active[runKey{k.DAGID, k.RunID}]
	if ar == nil {
		return
	}
	ti := ar.tis[k.TaskID]
	if ti == nil || ti.TryNumber != k.Try || ti.State != store.TaskRunning {
		return
	}
	var msg string
	switch t := ar.dag.Task(ti.TaskID); {
	case now.Sub(f.beat) > s.cfg.HeartbeatTimeout:
		msg = "worker " + ti.Worker + " stopped sending heartbeats: no heartbeat for " + s.cfg.HeartbeatTimeout.String()
		s.metrics.zombies.WithLabelValues("heartbeat").Inc()
		s.workerLost(ti.Worker, k)
	case t != nil && t.Timeout > 0 && ti.StartDate != nil && now.Sub(*ti.StartDate) > t.Timeout+s.cfg.HeartbeatTimeout:
		// The worker enforces timeouts; this catches one that did not.
		msg = "timed out after " + t.Timeout.String() + ": worker " + ti.Worker + " did not stop the task"
		s.metrics.zombies.WithLabelValues("timeout").Inc()
	default:
		return
	}
	s.note(k, msg)
	s.t.cancels = append(s.t.cancels, wire.Cancel{TryKey: k, Reason: msg})
	s.tryFailed(ar, ti, msg, nil, now)
}

// nextCheck is the earliest check of a lost assignment that is due after
// now, or the zero time.
func (s *Scheduler) nextCheck() time.Time {
	var next time.Time
	for _, f := range s.flights {
		if f.checking || f.checkAt.IsZero() || f.try.State != store.TaskQueued {
			continue
		}
		if next.IsZero() || f.checkAt.Before(next) {
			next = f.checkAt
		}
	}
	return next
}
