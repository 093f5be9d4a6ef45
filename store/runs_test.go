package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRunRoundTrip(t *testing.T) {
	s := openTest(t)
	start := day(2).Add(5 * time.Minute)
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		run  *Run
	}{
		{"scheduled", newRun("etl", day(1), RunQueued)},
		{"manual with dates", &Run{
			DAGID: "ml.churn-v2", RunID: "manual__2026-01-02T03:04:05.123+01:00", RunType: RunTypeManual,
			State: RunSuccess, LogicalDate: time.Date(2026, 1, 2, 3, 4, 5, 123, berlin),
			QueuedAt: day(2), StartDate: &start, EndDate: &start,
			Params: map[string]any{"nested": map[string]any{"a": []any{"x", 1.5}}},
		}},
		{"backfill", func() *Run {
			r := newRun("etl", day(3), RunFailed)
			r.RunID, r.RunType, r.BackfillID = "backfill__2026-01-04T00:00:00Z", RunTypeBackfill, "bf-1"
			return r
		}()},
		{"before 1970", newRun("etl", time.Date(1960, 5, 1, 0, 0, 0, 0, time.UTC), RunSuccess)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			commit(t, s, func(b *Batch) { b.PutRun(tt.run) })
			got, err := s.GetRun(tt.run.DAGID, tt.run.RunID)
			if err != nil {
				t.Fatalf("GetRun: %v", err)
			}
			if diff := cmp.Diff(tt.run, got); diff != "" {
				t.Errorf("GetRun (-want +got):\n%s", diff)
			}
			got, err = s.RunAt(tt.run.DAGID, tt.run.LogicalDate.In(time.UTC))
			if err != nil {
				t.Fatalf("RunAt: %v", err)
			}
			if diff := cmp.Diff(tt.run, got); diff != "" {
				t.Errorf("RunAt (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRunUniqueness(t *testing.T) {
	s := openTest(t)
	r := newRun("etl", day(1), RunQueued)
	commit(t, s, func(b *Batch) { b.PutRun(r) })

	otherID := *r
	otherID.RunID = "manual__x"
	otherDate := *r
	otherDate.LogicalDate = day(2)
	update := *r
	update.State = RunRunning
	update.QueuedAt = day(5)

	tests := []struct {
		name    string
		run     *Run
		wantErr error
	}{
		{"second run at the same logical date", &otherID, ErrConflict},
		{"same run id at another logical date", &otherDate, ErrConflict},
		{"update of the same run", &update, nil},
		{"same bytes again", &update, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			b.PutRun(tt.run)
			if err := s.Commit(context.Background(), &b); !errors.Is(err, tt.wantErr) {
				t.Fatalf("Commit: got %v, want %v", err, tt.wantErr)
			}
		})
	}

	got, err := s.RunAt("etl", day(1))
	if err != nil || got.RunID != r.RunID || got.State != RunRunning {
		t.Errorf("RunAt = %+v, %v; want %s running", got, err, r.RunID)
	}
	if _, err := s.RunAt("etl", day(2)); !errors.Is(err, ErrNotFound) {
		t.Errorf("RunAt(day 2): got %v, want ErrNotFound", err)
	}
	if _, err := s.GetRun("etl", "manual__x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun(manual__x): got %v, want ErrNotFound", err)
	}
	all, total, err := s.ListRuns(RunQuery{})
	if err != nil || len(all) != 1 || total != 1 {
		t.Errorf("ListRuns = %d runs, total %d, %v; want 1 (the queued_at index must not keep the old entry)", len(all), total, err)
	}
	if n, _ := s.CountRuns("etl"); n != 1 {
		t.Errorf("CountRuns = %d, want 1", n)
	}
}

func TestBadIDs(t *testing.T) {
	s := openTest(t)
	tests := []struct {
		name string
		fill func(b *Batch)
	}{
		{"empty DAG id", func(b *Batch) { b.PutRun(&Run{RunID: "r"}) }},
		{"NUL in run id", func(b *Batch) { b.PutRun(&Run{DAGID: "d", RunID: "r\x00"}) }},
		{"empty task id", func(b *Batch) { b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "d", RunID: "r"}) }},
		{"try number 0", func(b *Batch) { b.PutTry(&Try{MapIndex: NoMapIndex, DAGID: "d", RunID: "r", TaskID: "t"}) }},
		{"negative pool", func(b *Batch) { b.PutPool(Pool{Name: "p", Slots: -1}) }},
		{"value that does not encode", func(b *Batch) {
			b.PutRun(&Run{DAGID: "d", RunID: "r", Params: map[string]any{"f": func() {}}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Batch
			b.PutPool(Pool{Name: "before", Slots: 1})
			tt.fill(&b)
			if b.Err() == nil {
				t.Fatal("Err() = nil")
			}
			if err := s.Commit(context.Background(), &b); err == nil {
				t.Fatal("Commit succeeded")
			}
			if _, err := s.GetPool("before"); !errors.Is(err, ErrNotFound) {
				t.Errorf("the batch was partly written: GetPool = %v", err)
			}
		})
	}
}

func TestPreviousRun(t *testing.T) {
	s := openTest(t)
	commit(t, s, func(b *Batch) {
		for _, n := range []int{1, 3, 5} {
			b.PutRun(newRun("a", day(n), RunSuccess))
		}
		// Neighbours in key order, which must never be mistaken for "a".
		b.PutRun(newRun("a.b", day(2), RunSuccess))
		b.PutRun(newRun("Z", day(-10), RunSuccess))
		b.PutRun(newRun("a-", day(0), RunSuccess))
	})
	tests := []struct {
		dag  string
		at   time.Time
		want int // day of the previous run; -1 for none
	}{
		{"a", day(0), -1},
		{"a", day(1), -1},
		{"a", day(1).Add(time.Nanosecond), 1},
		{"a", day(2), 1},
		{"a", day(3), 1},
		{"a", day(4), 3},
		{"a", day(100), 5},
		{"a.b", day(2), -1},
		{"a.b", day(3), 2},
		{"nope", day(3), -1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.dag, tt.at.Format(time.RFC3339Nano)), func(t *testing.T) {
			got, err := s.PreviousRun(tt.dag, tt.at)
			if tt.want < 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("got %v, %v; want ErrNotFound", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.DAGID != tt.dag || !got.LogicalDate.Equal(day(tt.want)) {
				t.Errorf("got %s %s, want %s %s", got.DAGID, got.LogicalDate, tt.dag, day(tt.want))
			}
		})
	}
}

func TestActiveRunsFollowState(t *testing.T) {
	s := openTest(t)
	commit(t, s, func(b *Batch) {
		b.PutRun(newRun("other", day(1), RunRunning))
		for n := range 20 {
			b.PutRun(newRun("history", day(n), RunSuccess))
		}
	})
	r := newRun("etl", day(1), RunQueued)
	steps := []struct {
		state RunState
		want  []string // DAG ids of the active runs
	}{
		{RunQueued, []string{"etl", "other"}},
		{RunRunning, []string{"etl", "other"}},
		{RunSuccess, []string{"other"}},
		{RunQueued, []string{"etl", "other"}}, // cleared and run again
		{RunFailed, []string{"other"}},
	}
	for i, st := range steps {
		r.State = st.state
		now := day(1).Add(time.Duration(i) * time.Hour)
		r.StartDate = &now
		commit(t, s, func(b *Batch) { b.PutRun(r) })
		runs, err := s.ActiveRuns()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range runs {
			got = append(got, r.DAGID)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("step %d (%s): active runs (-want +got):\n%s", i, st.state, diff)
		}
	}
}

func TestDeleteRun(t *testing.T) {
	s := openTest(t)
	gone := newRun("etl", day(1), RunRunning)
	gone.RunID = "r"
	kept := newRun("etl", day(2), RunRunning)
	kept.RunID = "r2" // "r" is a prefix of it: its children must survive
	commit(t, s, func(b *Batch) {
		for _, r := range []*Run{gone, kept} {
			b.PutRun(r)
			for _, task := range []string{"extract", "load"} {
				b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: r.RunID, TaskID: task, State: TaskRunning, TryNumber: 2})
				for n := 1; n <= 2; n++ {
					b.PutTry(&Try{MapIndex: NoMapIndex, DAGID: "etl", RunID: r.RunID, TaskID: task, Number: n, State: TaskRunning})
				}
			}
		}
	})
	commit(t, s, func(b *Batch) {
		b.DeleteRun("etl", "r")
		b.DeleteRun("etl", "never-was")
	})

	if _, err := s.GetRun("etl", "r"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun: got %v, want ErrNotFound", err)
	}
	if _, err := s.RunAt("etl", day(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("RunAt: got %v, want ErrNotFound", err)
	}
	if tis, err := s.TaskInstances("etl", "r"); err != nil || len(tis) != 0 {
		t.Errorf("TaskInstances = %d, %v; want none", len(tis), err)
	}
	if tries, err := s.Tries("etl", "r", "extract"); err != nil || len(tries) != 0 {
		t.Errorf("Tries = %d, %v; want none", len(tries), err)
	}
	if tis, _ := s.TaskInstances("etl", "r2"); len(tis) != 2 {
		t.Errorf("the other run has %d task instances, want 2", len(tis))
	}
	if tries, _ := s.Tries("etl", "r2", "load"); len(tries) != 2 {
		t.Errorf("the other run has %d tries of load, want 2", len(tries))
	}
	active, _ := s.ActiveRuns()
	if len(active) != 1 || active[0].RunID != "r2" {
		t.Errorf("ActiveRuns = %v, want only r2", active)
	}
	for _, dag := range []string{"etl", ""} {
		runs, total, err := s.ListRuns(RunQuery{DAGID: dag})
		if err != nil || total != 1 || len(runs) != 1 || runs[0].RunID != "r2" {
			t.Errorf("ListRuns(%q) = %v, %d, %v; want only r2", dag, runs, total, err)
		}
	}

	// A late event for the deleted run must not bring anything back.
	var b Batch
	b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "etl", RunID: "r", TaskID: "extract", State: TaskSuccess})
	if err := s.Commit(context.Background(), &b); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutTaskInstance on a deleted run: got %v, want ErrNotFound", err)
	}

	// The logical date is free again.
	commit(t, s, func(b *Batch) { b.PutRun(newRun("etl", day(1), RunQueued)) })
}

