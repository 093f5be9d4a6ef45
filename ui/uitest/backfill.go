package uitest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// Backfill implements ui.Backend. It checks and plans a backfill as the
// scheduler does (the same refusals, the same action and reason per date)
// and, unless it is a dry run, stores it and starts queued runs for its
// first MaxActiveRuns dates. Runs move on only when a test calls
// SetBackfillRun.
func (b *Backend) Backfill(ctx context.Context, dagID string, req scheduler.BackfillRequest) (*store.Backfill, error) {
	b.bfMu.Lock()
	defer b.bfMu.Unlock()
	b.mu.Lock()
	b.Backfills = append(b.Backfills, req)
	info, ok := b.dags[dagID]
	now := b.now()
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("DAG %q: %w", dagID, scheduler.ErrNotFound)
	}
	bf, err := b.planBackfill(info.DAG, req, now)
	if err != nil || req.DryRun {
		return bf, err
	}
	b.nextBackfill++
	bf.ID = "bf-" + strconv.Itoa(b.nextBackfill)
	var batch store.Batch
	if err := b.driveBackfill(info.DAG, bf, now, &batch); err != nil {
		return nil, err
	}
	batch.PutBackfill(bf)
	if err := b.st.Commit(ctx, &batch); err != nil {
		return nil, err
	}
	return bf, nil
}

