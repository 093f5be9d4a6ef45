package store

import (
	"slices"
	"testing"
)

// TestOpenCallbacks: a callback's try is listed until it finishes; a task's
// try never is.
func TestOpenCallbacks(t *testing.T) {
	s := openTest(t)
	r := newRun("d", day(1), RunSuccess)
	cb := &Try{MapIndex: NoMapIndex, DAGID: "d", RunID: r.RunID, TaskID: "load.on_failure.1", Number: 1, State: TaskQueued, Callback: true}
	other := &Try{MapIndex: NoMapIndex, DAGID: "d", RunID: r.RunID, TaskID: "@run.on_success.1", Number: 1, State: TaskSuccess, Callback: true}
	task := &Try{MapIndex: NoMapIndex, DAGID: "d", RunID: r.RunID, TaskID: "load", Number: 1, State: TaskRunning}
	commit(t, s, func(b *Batch) {
		b.PutRun(r)
		b.PutTry(cb)
		b.PutTry(other)
		b.PutTry(task)
	})
	ids := func() []string {
		t.Helper()
		open, err := s.OpenCallbacks()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tr := range open {
			out = append(out, tr.TaskID+":"+string(tr.State))
		}
		return out
	}
	if got, want := ids(), []string{"load.on_failure.1:queued"}; !slices.Equal(got, want) {
		t.Fatalf("open callbacks = %v, want %v", got, want)
	}
	cb.State = TaskRunning
	commit(t, s, func(b *Batch) { b.PutTry(cb) })
	if got, want := ids(), []string{"load.on_failure.1:running"}; !slices.Equal(got, want) {
		t.Fatalf("open callbacks = %v, want %v", got, want)
	}
	cb.State = TaskFailed
	commit(t, s, func(b *Batch) { b.PutTry(cb) })
	if got := ids(); len(got) != 0 {
		t.Fatalf("open callbacks after it failed = %v, want none", got)
	}
}
