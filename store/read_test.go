package store

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTaskInstancesAndTries(t *testing.T) {
	s := openTest(t)
	run := newRun("etl", day(1), RunRunning)
	start, end := day(2), day(2).Add(time.Minute)
	exit := 3
	tis := []*TaskInstance{
		{DAGID: "etl", RunID: run.RunID, MapIndex: NoMapIndex, TaskID: "train", State: TaskUpForRetry, TryNumber: 1, MaxTries: 3,
			Queue: "gpu", Pool: "gpu", PoolSlots: 2, Priority: 10, NotBefore: end.Add(time.Minute),
			QueuedAt: &start, StartDate: &start, EndDate: &end, Worker: "w1", Error: "exit status 3"},
		{DAGID: "etl", RunID: run.RunID, MapIndex: NoMapIndex, TaskID: "extract", State: TaskSuccess, TryNumber: 1, MaxTries: 1,
			Queue: "default", Pool: DefaultPool, PoolSlots: 1, Priority: 1,
			Outputs: map[string]any{"rows": "42"}},
		{DAGID: "etl", RunID: run.RunID, MapIndex: NoMapIndex, TaskID: "report", State: TaskNone},
	}
	var tries []*Try
	for n := 1; n <= 12; n++ { // past 9: numeric, not lexical, order
		tries = append(tries, &Try{MapIndex: NoMapIndex, DAGID: "etl", RunID: run.RunID, TaskID: "train", Number: n,
			State: TaskFailed, Worker: "w1", QueuedAt: start, StartDate: &start, EndDate: &end, ExitCode: &exit,
			Error: "boom", Outputs: map[string]any{"n": float64(n)}})
	}
	commit(t, s, func(b *Batch) {
		b.PutRun(run)
		for _, ti := range tis {
			b.PutTaskInstance(ti)
		}
		for i := len(tries) - 1; i >= 0; i-- {
			b.PutTry(tries[i])
		}
	})

	gotTIs, err := s.TaskInstances("etl", run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	wantTIs := []*TaskInstance{tis[1], tis[2], tis[0]} // by task id
	if diff := cmp.Diff(wantTIs, gotTIs); diff != "" {
		t.Errorf("TaskInstances (-want +got):\n%s", diff)
	}
	for _, ti := range tis {
		got, err := s.GetTaskInstance("etl", run.RunID, ti.TaskID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(ti, got); diff != "" {
			t.Errorf("GetTaskInstance(%s) (-want +got):\n%s", ti.TaskID, diff)
		}
	}
	gotTries, err := s.Tries("etl", run.RunID, "train")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tries, gotTries); diff != "" {
		t.Errorf("Tries (-want +got):\n%s", diff)
	}
	got, err := s.GetTry("etl", run.RunID, "train", 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tries[9], got); diff != "" {
		t.Errorf("GetTry (-want +got):\n%s", diff)
	}

	notFound := []struct {
		name string
		err  error
	}{
		{"task instance", func() error { _, err := s.GetTaskInstance("etl", run.RunID, "nope"); return err }()},
		{"task instance of another run", func() error { _, err := s.GetTaskInstance("etl", "x", "train"); return err }()},
		{"try 13", func() error { _, err := s.GetTry("etl", run.RunID, "train", 13); return err }()},
		{"try 0", func() error { _, err := s.GetTry("etl", run.RunID, "train", 0); return err }()},
		{"run", func() error { _, err := s.GetRun("etl", "x"); return err }()},
		{"DAG state", func() error { _, err := s.GetDAGState("etl"); return err }()},
		{"pool", func() error { _, err := s.GetPool("gpu"); return err }()},
	}
	for _, tt := range notFound {
		if !errors.Is(tt.err, ErrNotFound) {
			t.Errorf("%s: got %v, want ErrNotFound", tt.name, tt.err)
		}
	}
}

func TestDAGStates(t *testing.T) {
	s := openTest(t)
	states := map[string]*DAGState{
		"etl":        {DAGID: "etl", Paused: true, Seen: true},
		"ml.churn-2": {DAGID: "ml.churn-2", LastScheduled: day(3), Seen: true},
	}
	commit(t, s, func(b *Batch) {
		for _, st := range states {
			b.PutDAGState(st)
		}
	})
	got, err := s.DAGStates()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(states, got); diff != "" {
		t.Errorf("DAGStates (-want +got):\n%s", diff)
	}
	one, err := s.GetDAGState("ml.churn-2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(states["ml.churn-2"], one); diff != "" {
		t.Errorf("GetDAGState (-want +got):\n%s", diff)
	}
}

func TestPools(t *testing.T) {
	s := openTest(t)
	def := Pool{Name: DefaultPool, Slots: DefaultPoolSlots}
	steps := []struct {
		name string
		fill func(b *Batch)
		want []Pool
	}{
		{"fresh store", func(*Batch) {}, []Pool{def}},
		{"add pools", func(b *Batch) {
			b.PutPool(Pool{Name: "gpu", Slots: 2})
			b.PutPool(Pool{Name: "a_pool", Slots: 0})
		}, []Pool{{"a_pool", 0}, def, {"gpu", 2}}},
		{"resize default_pool", func(b *Batch) { b.PutPool(Pool{Name: DefaultPool, Slots: 8}) },
			[]Pool{{"a_pool", 0}, {DefaultPool, 8}, {"gpu", 2}}},
		{"delete pools", func(b *Batch) {
			b.DeletePool(DefaultPool)
			b.DeletePool("gpu")
			b.DeletePool("never-was")
		}, []Pool{{"a_pool", 0}, def}},
	}
	for _, st := range steps {
		commit(t, s, st.fill)
		got, err := s.Pools()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.want, got); diff != "" {
			t.Errorf("%s: Pools (-want +got):\n%s", st.name, diff)
		}
		for _, p := range st.want {
			if got, err := s.GetPool(p.Name); err != nil || got != p {
				t.Errorf("%s: GetPool(%s) = %v, %v; want %v", st.name, p.Name, got, err, p)
			}
		}
	}
}