// listRunsFixture is two DAGs whose QueuedAt interleave, with every state,
// run type and two backfills.
func listRunsFixture(t *testing.T, s *Store) []*Run {
	var all []*Run
	states := []RunState{RunSuccess, RunFailed, RunRunning, RunQueued, RunSuccess}
	for i := range 40 {
		r := newRun("etl", day(i), states[i%len(states)])
		r.QueuedAt = day0.Add(time.Duration(2*i) * time.Minute)
		switch {
		case i%7 == 0:
			r.RunType, r.RunID = RunTypeManual, "manual__"+r.LogicalDate.Format(time.RFC3339)
		case i >= 10 && i < 20:
			r.RunType, r.RunID, r.BackfillID = RunTypeBackfill, "backfill__"+r.LogicalDate.Format(time.RFC3339), "bf-1"
		}
		all = append(all, r)
	}
	for i := range 15 {
		r := newRun("etl.b", day(i), states[(i+1)%len(states)])
		r.QueuedAt = day0.Add(time.Duration(2*i+1) * time.Minute)
		if i%2 == 0 {
			r.RunType, r.RunID, r.BackfillID = RunTypeBackfill, "backfill__"+r.LogicalDate.Format(time.RFC3339), "bf-2"
		}
		all = append(all, r)
	}
	commit(t, s, func(b *Batch) {
		for _, r := range all {
			b.PutRun(r)
		}
	})
	return all
}

