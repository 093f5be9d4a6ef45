package store

import (
	"encoding/json"
	"testing"
)

func TestInstanceKey(t *testing.T) {
	for _, tc := range []struct {
		id  string
		i   int
		key string
	}{
		{"square", NoMapIndex, "square"},
		{"square", 0, "square[0]"},
		{"pull.files", 1023, "pull.files[1023]"},
	} {
		if got := InstanceKey(tc.id, tc.i); got != tc.key {
			t.Errorf("InstanceKey(%q, %d) = %q, want %q", tc.id, tc.i, got, tc.key)
		}
		id, i, ok := SplitInstanceKey(tc.key)
		if !ok || id != tc.id || i != tc.i {
			t.Errorf("SplitInstanceKey(%q) = %q, %d, %v", tc.key, id, i, ok)
		}
	}
	for _, bad := range []string{"a[", "a[]", "a[x]", "a[-1]", "a[01]", "a[1]b"} {
		if _, _, ok := SplitInstanceKey(bad); ok {
			t.Errorf("SplitInstanceKey(%q) is ok", bad)
		}
	}
}

// A task instance or try stored before mapping has no map_index: it is
// unmapped, not instance 0.
func TestDecodeBeforeMapping(t *testing.T) {
	var ti TaskInstance
	if err := json.Unmarshal([]byte(`{"dag_id":"d","run_id":"r","task_id":"t","state":"success"}`), &ti); err != nil {
		t.Fatal(err)
	}
	var tr Try
	if err := json.Unmarshal([]byte(`{"dag_id":"d","run_id":"r","task_id":"t","try_number":1}`), &tr); err != nil {
		t.Fatal(err)
	}
	if ti.MapIndex != NoMapIndex || ti.Key() != "t" || tr.MapIndex != NoMapIndex || tr.Key() != "t" {
		t.Errorf("decoded map indexes %d, %d; keys %q, %q", ti.MapIndex, tr.MapIndex, ti.Key(), tr.Key())
	}
}

func TestMappedInstances(t *testing.T) {
	s := openTest(t)
	run := newRun("etl", day(1), RunRunning)
	commit(t, s, func(b *Batch) {
		b.PutRun(run)
		b.PutTaskInstance(&TaskInstance{DAGID: "etl", RunID: run.RunID, TaskID: "square", MapIndex: NoMapIndex, MapLength: 12, State: TaskRunning})
		for i := range 12 {
			b.PutTaskInstance(&TaskInstance{DAGID: "etl", RunID: run.RunID, TaskID: "square", MapIndex: i, State: TaskSuccess, TryNumber: 1})
			b.PutTry(&Try{DAGID: "etl", RunID: run.RunID, TaskID: "square", MapIndex: i, Number: 1, State: TaskSuccess})
		}
		b.PutTaskInstance(&TaskInstance{DAGID: "etl", RunID: run.RunID, TaskID: "sum", MapIndex: NoMapIndex, State: TaskNone})
	})
	tis, err := s.TaskInstances("etl", run.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tis) != 14 {
		t.Fatalf("%d task instances, want 14", len(tis))
	}
	ti, err := s.GetTaskInstance("etl", run.RunID, "square[7]")
	if err != nil || ti.TaskID != "square" || ti.MapIndex != 7 {
		t.Fatalf("square[7] = %+v, %v", ti, err)
	}
	tries, err := s.Tries("etl", run.RunID, "square[7]")
	if err != nil || len(tries) != 1 || tries[0].MapIndex != 7 {
		t.Fatalf("tries of square[7] = %+v, %v", tries, err)
	}
	if tries, err := s.Tries("etl", run.RunID, "square"); err != nil || len(tries) != 0 {
		t.Fatalf("the mapped task itself has tries %+v, %v", tries, err)
	}
	if own, err := s.TaskInstancesPerTask("etl", run.RunID); err != nil || len(own) != 2 || own[0].Key() != "square" || own[0].MapLength != 12 || own[1].Key() != "sum" {
		t.Errorf("TaskInstancesPerTask = %+v, %v; want square (12 instances) and sum", own, err)
	}
	digests, err := s.RunTasks("etl", []string{run.RunID})
	if err != nil {
		t.Fatal(err)
	}
	if got := digests[0]; len(got) != 2 || got[0].TaskID != "square" || got[0].MapLength != 12 || got[1].TaskID != "sum" {
		t.Errorf("RunTasks = %+v, want square (12 instances) and sum", got)
	}
}
