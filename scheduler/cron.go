package scheduler

import (
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/dag/timetable"
	"github.com/kilnhq/kiln/store"
)

// cron creates the scheduled runs that are due (docs/dag-format.md#schedules-and-data-intervals): with catchup,
// every ended interval after the last scheduled one, oldest first, while
// the DAG is under max_active_runs; without, only the latest ended one.
func (s *Scheduler) cron(now time.Time) {
	for id, at := range s.nextCron {
		if at.IsZero() || now.Before(at) {
			continue
		}
		d := s.dags[id]
		st := s.states[id]
		if d == nil || st == nil || d.Timetable == nil || st.Paused {
			s.nextCron[id] = time.Time{}
			continue
		}
		s.nextCron[id] = s.scheduleDAG(d, st, now)
	}
}

// scheduleDAG creates the DAG's due runs and returns when to look again
// (zero: when a run ends or the DAG changes).
func (s *Scheduler) scheduleDAG(d *dag.DAG, st *store.DAGState, now time.Time) time.Time {
	active := 0
	for _, ar := range s.active {
		if ar.run.DAGID == d.ID {
			active++
		}
	}
	tt := d.Timetable
	iv, ok := nextRun(d, st, now)
	for ok && !iv.End.After(now) {
		if active >= d.MaxActiveRuns {
			return time.Time{} // maybeFinishRun looks again when a run ends
		}
		exists, err := s.hasRunAt(d.ID, iv.Start.UTC())
		if err != nil {
			s.log.Error("looking up a run", "dag", d.ID, "err", err)
			return now.Add(time.Second)
		}
		if !exists {
			params, _ := d.ResolveParams(nil) // loading checked that every param has a default
			s.createRun(d, "scheduled", iv.Start, iv, params, now)
			active++
		}
		st.LastScheduled = iv.Start.UTC()
		s.t.states[d.ID] = st
		if !d.Catchup {
			break
		}
		iv, ok = tt.Next(iv)
	}
	if iv, ok = nextRun(d, st, now); ok {
		return iv.End
	}
	return time.Time{}
}

// nextRun is the interval whose scheduled run is created next
// (timetable.NextRun): what cron creates, and what DAGs shows as the
// next run.
func nextRun(d *dag.DAG, st *store.DAGState, now time.Time) (timetable.Interval, bool) {
	var last time.Time
	if st != nil {
		last = st.LastScheduled
	}
	return d.Timetable.NextRun(last, d.Catchup, now)
}
