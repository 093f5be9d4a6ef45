package scheduler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
)

// dailyDAG is paused: only its backfills create runs.
const dailyDAG = `
id: daily
schedule: "@daily"
start_date: 2026-03-01
paused: true
tasks:
  - {id: a, plugin: shell, with: {command: "x"}}
  - {id: b, plugin: shell, with: {command: "x"}, depends_on: [a]}
`

func day(d int) time.Time { return time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC) }

func (h *harness) backfill(dagID string, req BackfillRequest) (*store.Backfill, []*wire.Assignment, error) {
	var bf *store.Backfill
	var err error
	as := h.call(func() { bf, err = h.s.Backfill(context.Background(), dagID, req) })
	return bf, as, err
}

// finishAll runs every assignment to its end, failing tasks of the listed
// logical dates, until nothing is left to run.
func (h *harness) finishAll(as []*wire.Assignment, failDates ...time.Time) {
	for len(as) > 0 {
		a := as[0]
		as = as[1:]
		ok := true
		for _, d := range failDates {
			if strings.Contains(a.RunID, d.Format(time.RFC3339)) {
				ok = false
			}
		}
		as = append(as, h.run(a, ok, nil)...)
	}
}

func dateStates(bf *store.Backfill) string {
	var out []string
	for _, d := range bf.Dates {
		s := d.LogicalDate.Format("01-02") + ":" + d.Action
		if d.State != "" {
			s += "/" + string(d.State)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestBackfillRunsEveryDateWithinItsLimit(t *testing.T) {
	h := newHarness(t, dailyDAG)
	h.inLoop(func() { h.s.dags["daily"].MaxActiveRuns = 16 })
	bf, as, err := h.backfill("daily", BackfillRequest{From: day(2), To: day(6), MaxActiveRuns: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(bf.Dates) != 5 || len(as) != 2 {
		t.Fatalf("%d dates, %d first assignments; want 5 dates and 2 runs started", len(bf.Dates), len(as))
	}
	h.finishAll(as, day(4))
	got := h.s.backfills["bf-1"]
	stored, err := h.s.cfg.Store.GetBackfill("bf-1")
	if got != nil || err != nil {
		t.Fatalf("backfill still active (%v) or not stored (%v)", got != nil, err)
	}
	if want := "03-02:new/success 03-03:new/success 03-04:new/failed 03-05:new/success 03-06:new/success"; dateStates(stored) != want {
		t.Errorf("dates = %s\nwant    %s", dateStates(stored), want)
	}
	if stored.State != store.BackfillFailed || stored.Counts().Failed != 1 || stored.Counts().Success != 4 {
		t.Errorf("state %s counts %+v", stored.State, stored.Counts())
	}
	runs, _, _ := h.s.cfg.Store.ListRuns(store.RunQuery{DAGID: "daily", BackfillID: "bf-1"})
	for _, r := range runs {
		if r.RunType != "backfill" || !strings.HasPrefix(r.RunID, "backfill__") {
			t.Errorf("run %s has type %s", r.RunID, r.RunType)
		}
	}
	if len(runs) != 5 {
		t.Errorf("%d runs carry the backfill id, want 5", len(runs))
	}

	// Re-running the same range: none creates nothing, failed re-runs
	// 03-04 only, completed re-runs all five.
	for _, tc := range []struct {
		mode, want string
		reruns     int
	}{
		{store.ReprocessNone, "03-02:skip 03-03:skip 03-04:skip 03-05:skip 03-06:skip", 0},
		{store.ReprocessFailed, "03-02:skip 03-03:skip 03-04:rerun 03-05:skip 03-06:skip", 1},
		{store.ReprocessCompleted, "03-02:rerun 03-03:rerun 03-04:rerun 03-05:rerun 03-06:rerun", 5},
	} {
		plan, _, err := h.backfill("daily", BackfillRequest{From: day(2), To: day(6), Reprocess: tc.mode, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if dateStates(plan) != tc.want {
			t.Errorf("%s plan = %s, want %s", tc.mode, dateStates(plan), tc.want)
		}
		bf, as, err := h.backfill("daily", BackfillRequest{From: day(2), To: day(6), Reprocess: tc.mode, MaxActiveRuns: 10})
		if err != nil {
			t.Fatal(err)
		}
		started := 0
		for _, d := range bf.Dates {
			if d.Started {
				started++
			}
		}
		if started != tc.reruns {
			t.Errorf("%s: %d runs started, want %d", tc.mode, started, tc.reruns)
		}
		if len(as) > backfillQueuedCap {
			t.Errorf("%s: %d backfill tasks queued at once, want at most %d", tc.mode, len(as), backfillQueuedCap)
		}
		h.finishAll(as)
		if bf, _ := h.s.cfg.Store.GetBackfill(bf.ID); bf.State != store.BackfillSuccess {
			t.Errorf("%s: backfill %s", tc.mode, bf.State)
		}
	}
	if _, total, _ := h.s.cfg.Store.ListRuns(store.RunQuery{DAGID: "daily"}); total != 5 {
		t.Errorf("%d runs in all, want 5: re-runs reuse each date's run", total)
	}
}

func TestBackfillReverseAndDependsOnPast(t *testing.T) {
	h := newHarness(t, dailyDAG, `
id: pastful
schedule: "@daily"
start_date: 2026-03-01
paused: true
tasks: [{id: a, plugin: shell, with: {command: "x"}, depends_on_past: true}]
`)
	bf, as, err := h.backfill("daily", BackfillRequest{From: day(2), To: day(4), Reverse: true, MaxActiveRuns: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || !strings.Contains(as[0].RunID, "2026-03-04") || bf.Dates[0].LogicalDate != day(4) {
		t.Fatalf("reverse: first run %v, want 03-04", as)
	}
	if _, _, err := h.backfill("pastful", BackfillRequest{From: day(2), To: day(4), Reverse: true}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "depends_on_past") {
		t.Errorf("reverse with depends_on_past: %v", err)
	}
	// Forward, the first run ignores depends_on_past although 03-01 never ran... and has no run.
	_, as, err = h.backfill("pastful", BackfillRequest{From: day(3), To: day(4), MaxActiveRuns: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || !strings.Contains(as[0].RunID, "2026-03-03") {
		t.Fatalf("assignments %v, want 03-03 only (03-04 waits for it)", as)
	}
}

func TestBackfillRefusals(t *testing.T) {
	h := newHarness(t, dailyDAG, "id: manual\ntasks: [{id: a, plugin: shell, with: {command: x}}]\n")
	tests := []struct {
		name string
		dag  string
		req  BackfillRequest
		want error
		msg  string
	}{
		{"future", "daily", BackfillRequest{From: day(8), To: day(11)}, ErrInvalid, "latest date that can be backfilled is 2026-03-09"},
		{"no schedule", "manual", BackfillRequest{From: day(2), To: day(3)}, ErrInvalid, "no schedule"},
		{"from after to", "daily", BackfillRequest{From: day(5), To: day(3)}, ErrInvalid, "after"},
		{"bad mode", "daily", BackfillRequest{From: day(2), To: day(3), Reprocess: "all"}, ErrInvalid, "reprocess"},
		{"before start", "daily", BackfillRequest{From: day(1).AddDate(0, -1, 0), To: day(1).AddDate(0, 0, -5)}, ErrInvalid, "no logical date"},
		{"unknown DAG", "nope", BackfillRequest{From: day(2), To: day(3)}, ErrNotFound, ""},
	}
	for _, tt := range tests {
		_, _, err := h.backfill(tt.dag, tt.req)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v, want %v containing %q", tt.name, err, tt.want, tt.msg)
		}
	}
	if _, _, err := h.backfill("daily", BackfillRequest{From: day(2), To: day(3)}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.backfill("daily", BackfillRequest{From: day(5), To: day(6)}); !errors.Is(err, ErrConflict) {
		t.Errorf("second active backfill: %v, want ErrConflict", err)
	}
}

func TestBackfillCancel(t *testing.T) {
	h := newHarness(t, dailyDAG)
	h.inLoop(func() { h.s.dags["daily"].MaxActiveRuns = 1 }) // the second run stays queued
	_, as, err := h.backfill("daily", BackfillRequest{From: day(2), To: day(6), MaxActiveRuns: 2})
	if err != nil || len(as) != 1 {
		t.Fatalf("%v, %v", as, err)
	}
	var bf *store.Backfill
	h.turn(func() {
		bf, err = h.s.cancelBackfill("bf-1", h.clock.Now())
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := "03-02:new/running 03-03:new/failed 03-04:new 03-05:new 03-06:new"; dateStates(bf) != want {
		t.Errorf("at cancel: %s\nwant %s", dateStates(bf), want)
	}
	h.finishAll(as)
	bf, _ = h.s.cfg.Store.GetBackfill("bf-1")
	if want := "03-02:new/success 03-03:new/failed 03-04:new 03-05:new 03-06:new"; dateStates(bf) != want || bf.State != store.BackfillCancelled {
		t.Errorf("after the running run ended: %s %s\nwant %s cancelled", dateStates(bf), bf.State, want)
	}
	if h.s.backfills["bf-1"] != nil {
		t.Error("the cancelled backfill is still followed after its last run ended")
	}
	if _, total, _ := h.s.cfg.Store.ListRuns(store.RunQuery{DAGID: "daily"}); total != 2 {
		t.Errorf("%d runs, want 2: no run is created after the cancel", total)
	}
}