// wantRuns is ListRuns done the slow way.
func wantRuns(all []*Run, q RunQuery) (ids []string, total int) {
	var sel []*Run
	for _, r := range all {
		if (q.DAGID == "" || r.DAGID == q.DAGID) && (q.State == "" || r.State == q.State) &&
			(q.RunType == "" || r.RunType == q.RunType) && (q.BackfillID == "" || r.BackfillID == q.BackfillID) {
			sel = append(sel, r)
		}
	}
	slices.SortFunc(sel, func(a, b *Run) int {
		if q.DAGID != "" {
			return b.LogicalDate.Compare(a.LogicalDate)
		}
		return b.QueuedAt.Compare(a.QueuedAt)
	})
	total = len(sel)
	sel = sel[min(max(q.Offset, 0), len(sel)):]
	if q.Limit > 0 {
		sel = sel[:min(q.Limit, len(sel))]
	}
	for _, r := range sel {
		ids = append(ids, r.DAGID+"/"+r.RunID)
	}
	return ids, total
}

func TestListRuns(t *testing.T) {
	s := openTest(t)
	all := listRunsFixture(t, s)
	queries := []RunQuery{
		{DAGID: "etl"},
		{DAGID: "etl", Limit: 10},
		{DAGID: "etl", Limit: 10, Offset: 35},
		{DAGID: "etl", Offset: 100},
		{DAGID: "etl", State: RunFailed},
		{DAGID: "etl", State: RunSuccess, Limit: 3, Offset: 2},
		{DAGID: "etl", RunType: RunTypeManual},
		{DAGID: "etl", BackfillID: "bf-1", State: RunQueued},
		{DAGID: "etl", BackfillID: "bf-2"},
		{DAGID: "etl.b"},
		{DAGID: "et"},
		{},
		{Limit: 7},
		{Limit: 7, Offset: 50},
		{State: RunRunning},
		{RunType: RunTypeBackfill, Limit: 5, Offset: 5},
		{BackfillID: "bf-2"},
		{State: "nonsense"},
		{Limit: -1, Offset: -3},
	}
	for _, q := range queries {
		t.Run(fmt.Sprintf("%+v", q), func(t *testing.T) {
			runs, total, err := s.ListRuns(q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range runs {
				got = append(got, r.DAGID+"/"+r.RunID)
			}
			want, wantTotal := wantRuns(all, q)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("runs (-want +got):\n%s", diff)
			}
			if total != wantTotal {
				t.Errorf("total = %d, want %d", total, wantTotal)
			}
		})
	}
}

