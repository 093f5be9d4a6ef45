package scheduler

import (
	"fmt"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// Callbacks (docs/dag-format.md#callbacks) are stages run when a task succeeds, fails or is
// retried, or when a run ends: `on_success`, `on_failure` and `on_retry` on
// a task (or under `defaults`) and on the DAG. Each runs on a worker like a
// task, as a try of its own recorded in the store with its own log, under
// the id TASK.EVENT.N (or @run.EVENT.N for the DAG's), N counting from 1
// in the file's order. What a callback does never changes the state of the
// task or run it reports on.

// Callback events.
const (
	onSuccess = "on_success"
	onFailure = "on_failure"
	onRetry   = "on_retry"
)

// runCallbackPrefix names the DAG-level callbacks; `@` cannot start a task id.
const runCallbackPrefix = "@run"

func callbacksFor(cb dag.Callbacks, event string) []*dag.Callback {
	switch event {
	case onSuccess:
		return cb.OnSuccess
	case onFailure:
		return cb.OnFailure
	}
	return cb.OnRetry
}

// taskCallbacks fires a task's callbacks for an event; on_retry also fires
// the DAG's.
func (s *Scheduler) taskCallbacks(ti *store.TaskInstance, event string, now time.Time) {
	ar := s.active[runKey{ti.DAGID, ti.RunID}]
	if ar == nil {
		return
	}
	t := ar.dag.Task(ti.TaskID)
	if t == nil {
		return
	}
	try := max(ti.TryNumber, 1) // a `when` that errs fails the task before its first try
	s.fireCallbacks(ar, t, ti.Key(), try, event, callbacksFor(t.Callbacks, event), string(ti.State), ti.Error, now)
	if event == onRetry {
		s.fireCallbacks(ar, t, runCallbackPrefix, try, event, callbacksFor(ar.dag.Callbacks, event), string(ti.State), ti.Error, now)
	}
}

// runCallbacks fires the DAG's callbacks for a run that ended.
func (s *Scheduler) runCallbacks(ar *activeRun, now time.Time) {
	event, errMsg := onSuccess, ""
	if ar.run.State == store.RunFailed {
		event, errMsg = onFailure, "the run failed"
	}
	s.fireCallbacks(ar, nil, runCallbackPrefix, 1, event, callbacksFor(ar.dag.Callbacks, event), string(ar.run.State), errMsg, now)
}

// fireCallbacks queues one assignment per callback stage.
func (s *Scheduler) fireCallbacks(ar *activeRun, t *dag.Task, owner string, try int, event string, cbs []*dag.Callback, state, errMsg string, now time.Time) {
	for i, cb := range cbs {
		k := wire.TryKey{DAGID: ar.run.DAGID, RunID: ar.run.RunID, TaskID: owner + "." + event + "." + strconv.Itoa(i+1), Try: try}
		tr := &store.Try{MapIndex: store.NoMapIndex, DAGID: k.DAGID, RunID: k.RunID, TaskID: k.TaskID, Number: try, State: store.TaskQueued, QueuedAt: now.UTC(), Callback: true}
		s.putTry(tr)
		a, err := s.renderCallback(ar, t, owner, try, cb, state, errMsg, now)
		if err != nil {
			msg := fmt.Sprintf("rendering the %s callback: %v", event, err)
			s.noteIdle(k, msg)
			tr.State, tr.Error, tr.EndDate = store.TaskFailed, msg, timePtr(now.UTC())
			continue
		}
		a.TryKey = k
		s.track(tr, true)
		s.t.assign = append(s.t.assign, a)
	}
}

// renderCallback builds a callback's assignment; its templates also see
// .state, .error and .log_url.
func (s *Scheduler) renderCallback(ar *activeRun, t *dag.Task, owner string, try int, cb *dag.Callback, state, errMsg string, now time.Time) (*wire.Assignment, error) {
	taskID, queue := "", dag.DefaultQueue
	if t != nil {
		taskID, queue = t.ID, t.Queue
	}
	v := s.values(ar, &dag.Task{ID: taskID}, &store.TaskInstance{MapIndex: store.NoMapIndex}, try)
	logURL := fmt.Sprintf("/api/v1/dags/%s/runs/%s", ar.run.DAGID, ar.run.RunID)
	if t != nil {
		logURL += fmt.Sprintf("/tasks/%s/logs?try=%d", t.ID, try)
		if _, i, ok := store.SplitInstanceKey(owner); ok && i >= 0 {
			logURL += fmt.Sprintf("&map_index=%d", i)
		}
	}
	v.Callback = map[string]any{"state": state, "error": errMsg, "log_url": logURL}
	data := v.Data(ar.dag.Location)
	with, err := dag.RenderValue(cb.With, data)
	if err != nil {
		return nil, fmt.Errorf("with.%w", err)
	}
	withMap, _ := with.(map[string]any)
	env := s.kilnEnv(nil, v, ar.dag.Location)
	env["KILN_STATE"], env["KILN_ERROR"], env["KILN_LOG_URL"] = state, errMsg, logURL
	return &wire.Assignment{
		Queue: queue, Plugin: cb.Plugin, With: withMap, Env: env,
		LogLimit: s.cfg.LogLimit, Heartbeat: s.cfg.HeartbeatTimeout / 6, QueuedAt: now.UTC(),
	}, nil
}

// applyCallbackEvent records what a worker reports about a callback. It
// reports whether the event was about one.
func (s *Scheduler) applyCallbackEvent(ev wire.Event, worker string, now time.Time) bool {
	f := s.flights[ev.TryKey]
	if f == nil || !f.callback {
		return false
	}
	tr := f.try
	if !s.fromHolder(ev, worker, tr.Worker) {
		return true
	}
	switch ev.Kind {
	case wire.EventStarted:
		tr.State, tr.StartDate, tr.Worker = store.TaskRunning, timePtr(ev.Time.UTC()), worker
		f.started(now)
	case wire.EventHeartbeat:
		f.beat = now
	case wire.EventFinished:
		tr.State, tr.EndDate, tr.ExitCode, tr.Error, tr.Outputs = store.TaskFailed, timePtr(now.UTC()), ev.ExitCode, ev.Error, ev.Outputs
		tr.Worker = worker
		if ev.Success {
			tr.State = store.TaskSuccess
		}
		s.forget(ev.TryKey)
	}
	s.putTry(tr)
	return true
}

// checkCallback fails a running callback whose worker went silent.
func (s *Scheduler) checkCallback(k wire.TryKey, f *flight, now time.Time) {
	if now.Sub(f.beat) <= s.cfg.HeartbeatTimeout {
		return
	}
	tr := f.try
	tr.Error = fmt.Sprintf("worker %s stopped sending heartbeats", tr.Worker)
	tr.State, tr.EndDate = store.TaskFailed, timePtr(now.UTC())
	s.note(k, tr.Error)
	s.putTry(tr)
	s.forget(k)
}

// recoverCallbacks takes up again the callbacks that had not finished when
// the scheduler stopped. A running one's worker reports its end, or its
// silence fails it. A queued one is checked after lostGrace: if its
// assignment still waits in the tasks stream it reaches a worker; if not,
// it was either taken by a worker whose started event has arrived by then,
// or lost between the commit that queued it and its publication, and then
// fails with that reason.
func (s *Scheduler) recoverCallbacks(now time.Time) error {
	open, err := s.cfg.Store.OpenCallbacks()
	if err != nil {
		return err
	}
	for _, tr := range open {
		s.recoverFlight(tr, true, now)
	}
	return nil
}
