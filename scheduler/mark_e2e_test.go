package scheduler_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// Marking a run success while its task sleeps on a real worker ends the
// run at once and kills the task's processes.
func TestE2EMarkRunSuccessStopsTheTask(t *testing.T) {
	e := start(t, map[string]string{"marked": `
tasks:
  - {id: nap, plugin: shell, with: {command: 'sleep 31.0417 & sleep 31.0417'}}
  - {id: after, plugin: shell, with: {command: 'true'}, depends_on: [nap]}
`}, options{workers: 1})
	r := e.trigger("marked", nil)
	e.waitFor("nap to run", 10*time.Second, func() bool { return e.taskStates(r)["nap"] == store.TaskRunning })
	e.waitFor("the sleeps to start", 5*time.Second, func() bool { return pgrep("sleep 31.0417") != "" })

	changed, err := e.s.MarkRun(context.Background(), "marked", r.RunID, store.RunSuccess)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(changed, ","); got != "nap,after" {
		t.Errorf("changed = %s, want nap,after", got)
	}
	// MarkRun answers once the new states are committed.
	got, err := e.st.GetRun("marked", r.RunID)
	if err != nil || got.State != store.RunSuccess {
		t.Fatalf("run = %+v (%v), want success", got, err)
	}
	e.waitFor("the sleeps to be killed", 10*time.Second, func() bool { return pgrep("sleep 31.0417") == "" })
	// The worker's report of the stopped try changes nothing.
	time.Sleep(300 * time.Millisecond)
	if s := e.taskStates(r); s["nap"] != store.TaskSuccess || s["after"] != store.TaskSuccess {
		t.Errorf("states = %v, want both success", s)
	}
	if tr, err := e.st.GetTry("marked", r.RunID, "nap", 1); err != nil || tr.State != store.TaskSuccess {
		t.Errorf("try = %+v (%v), want success (marked)", tr, err)
	}
	if tr, err := e.st.GetTry("marked", r.RunID, "after", 1); err == nil {
		t.Errorf("after has try %+v, want none: it was marked, never run", tr)
	}
}
