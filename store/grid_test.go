package store

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestTaskDigestReader: a digest read from what the store writes is what
// encoding/json decodes from it, whatever else the task instance holds;
// broken input is an error.
func TestTaskDigestReader(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	end := start.Add(90 * time.Second)
	tis := []*TaskInstance{
		{DAGID: "d", MapIndex: NoMapIndex, RunID: "r", TaskID: "t", State: TaskNone},
		{DAGID: "d", MapIndex: NoMapIndex, RunID: "manual__2026-01-01T00:00:00Z", TaskID: "extract", State: TaskSuccess, TryNumber: 3, MaxTries: 4,
			QueuedAt: &start, StartDate: &start, EndDate: &end, Worker: "w\"1", Error: "boom\n{}[]\\",
			Outputs:   map[string]any{"a": []any{1.0, "}", map[string]any{"b": nil}}, "c": true},
			NotBefore: end, Pokes: 2, FirstPoke: &start},
		{DAGID: "d", MapIndex: NoMapIndex, RunID: "r", TaskID: "x", State: TaskRunning, TryNumber: 1, StartDate: &start},
		{DAGID: "d", MapIndex: NoMapIndex, RunID: "r", TaskID: "train", State: TaskSuccess, TryNumber: 1, EndDate: &end,
			CachedFrom: &TryRef{DAGID: "d", RunID: "r0", TaskID: "train", Try: 2}, Artifacts: []Artifact{{Name: "model", SHA256: "ab"}}},
	}
	var r taskDigestReader
	for _, ti := range tis {
		v, err := json.Marshal(ti)
		if err != nil {
			t.Fatal(err)
		}
		var want TaskDigest
		if err := json.Unmarshal(v, &want); err != nil {
			t.Fatal(err)
		}
		got, err := r.read(v)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v, %v\nwant %+v", v, got, err, want)
		}
	}
	for _, in := range []string{`{"task_id":"a"`, `{"try_number":"x"}`, `[]`, `{"start_date":"yesterday"}`, `{"cached_from":[]}`, ``} {
		if got, err := r.read([]byte(in)); err == nil {
			t.Errorf("%s: got %+v, want an error", in, got)
		}
	}
}

func TestRecentRunsAndRunTasks(t *testing.T) {
	s := openTest(t)
	var b Batch
	for day := 1; day <= 4; day++ {
		date := time.Date(2026, 1, day, 0, 0, 0, 0, time.UTC)
		r := &Run{DAGID: "a", RunID: "scheduled__" + date.Format(time.RFC3339), RunType: RunTypeScheduled, State: RunSuccess,
			LogicalDate: date, QueuedAt: date.Add(time.Hour)}
		b.PutRun(r)
		b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "a", RunID: r.RunID, TaskID: "t2", State: TaskFailed, TryNumber: 2})
		b.PutTaskInstance(&TaskInstance{MapIndex: NoMapIndex, DAGID: "a", RunID: r.RunID, TaskID: "t1", State: TaskSuccess, TryNumber: 1})
	}
	// "a.b" shares a prefix with "a" but is another DAG.
	b.PutRun(&Run{DAGID: "a.b", RunID: "manual__x", RunType: RunTypeManual, State: RunQueued, LogicalDate: time.Unix(0, 0)})
	if err := s.Commit(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	recent, err := s.RecentRuns([]string{"a", "a.b", "none"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 3 || len(recent[0]) != 3 || len(recent[1]) != 1 || len(recent[2]) != 0 {
		t.Fatalf("recent = %+v", recent)
	}
	if got := recent[0][0]; got.RunID != "scheduled__2026-01-04T00:00:00Z" || got.State != RunSuccess || got.RunType != RunTypeScheduled ||
		!got.LogicalDate.Equal(time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC)) || !got.QueuedAt.Equal(time.Date(2026, 1, 4, 1, 0, 0, 0, time.UTC)) {
		t.Errorf("newest run of a = %+v", got)
	}
	if recent[1][0].RunID != "manual__x" {
		t.Errorf("a.b's run = %+v", recent[1][0])
	}
	since, err := s.RunsSince("a", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if len(since) != 3 || since[0].RunID != "scheduled__2026-01-02T00:00:00Z" || since[2].RunID != "scheduled__2026-01-04T00:00:00Z" {
		t.Errorf("RunsSince(a, 01-02) = %+v", since)
	}
	if since, _ := s.RunsSince("a", time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)); len(since) != 0 {
		t.Errorf("RunsSince(a, 02-01) = %+v, want none", since)
	}

	tasks, err := s.RunTasks("a", []string{"scheduled__2026-01-02T00:00:00Z", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]TaskDigest{{{TaskID: "t1", State: TaskSuccess, TryNumber: 1}, {TaskID: "t2", State: TaskFailed, TryNumber: 2}}, nil}
	if !reflect.DeepEqual(tasks, want) {
		t.Errorf("RunTasks = %+v, want %+v", tasks, want)
	}
}
