package scheduler

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/dag/timetable"
	"github.com/kilnhq/kiln/store"
)

// BackfillRequest asks for a run for every logical date of a DAG's
// schedule in [From, To], both ends included (docs/cli.md#kiln-backfill).
type BackfillRequest struct {
	From, To      time.Time
	Reprocess     string // store.ReprocessNone (default), ReprocessFailed or ReprocessCompleted
	Reverse       bool
	MaxActiveRuns int // default DefaultBackfillActiveRuns
	Params        map[string]any
	DryRun        bool // plan only: nothing is created
	RequestedBy   string
	NoCache       bool // the runs run every task whatever the task cache holds
}

// DefaultBackfillActiveRuns is how many runs of a backfill run at once
// unless the request says otherwise.
const DefaultBackfillActiveRuns = 10

// backfillQueuedCap bounds how many backfill task instances wait in the
// workers' queues at once, so that a scheduled task is never queued behind
// a whole backfill.
const backfillQueuedCap = 4

// Backfill plans a backfill and, unless it is a dry run, starts it. The
// scheduler runs it from then on: closing the client or restarting the
// server does not stop it.
func (s *Scheduler) Backfill(ctx context.Context, dagID string, req BackfillRequest) (*store.Backfill, error) {
	v, err := s.do(ctx, func(now time.Time) (any, error) {
		bf, err := s.planBackfill(dagID, req, now)
		if err != nil || req.DryRun {
			return bf, err
		}
		s.nextBackfill++
		bf.ID = "bf-" + strconv.FormatUint(s.nextBackfill, 10)
		s.backfills[bf.ID] = bf
		s.putBackfill(bf)
		s.log.Info("backfill started", "backfill", bf.ID, "dag", bf.DAGID, "dates", len(bf.Dates),
			"from", bf.From, "to", bf.To, "reprocess", bf.Reprocess)
		s.driveBackfill(bf, now)
		return cloneBackfill(bf), nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*store.Backfill), nil
}

// CancelBackfill stops a backfill: dates whose run was not created are
// never run, runs still queued are marked failed without running, and runs
// already running finish (the backfill records how they end).
func (s *Scheduler) CancelBackfill(ctx context.Context, id string) (*store.Backfill, error) {
	v, err := s.do(ctx, func(now time.Time) (any, error) { return s.cancelBackfill(id, now) })
	if err != nil {
		return nil, err
	}
	return v.(*store.Backfill), nil
}

func (s *Scheduler) cancelBackfill(id string, now time.Time) (*store.Backfill, error) {
	bf := s.backfills[id]
	if bf == nil || bf.State != store.BackfillRunning {
		stored, err := s.cfg.Store.GetBackfill(id)
		if isNotFound(err) {
			return nil, fmt.Errorf("backfill %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%w: backfill %s already ended (%s)", ErrConflict, id, stored.State)
	}
	for i := range bf.Dates {
		d := &bf.Dates[i]
		ar := s.active[runKey{bf.DAGID, d.RunID}]
		if !d.Started || ar == nil || ar.run.State != store.RunQueued {
			continue
		}
		ar.run.State = store.RunFailed
		ar.run.EndDate = timePtr(now.UTC())
		s.putRun(ar.run)
		s.logRunEnded(ar.run)
		d.State = store.RunFailed
		d.Reason = "backfill cancelled before the run started"
	}
	bf.State = store.BackfillCancelled
	bf.EndDate = timePtr(now.UTC())
	s.putBackfill(bf)
	s.logBackfillEnded(bf)
	s.driveBackfill(bf, now) // keeps following its running runs until they end
	return cloneBackfill(bf), nil
}

func cloneBackfill(bf *store.Backfill) *store.Backfill {
	cp := *bf
	cp.Dates = slices.Clone(bf.Dates)
	return &cp
}

func (s *Scheduler) putBackfill(bf *store.Backfill) { s.t.backfills[bf.ID] = bf }

// planBackfill checks a request and decides what to do with each date.
func (s *Scheduler) planBackfill(dagID string, req BackfillRequest, now time.Time) (*store.Backfill, error) {
	d := s.dags[dagID]
	if d == nil {
		return nil, fmt.Errorf("DAG %q: %w", dagID, ErrNotFound)
	}
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if d.Timetable == nil {
		return nil, invalid("DAG %s has no schedule, so it has no logical dates to backfill; trigger it instead", dagID)
	}
	if req.From.After(req.To) {
		return nil, invalid("from %s is after to %s", req.From.Format(time.RFC3339), req.To.Format(time.RFC3339))
	}
	if req.Reprocess == "" {
		req.Reprocess = store.ReprocessNone
	}
	if !slices.Contains([]string{store.ReprocessNone, store.ReprocessFailed, store.ReprocessCompleted}, req.Reprocess) {
		return nil, invalid("reprocess %q: want none, failed or completed", req.Reprocess)
	}
	if req.MaxActiveRuns == 0 {
		req.MaxActiveRuns = DefaultBackfillActiveRuns
	}
	if req.MaxActiveRuns < 1 {
		return nil, invalid("max_active_runs must be at least 1")
	}
	if req.Reverse {
		for _, t := range d.Tasks {
			if t.DependsOnPast {
				return nil, invalid("--reverse is refused: task %s has depends_on_past, which needs older dates to run first", t.ID)
			}
		}
	}
	params, err := d.ResolveParams(req.Params)
	if err != nil {
		return nil, invalid("%v", err)
	}
	ivs := d.Timetable.Between(req.From, req.To)
	switch {
	case len(ivs) == 0:
		return nil, invalid("no logical date of schedule %q lies in %s .. %s (start_date %s)", d.Schedule,
			req.From.In(d.Location).Format(time.RFC3339), req.To.In(d.Location).Format(time.RFC3339), d.StartDate.Format(time.RFC3339))
	case len(ivs) >= timetable.MaxBetween:
		return nil, invalid("the range holds %d or more logical dates; backfill it in parts", timetable.MaxBetween)
	}
	if last := ivs[len(ivs)-1]; last.End.After(now) {
		msg := fmt.Sprintf("logical date %s is in the future: its data interval ends %s",
			last.Start.Format(time.RFC3339), last.End.Format(time.RFC3339))
		if iv, ok := d.Timetable.LatestEnded(now); ok {
			msg += fmt.Sprintf("; the latest date that can be backfilled is %s", iv.Start.Format(time.RFC3339))
		}
		return nil, invalid("%s", msg)
	}
	for _, bf := range s.backfills {
		if bf.DAGID == dagID && bf.State == store.BackfillRunning {
			return nil, fmt.Errorf("%w: DAG %s already has an active backfill, %s; cancel it or wait for it", ErrConflict, dagID, bf.ID)
		}
	}
	bf := &store.Backfill{
		DAGID: dagID, From: req.From.UTC(), To: req.To.UTC(), Reprocess: req.Reprocess, Reverse: req.Reverse,
		MaxActiveRuns: req.MaxActiveRuns, Params: params, RequestedBy: req.RequestedBy, NoCache: req.NoCache,
		State: store.BackfillRunning, CreatedAt: now.UTC(),
	}
	for _, iv := range ivs {
		bd := store.BackfillDate{LogicalDate: iv.Start.UTC(), Action: store.DateNew}
		r, err := s.runAt(dagID, iv.Start.UTC())
		if err != nil {
			return nil, err
		}
		if r != nil {
			bd.RunID = r.RunID
			bd.Action, bd.Reason = store.ReprocessAction(r, req.Reprocess)
		}
		bf.Dates = append(bf.Dates, bd)
	}
	if req.Reverse {
		slices.Reverse(bf.Dates)
	}
	return bf, nil
}

// runAt returns the DAG's run at a logical date, or nil.
func (s *Scheduler) runAt(dagID string, ld time.Time) (*store.Run, error) {
	for _, ar := range s.active {
		if ar.run.DAGID == dagID && ar.run.LogicalDate.Equal(ld) {
			return ar.run, nil
		}
	}
	r, err := s.cfg.Store.RunAt(dagID, ld)
	if isNotFound(err) {
		return nil, nil
	}
	return r, err
}

// driveBackfills advances every active backfill.
func (s *Scheduler) driveBackfills(now time.Time) {
	for _, bf := range s.backfills {
		s.driveBackfill(bf, now)
	}
}

// driveBackfill records the state of the backfill's runs, starts runs for
// pending dates while fewer than MaxActiveRuns are active, and ends the
// backfill when every date is done.
func (s *Scheduler) driveBackfill(bf *store.Backfill, now time.Time) {
	d := s.dags[bf.DAGID]
	changed := false
	active, first := 0, true
	for i := range bf.Dates {
		bd := &bf.Dates[i]
		if !bd.Started {
			continue
		}
		first = false
		if !bd.State.Finished() {
			if st := s.runState(bf.DAGID, bd.RunID); st != bd.State {
				bd.State, changed = st, true
			}
		}
		if !bd.State.Finished() {
			active++
		}
	}
	for i := range bf.Dates {
		if d == nil || active >= bf.MaxActiveRuns || bf.State != store.BackfillRunning {
			break
		}
		bd := &bf.Dates[i]
		if bd.Started || bd.Action == store.DateSkip {
			continue
		}
		if s.startBackfillDate(d, bf, bd, first, now) {
			active++
			first = false
		}
		changed = true
	}
	done, failed := true, false
	for _, bd := range bf.Dates {
		switch {
		case bd.Action == store.DateSkip:
		case !bd.Started:
			done = done && bf.State == store.BackfillCancelled
		case !bd.State.Finished():
			done = false
		case bd.State == store.RunFailed:
			failed = true
		}
	}
	if done {
		if bf.State == store.BackfillRunning {
			bf.State = store.BackfillSuccess
			if failed {
				bf.State = store.BackfillFailed
			}
			bf.EndDate = timePtr(now.UTC())
			s.logBackfillEnded(bf)
		}
		delete(s.backfills, bf.ID)
		changed = true
	}
	if changed {
		s.putBackfill(bf)
	}
}

// runState is the state of a run: from the loop when active, else stored.
func (s *Scheduler) runState(dagID, runID string) store.RunState {
	if ar := s.active[runKey{dagID, runID}]; ar != nil {
		return ar.run.State
	}
	r, err := s.cfg.Store.GetRun(dagID, runID)
	if err != nil {
		return store.RunQueued // not committed yet: created this turn
	}
	return r.State
}

// startBackfillDate creates or clears the run of one date. It reports
// whether a run was started; a date that got a run meanwhile is skipped.
func (s *Scheduler) startBackfillDate(d *dag.DAG, bf *store.Backfill, bd *store.BackfillDate, first bool, now time.Time) bool {
	iv, ok := d.Timetable.AtOrAfter(bd.LogicalDate)
	if !ok || !iv.Start.Equal(bd.LogicalDate) {
		bd.Action, bd.Reason = store.DateSkip, "no longer a logical date of the schedule"
		return false
	}
	existing, err := s.runAt(d.ID, bd.LogicalDate)
	if err != nil {
		s.log.Error("looking up a run", "dag", d.ID, "err", err)
		return false
	}
	var ar *activeRun
	switch {
	case existing == nil:
		ar = s.createRun(d, "backfill", iv.Start, iv, bf.Params, now)
	case bd.Action == store.DateNew || !existing.State.Finished():
		bd.Action, bd.Reason, bd.RunID = store.DateSkip, "a run appeared meanwhile ("+string(existing.State)+")", existing.RunID
		return false
	default:
		if _, err := s.clear(d.ID, existing.RunID, ClearRequest{}, now); err != nil {
			bd.Action, bd.Reason = store.DateSkip, "cannot re-run: "+err.Error()
			return false
		}
		ar = s.active[runKey{d.ID, existing.RunID}]
		if ar == nil {
			bd.Action, bd.Reason = store.DateSkip, "nothing to re-run"
			return false
		}
	}
	ar.run.BackfillID = bf.ID
	ar.run.IgnoreDependsOnPast = first
	ar.run.NoCache = bf.NoCache
	s.putRun(ar.run)
	bd.RunID, bd.Started, bd.State = ar.run.RunID, true, ar.run.State
	return true
}

// isBackfill reports whether a run belongs to a backfill: created by one, or
// a date one re-ran.
func isBackfill(r *store.Run) bool { return r.BackfillID != "" }
