package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// lostGrace is how long a queued try whose assignment is no longer in the
// stream may wait for its started event after a restart: the worker that
// took it may have reported it in an event not consumed yet.
const lostGrace = 5 * time.Second

// recover rebuilds the loop's state from the store alone: DAG states,
// pools, every queued or running run with its task instances, and the
// callbacks that had not finished.
func (s *Scheduler) recover(ctx context.Context, set *dag.Set) error {
	s.t = newTurn()
	states, err := s.cfg.Store.DAGStates()
	if err != nil {
		return err
	}
	s.states = states
	pools, err := s.cfg.Store.Pools()
	if err != nil {
		return err
	}
	for _, p := range pools {
		s.pools[p.Name] = p.Slots
	}
	s.applySet(set)
	bfs, err := s.cfg.Store.Backfills("")
	if err != nil {
		return err
	}
	for _, bf := range bfs {
		if n, err := strconv.ParseUint(strings.TrimPrefix(bf.ID, "bf-"), 10, 64); err == nil {
			s.nextBackfill = max(s.nextBackfill, n)
		}
		if bf.State == store.BackfillRunning {
			s.backfills[bf.ID] = bf
		}
	}
	runs, err := s.cfg.Store.ActiveRuns()
	if err != nil {
		return err
	}
	pending, err := s.pendingAssignments(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	for _, r := range runs {
		ar, err := s.load(r)
		if err != nil {
			s.log.Warn("cannot resume a run until its DAG loads again", "dag", r.DAGID, "run", r.RunID, "err", err)
			continue
		}
		s.active[ar.key()] = ar
		for _, ti := range ar.tis {
			if ti.State != store.TaskQueued && ti.State != store.TaskRunning {
				continue
			}
			k := tryKeyOf(ti)
			tr, err := s.cfg.Store.GetTry(k.DAGID, k.RunID, k.TaskID, k.Try)
			if err != nil {
				tr = &store.Try{DAGID: k.DAGID, RunID: k.RunID, TaskID: k.TaskID, Number: k.Try, State: ti.State}
			}
			s.tries[k] = tr
			if ti.State != store.TaskQueued {
				continue
			}
			if seq, ok := pending[k]; ok {
				s.assigned[k] = seq
				s.lostCheck[k] = now.Add(s.cfg.HeartbeatTimeout)
			} else {
				s.lostCheck[k] = now.Add(lostGrace)
			}
		}
	}
	if err := s.recoverCallbacks(pending, now); err != nil {
		return err
	}
	if err := s.flush(ctx); err != nil {
		return err
	}
	s.log.Info("scheduler recovered", "dags", len(s.dags), "active_runs", len(s.active), "pending_assignments", len(pending))
	return nil
}

// pendingAssignments lists the assignments still waiting in the tasks
// stream, by try.
func (s *Scheduler) pendingAssignments(ctx context.Context) (map[wire.TryKey]uint64, error) {
	st, err := s.js.Stream(ctx, wire.TasksStream)
	if err != nil {
		return nil, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := map[wire.TryKey]uint64{}
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var a wire.Assignment
		if json.Unmarshal(m.Data, &a) == nil {
			out[a.TryKey] = seq
		}
	}
	return out, nil
}
