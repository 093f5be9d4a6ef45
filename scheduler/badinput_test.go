package scheduler_test

import (
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// TestPanickingPluginFailsOnlyItsTry: a plugin that panics fails the try it
// was running, with the crash in that try's log; the next task is served by
// a relaunched plugin process.
func TestPanickingPluginFailsOnlyItsTry(t *testing.T) {
	e := start(t, map[string]string{"crash": `
tasks:
  - {id: boom, plugin: crashy, with: {panic: true}}
  - {id: after, plugin: crashy, with: {echo: still here}, depends_on: [boom], trigger_rule: all_done}
  - {id: shell, plugin: shell, with: {command: 'echo unaffected'}}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("crash", nil), 30*time.Second)
	got := e.taskStates(r)
	if got["boom"] != store.TaskFailed || got["after"] != store.TaskSuccess || got["shell"] != store.TaskSuccess {
		t.Fatalf("states = %v, want boom failed, after and shell success", got)
	}
	if log := e.log(r, "boom", 1); !strings.Contains(log, "boom: the crash plugin was asked to panic") {
		t.Errorf("boom's log = %q, want the panic", log)
	}
	if log := e.log(r, "after", 1); !strings.Contains(log, "still here") {
		t.Errorf("after's log = %q", log)
	}
	tr, _ := e.st.GetTry("crash", r.RunID, "boom", 1)
	if !strings.Contains(tr.Error, "crashed") {
		t.Errorf("boom's try error = %q, want a crash", tr.Error)
	}
}

// TestHugeLogIsCappedAndMemoryStaysFlat: a task printing 200 MB leaves a
// log capped at the limit with a note, and the scheduler's heap does not
// grow with the output.
func TestHugeLogIsCappedAndMemoryStaysFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("prints 200 MB")
	}
	e := start(t, map[string]string{"loud": `
tasks:
  - {id: flood, plugin: shell, with: {command: 'head -c 200000000 /dev/zero | tr "\\0" "x"; echo; echo finished'}}
`}, options{workers: 1, logLimit: 4 << 20})
	before := heapInUse()
	r := e.trigger("loud", nil)
	var peak uint64
	e.waitFor("the flood to end", 2*time.Minute, func() bool {
		peak = max(peak, heapInUse())
		got, err := e.st.GetRun(r.DAGID, r.RunID)
		return err == nil && got.State.Finished()
	})
	r = e.waitRun(r, time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run = %s", r.State)
	}
	log := e.log(r, "flood", 1)
	if n := len(log); n < 4<<20 || n > 4<<20+4096 {
		t.Errorf("stored log is %d bytes, want the 4 MiB limit plus a note", n)
	}
	if !strings.Contains(log[len(log)-300:], "truncated") {
		t.Errorf("log ends with %q, want a truncation note", log[len(log)-200:])
	}
	// The worker and the scheduler share this process: 200 MB went
	// through it, but the heap must not have grown anywhere near that.
	if grew := int64(peak) - int64(before); grew > 64<<20 {
		t.Errorf("heap grew by %d MiB while 200 MB of log went through", grew>>20)
	}
	t.Logf("heap before %d MiB, peak %d MiB", before>>20, peak>>20)
}

// TestBrokenDAGKeepsLastGoodVersion: breaking a DAG file while the
// scheduler runs leaves the last good version running and reports the
// error as an import error with its position.
func TestBrokenDAGKeepsLastGoodVersion(t *testing.T) {
	e := start(t, map[string]string{"evolving": `
tasks: [{id: a, plugin: shell, with: {command: 'echo version one'}}]
`}, options{workers: 1})
	e.writeDAG("evolving", "tasks: [{id: a, plugin: shell, with: {command: 'echo broken'}, retries: many}]\n")
	e.waitFor("the import error", 10*time.Second, func() bool { return len(e.s.ImportErrors()) == 1 })
	ie := e.s.ImportErrors()[0]
	if !ie.Stale || len(ie.Errors) != 1 || ie.Errors[0].Line != 1 || !strings.Contains(ie.Errors[0].Msg, "retries must be an integer") {
		t.Fatalf("import error = %+v, want a stale one at line 1 about retries", ie)
	}
	if info, ok := e.s.DAG("evolving"); !ok || !info.Stale {
		t.Fatalf("DAG = %+v, %v; want the last good version, marked stale", info, ok)
	}
	r := e.waitRun(e.trigger("evolving", nil), 20*time.Second)
	if log := e.log(r, "a", 1); r.State != store.RunSuccess || !strings.Contains(log, "version one") {
		t.Errorf("run %s log %q, want the last good version to run", r.State, log)
	}
	e.writeDAG("evolving", "tasks: [{id: a, plugin: shell, with: {command: 'echo version two'}}]\n")
	e.waitFor("the fix to load", 10*time.Second, func() bool { return len(e.s.ImportErrors()) == 0 })
	r = e.waitRun(e.trigger("evolving", nil), 20*time.Second)
	if log := e.log(r, "a", 1); !strings.Contains(log, "version two") {
		t.Errorf("after the fix: log %q", log)
	}
}