func (b *Backend) planBackfill(g *dag.DAG, req scheduler.BackfillRequest, now time.Time) (*store.Backfill, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", scheduler.ErrInvalid, fmt.Sprintf(format, args...))
	}
	if g.Timetable == nil {
		return nil, invalid("DAG %s has no schedule, so it has no logical dates to backfill; trigger it instead", g.ID)
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
		req.MaxActiveRuns = scheduler.DefaultBackfillActiveRuns
	}
	if req.MaxActiveRuns < 1 {
		return nil, invalid("max_active_runs must be at least 1")
	}
	if req.Reverse {
		for _, t := range g.Tasks {
			if t.DependsOnPast {
				return nil, invalid("--reverse is refused: task %s has depends_on_past, which needs older dates to run first", t.ID)
			}
		}
	}
	params, err := g.ResolveParams(req.Params)
	if err != nil {
		return nil, invalid("%v", err)
	}
	ivs := g.Timetable.Between(req.From, req.To)
	if len(ivs) == 0 {
		return nil, invalid("no logical date of schedule %q lies in %s .. %s", g.Schedule,
			req.From.In(g.Location).Format(time.RFC3339), req.To.In(g.Location).Format(time.RFC3339))
	}
	if last := ivs[len(ivs)-1]; last.End.After(now) {
		return nil, invalid("logical date %s is in the future: its data interval ends %s",
			last.Start.Format(time.RFC3339), last.End.Format(time.RFC3339))
	}
	existing, err := b.st.Backfills(g.ID)
	if err != nil {
		return nil, err
	}
	for _, bf := range existing {
		if bf.State == store.BackfillRunning {
			return nil, fmt.Errorf("%w: DAG %s already has an active backfill, %s; cancel it or wait for it", scheduler.ErrConflict, g.ID, bf.ID)
		}
	}
	bf := &store.Backfill{
		DAGID: g.ID, From: req.From.UTC(), To: req.To.UTC(), Reprocess: req.Reprocess, Reverse: req.Reverse,
		MaxActiveRuns: req.MaxActiveRuns, Params: params, RequestedBy: req.RequestedBy,
		State: store.BackfillRunning, CreatedAt: now.UTC(),
	}
	for _, iv := range ivs {
		bd := store.BackfillDate{LogicalDate: iv.Start.UTC(), Action: store.DateNew}
		if r, err := b.st.RunAt(g.ID, bd.LogicalDate); err == nil {
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

// driveBackfill starts queued runs for pending dates while fewer than
// MaxActiveRuns are unfinished, and ends the backfill when every date is
// done. It adds what it changes to batch, except the backfill itself.
func (b *Backend) driveBackfill(g *dag.DAG, bf *store.Backfill, now time.Time, batch *store.Batch) error {
	active := 0
	for _, bd := range bf.Dates {
		if bd.Started && !bd.State.Finished() {
			active++
		}
	}
	for i := range bf.Dates {
		bd := &bf.Dates[i]
		if bf.State != store.BackfillRunning || active >= bf.MaxActiveRuns {
			break
		}
		if bd.Started || bd.Action == store.DateSkip {
			continue
		}
		run, err := b.backfillRun(g, bf, bd, now)
		if err != nil {
			return err
		}
		batch.PutRun(run)
		for _, t := range g.Tasks {
			batch.PutTaskInstance(&store.TaskInstance{
				DAGID: g.ID, RunID: run.RunID, TaskID: t.ID, State: store.TaskNone,
				MaxTries: t.Retries + 1, Queue: t.Queue, Pool: t.Pool, PoolSlots: t.PoolSlots, Priority: t.Priority,
			})
		}
		bd.RunID, bd.Started, bd.State = run.RunID, true, run.State
		active++
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
	if done && bf.State == store.BackfillRunning {
		bf.State = store.BackfillSuccess
		if failed {
			bf.State = store.BackfillFailed
		}
		bf.EndDate = ptr(now.UTC())
	}
	return nil
}

// backfillRun is the queued run a backfill starts for a date: a new one,
// or the date's run made to run again.
func (b *Backend) backfillRun(g *dag.DAG, bf *store.Backfill, bd *store.BackfillDate, now time.Time) (*store.Run, error) {
	if bd.Action == store.DateRerun {
		run, err := b.st.GetRun(g.ID, bd.RunID)
		if err != nil {
			return nil, err
		}
		run.State, run.StartDate, run.EndDate = store.RunQueued, nil, nil
		run.BackfillID = bf.ID
		return run, nil
	}
	iv, ok := g.Timetable.AtOrAfter(bd.LogicalDate)
	if !ok {
		return nil, fmt.Errorf("%s is no logical date of DAG %s", bd.LogicalDate, g.ID)
	}
	return &store.Run{
		DAGID:             g.ID,
		RunID:             store.RunTypeBackfill + "__" + bd.LogicalDate.Format(time.RFC3339),
		RunType:           store.RunTypeBackfill,
		State:             store.RunQueued,
		LogicalDate:       bd.LogicalDate,
		DataIntervalStart: iv.Start.UTC(),
		DataIntervalEnd:   iv.End.UTC(),
		QueuedAt:          now.UTC(),
		Params:            bf.Params,
		DAGHash:           g.Hash,
		BackfillID:        bf.ID,
	}, nil
}

// SetBackfillRun plays the scheduler for one date of a backfill: the date's
// run takes state (and a start and end date to go with it), the backfill
// records it, starts runs for pending dates and ends when all are done.
func (b *Backend) SetBackfillRun(id string, logicalDate time.Time, state store.RunState) {
	b.t.Helper()
	b.bfMu.Lock()
	defer b.bfMu.Unlock()
	bf, err := b.st.GetBackfill(id)
	if err != nil {
		b.t.Fatalf("SetBackfillRun: %v", err)
	}
	i := slices.IndexFunc(bf.Dates, func(d store.BackfillDate) bool { return d.LogicalDate.Equal(logicalDate) })
	if i < 0 || !bf.Dates[i].Started {
		b.t.Fatalf("SetBackfillRun: backfill %s has no run started at %s", id, logicalDate.Format(time.RFC3339))
	}
	bd := &bf.Dates[i]
	run, err := b.st.GetRun(bf.DAGID, bd.RunID)
	if err != nil {
		b.t.Fatalf("SetBackfillRun: %v", err)
	}
	b.mu.Lock()
	now := b.now().UTC()
	info := b.dags[bf.DAGID]
	b.mu.Unlock()
	run.State = state
	if state != store.RunQueued && run.StartDate == nil {
		run.StartDate = ptr(now)
	}
	if state.Finished() {
		run.EndDate = ptr(now)
	}
	bd.State = state
	var batch store.Batch
	batch.PutRun(run)
	if info != nil {
		if err := b.driveBackfill(info.DAG, bf, now, &batch); err != nil {
			b.t.Fatalf("SetBackfillRun: %v", err)
		}
	}
	batch.PutBackfill(bf)
	if err := b.st.Commit(context.Background(), &batch); err != nil {
		b.t.Fatalf("SetBackfillRun: %v", err)
	}
}

// CancelBackfill implements ui.Backend as the scheduler does: pending dates
// never get a run, queued runs fail without running, running ones are left
// to finish.
func (b *Backend) CancelBackfill(ctx context.Context, id string) (*store.Backfill, error) {
	b.bfMu.Lock()
	defer b.bfMu.Unlock()
	b.mu.Lock()
	b.CancelBackfills = append(b.CancelBackfills, id)
	now := b.now().UTC()
	b.mu.Unlock()
	bf, err := b.st.GetBackfill(id)
	if err != nil {
		return nil, fmt.Errorf("backfill %s: %w", id, scheduler.ErrNotFound)
	}
	if bf.State != store.BackfillRunning {
		return nil, fmt.Errorf("%w: backfill %s already ended (%s)", scheduler.ErrConflict, id, bf.State)
	}
	var batch store.Batch
	for i := range bf.Dates {
		d := &bf.Dates[i]
		if !d.Started || d.State != store.RunQueued {
			continue
		}
		run, err := b.st.GetRun(bf.DAGID, d.RunID)
		if err != nil {
			return nil, err
		}
		run.State, run.EndDate = store.RunFailed, ptr(now)
		batch.PutRun(run)
		d.State = store.RunFailed
		d.Reason = "backfill cancelled before the run started"
	}
	bf.State, bf.EndDate = store.BackfillCancelled, ptr(now)
	batch.PutBackfill(bf)
	if err := b.st.Commit(ctx, &batch); err != nil {
		return nil, err
	}
	return bf, nil
}

func ptr[T any](v T) *T { return &v }