func TestRunsWithID(t *testing.T) {
	s := openTest(t)
	all := listRunsFixture(t, s)
	ids := func(runs []*Run) []string {
		var out []string
		for _, r := range runs {
			out = append(out, r.DAGID+"/"+r.RunID)
		}
		return out
	}
	for _, tt := range []struct {
		runID string
		want  []string
	}{
		{all[1].RunID, []string{"etl/" + all[1].RunID, "etl.b/" + all[1].RunID}}, // both DAGs have it
		{all[30].RunID, []string{"etl/" + all[30].RunID}},
		{"manual__1999-01-01T00:00:00Z", nil},
		{"", nil},
	} {
		got, err := s.RunsWithID(tt.runID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tt.want, ids(got)); diff != "" {
			t.Errorf("RunsWithID(%q) (-want +got):\n%s", tt.runID, diff)
		}
	}
}

func TestBackfillCounts(t *testing.T) {
	bf := &Backfill{Dates: []BackfillDate{
		{Action: DateSkip},
		{Action: DateNew},
		{Action: DateNew, Started: true, State: RunQueued},
		{Action: DateRerun, Started: true, State: RunRunning},
		{Action: DateNew, Started: true, State: RunSuccess},
		{Action: DateNew, Started: true, State: RunFailed},
	}}
	want := BackfillCounts{Total: 6, Skipped: 1, Pending: 1, Queued: 1, Running: 1, Success: 1, Failed: 1}
	if got := bf.Counts(); got != want {
		t.Errorf("Counts() = %+v, want %+v", got, want)
	}
}
