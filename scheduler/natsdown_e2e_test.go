package scheduler_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// TestCommandsAnswerWithNATSDown: with 500 tries queued for workers that
// never come and the NATS server stopped, the scheduler still answers each
// command within 100 ms — a pause, a trigger, a clear and a mark, whose
// publications and cancels wait for NATS off the loop (outbox.go): the
// loop itself does no network I/O.
func TestCommandsAnswerWithNATSDown(t *testing.T) {
	e := start(t, map[string]string{"fan": fanDAG(500), "one": `
id: one
tasks: [{id: only, plugin: shell, with: {command: "true"}}]
`}, options{})
	if err := e.s.SetPool(context.Background(), store.DefaultPool, 1000); err != nil {
		t.Fatal(err)
	}
	r := e.trigger("fan", nil)
	e.waitFor("500 queued tries", 30*time.Second, func() bool {
		tis, err := e.st.TaskInstances("fan", r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		queued := 0
		for _, ti := range tis {
			if ti.State == store.TaskQueued {
				queued++
			}
		}
		return queued == 500
	})
	e.ns.Shutdown()

	ctx := context.Background()
	measure := func(what string, fn func() error) {
		t.Helper()
		begin := time.Now()
		err := fn()
		took := time.Since(begin)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if took > 100*time.Millisecond {
			t.Errorf("%s took %v with NATS down, want < 100ms", what, took)
		}
	}
	for i := range 5 {
		measure("pause", func() error { return e.s.SetPaused(ctx, "fan", i%2 == 0) })
		measure("trigger", func() error {
			_, err := e.s.Trigger(ctx, "one", scheduler.TriggerRequest{LogicalDate: new(time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC))})
			return err
		})
		task := fmt.Sprintf("t%04d", i)
		measure("clear", func() error {
			_, err := e.s.Clear(ctx, "fan", r.RunID, scheduler.ClearRequest{Tasks: []string{task}})
			return err
		})
		measure("mark", func() error {
			_, err := e.s.MarkTasks(ctx, "fan", r.RunID, []string{task}, store.TaskSuccess)
			return err
		})
	}
}
