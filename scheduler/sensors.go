package scheduler

import (
	"fmt"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// Sensors (docs/dag-format.md#sensors) wait for a condition. Each poke of a try is an
// assignment; a poke that finds the condition unmet reports PokeAgain. In
// reschedule mode the task then waits as up_for_reschedule, its worker slot
// free, until poke_interval has passed; in poke mode the worker pokes again
// itself, holding the slot. Either way the try ends when the condition is
// met, the sensor fails, or sensor_timeout has passed since the first
// poke: then the task fails (or, with soft_fail, is skipped) without
// retries. dag_sensor needs the store, so the scheduler pokes it itself.

func sensorDeadline(t *dag.Task, ti *store.TaskInstance) time.Time {
	if ti.FirstPoke == nil {
		return time.Time{}.Add(1<<63 - 1)
	}
	return ti.FirstPoke.Add(t.Sensor.Timeout)
}

// reschedule parks a sensor until its next poke.
func (s *Scheduler) reschedule(t *dag.Task, ti *store.TaskInstance, now time.Time) {
	// The try stays in flight between pokes, with nothing to check.
	if f := s.flights[tryKeyOf(ti)]; f != nil {
		f.try.State = store.TaskUpForReschedule
		f.seq, f.beat, f.checkAt = 0, time.Time{}, time.Time{}
		s.putTry(f.try)
	}
	ti.State = store.TaskUpForReschedule
	ti.NotBefore = now.Add(t.Sensor.PokeInterval).UTC()
	s.putTI(ti)
}

// sensorTimedOut ends a sensor whose sensor_timeout passed: failed, or
// skipped with soft_fail. It is not retried.
func (s *Scheduler) sensorTimedOut(ar *activeRun, t *dag.Task, ti *store.TaskInstance, now time.Time) {
	k := tryKeyOf(ti)
	msg := fmt.Sprintf("sensor timed out: its condition was not met within %s of the first poke", t.Sensor.Timeout)
	state := store.TaskFailed
	if t.Sensor.SoftFail {
		state = store.TaskSkipped
		msg += " (soft_fail: skipped)"
	}
	s.noteIdle(k, msg)
	if tr := s.tryOf(k); tr != nil {
		tr.State = state
		tr.EndDate = timePtr(now.UTC())
		tr.Error = msg
		s.putTry(tr)
	}
	s.forget(k)
	ti.Pokes, ti.FirstPoke = 0, nil
	s.endTI(ti, state, msg, now)
}

// pokeDAGSensor checks a dag_sensor's condition in the store: a run of
// another DAG (or one task of it) for a logical date reached a state.
func (s *Scheduler) pokeDAGSensor(ar *activeRun, t *dag.Task, ti *store.TaskInstance, now time.Time) {
	k := tryKeyOf(ti)
	tr := s.tryOf(k)
	if ti.StartDate == nil {
		ti.StartDate = timePtr(now.UTC())
		tr.StartDate = ti.StartDate
	}
	ti.State, tr.State = store.TaskRunning, store.TaskRunning
	ti.Worker, tr.Worker = "scheduler", "scheduler"
	met, msg, err := s.dagSensorMet(ar, t, ti)
	if err != nil {
		s.noteIdle(k, "dag_sensor: "+err.Error())
		s.tryFailed(ar, ti, "dag_sensor: "+err.Error(), nil, now)
		return
	}
	s.noteIdle(k, fmt.Sprintf("poke %d: %s", ti.Pokes, msg))
	if !met {
		s.reschedule(t, ti, now)
		return
	}
	s.endTI(ti, store.TaskSuccess, "", now)
	ti.Pokes, ti.FirstPoke = 0, nil
	tr.State, tr.EndDate = store.TaskSuccess, ti.EndDate
	s.putTry(tr)
	s.forget(k)
}

// dagSensorMet evaluates a dag_sensor's `with` against the store.
func (s *Scheduler) dagSensorMet(ar *activeRun, t *dag.Task, ti *store.TaskInstance) (bool, string, error) {
	data := s.values(ar, t, ti, ti.TryNumber).Data(ar.dag.Location)
	rendered, err := dag.RenderValue(t.With, data)
	if err != nil {
		return false, "", err
	}
	with, _ := rendered.(map[string]any)
	str := func(key, def string) string {
		if v, ok := with[key].(string); ok && v != "" {
			return v
		}
		return def
	}
	target, task, want := str("dag", ""), str("task", ""), store.RunState(str("state", "success"))
	ld := ar.run.LogicalDate
	if v := str("logical_date", ""); v != "" {
		parsed, err := time.Parse(time.RFC3339, v)
		if err != nil {
			if parsed, err = time.ParseInLocation(time.DateOnly, v, ar.dag.Location); err != nil {
				return false, "", fmt.Errorf("logical_date %q: want RFC 3339 or YYYY-MM-DD", v)
			}
		}
		ld = parsed.UTC()
	}
	r, err := s.runAt(target, ld)
	if err != nil {
		return false, "", err
	}
	what := fmt.Sprintf("run of DAG %s for %s", target, ld.Format(time.RFC3339))
	if r == nil {
		return false, what + " does not exist yet; waiting for " + string(want), nil
	}
	state := string(r.State)
	if task != "" {
		what = fmt.Sprintf("task %s of %s", task, what)
		state = string(store.TaskNone)
		if o := s.active[runKey{r.DAGID, r.RunID}]; o != nil && o.tis[task] != nil {
			state = string(o.tis[task].State)
		} else if x, err := s.cfg.Store.GetTaskInstance(r.DAGID, r.RunID, task); err == nil {
			state = string(x.State)
		}
	}
	return state == string(want), fmt.Sprintf("%s is %s; waiting for %s", what, state, want), nil
}
