package scheduler_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// cacheDAG has a task that is never cached and reads a file from disk
// (src), two cached tasks that each read one param, a cached task that
// reads src's content as an input artifact, and a cached task with a
// ttl. Each task appends a line to RAN/<task> when it runs.
const cacheDAG = `
params:
  p: {type: string, default: one}
  q: {type: string, default: one}
defaults: {plugin: shell}
tasks:
  - id: produce
    with: {command: 'cat SRC > data.txt; echo x >> RAN/produce'}
    artifacts: {data: data.txt}
  - id: uses_p
    cache: true
    with: {command: 'echo "p={{ .params.p }}" >> $KILN_OUTPUT; test -z "$KILN_PARAM_Q"; echo x >> RAN/uses_p'}
  - id: uses_q
    cache: true
    with: {command: 'echo "q={{ .params.q }}" >> $KILN_OUTPUT; echo x >> RAN/uses_q'}
  - id: reads_data
    depends_on: [produce]
    inputs: {data: produce.data}
    cache: true
    with: {command: '{ cat {{ .inputs.data }}; echo copied; } > copy.txt; echo "size=$(wc -c < $KILN_INPUT_DATA)" >> $KILN_OUTPUT; echo x >> RAN/reads_data'}
    artifacts: {copy: copy.txt}
  - id: short_lived
    cache: {ttl: 3s}
    with: {command: 'echo x >> RAN/short_lived'}
`

// TestE2ETaskCache runs the DAG again and again, each time after one
// change, and checks which tasks ran: a process that runs appends to its
// task's file, so a task taken from the cache is seen not to have run.
func TestE2ETaskCache(t *testing.T) {
	dir := t.TempDir()
	ran, src := filepath.Join(dir, "ran"), filepath.Join(dir, "src.txt")
	if err := os.Mkdir(ran, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(content string) {
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("first")
	e := start(t, map[string]string{"cached": strings.NewReplacer("SRC", src, "RAN", ran).Replace(cacheDAG)}, options{workers: 1})
	counts := func() map[string]int {
		out := map[string]int{}
		for _, task := range []string{"produce", "uses_p", "uses_q", "reads_data", "short_lived"} {
			b, _ := os.ReadFile(filepath.Join(ran, task))
			out[task] = bytes.Count(b, []byte("\n"))
		}
		return out
	}
	run := func(req scheduler.TriggerRequest) *store.Run {
		t.Helper()
		// Each run gets its own logical date, which no template reads.
		ld := time.Now().UTC().Truncate(time.Microsecond)
		req.LogicalDate = &ld
		r, err := e.s.Trigger(context.Background(), "cached", req)
		if err != nil {
			t.Fatal(err)
		}
		r = e.waitRun(r, 60*time.Second)
		if r.State != store.RunSuccess {
			t.Fatalf("run %s: %v\nreads_data: %s", r.State, e.taskStates(r), e.log(r, "reads_data", 1))
		}
		return r
	}
	ranNow := func(before map[string]int) []string {
		var out []string
		for task, n := range counts() {
			if n != before[task] {
				out = append(out, task)
			}
		}
		slices.Sort(out)
		return out
	}

	// A worker writes its plugin builds once the scheduler made the
	// workers bucket; until the scheduler has read them, nothing is cached.
	e.waitFor("the worker's plugin builds", 10*time.Second, func() bool { return e.s.PluginBuildKnown("default", "shell") })
	first := run(scheduler.TriggerRequest{})
	if got := counts(); !maps.Equal(got, map[string]int{"produce": 1, "uses_p": 1, "uses_q": 1, "reads_data": 1, "short_lived": 1}) {
		t.Fatalf("first run: %v, want every task once", got)
	}

	// The same again: only the task that is not cached runs, and the
	// cached ones have the first run's outputs and artifacts.
	before := counts()
	again := run(scheduler.TriggerRequest{})
	if got := ranNow(before); !slices.Equal(got, []string{"produce"}) {
		t.Errorf("second run ran %v, want produce only", got)
	}
	for _, task := range []string{"uses_p", "uses_q", "reads_data", "short_lived"} {
		a, _ := e.st.GetTaskInstance("cached", first.RunID, task)
		b, _ := e.st.GetTaskInstance("cached", again.RunID, task)
		if b.CachedFrom == nil || b.CachedFrom.RunID != first.RunID || b.CachedFrom.Try != 1 {
			t.Errorf("%s: cached_from %+v, want the first run's try 1", task, b.CachedFrom)
		}
		if !maps.Equal(a.Outputs, b.Outputs) || len(a.Artifacts) != len(b.Artifacts) {
			t.Errorf("%s: outputs %v artifacts %v, want the first run's %v %v", task, b.Outputs, b.Artifacts, a.Outputs, a.Artifacts)
		}
		tr, _ := e.st.GetTry("cached", again.RunID, task, 1)
		if tr.Manifest == nil || tr.Manifest.Cache == nil || tr.Manifest.Cache.Result != "hit" {
			t.Errorf("%s: try manifest cache %+v, want a hit", task, tr.Manifest)
		}
		// The note is written once the turn is committed, off the loop.
		e.waitFor(task+"'s log to say where its result came from", 10*time.Second, func() bool {
			return strings.Contains(e.log(again, task, 1), "kiln: cached: the result of cached/"+first.RunID+"/"+task+"#1")
		})
	}

	for _, c := range []struct {
		name   string
		change func()
		req    scheduler.TriggerRequest
		want   []string
	}{
		{"param p changed", nil, scheduler.TriggerRequest{Params: map[string]any{"p": "two"}}, []string{"produce", "uses_p"}},
		{"upstream artifact changed", func() { write("second") }, scheduler.TriggerRequest{}, []string{"produce", "reads_data"}},
		{"same content as a run before", func() { write("first") }, scheduler.TriggerRequest{}, []string{"produce"}},
		{"no cache", nil, scheduler.TriggerRequest{NoCache: true}, []string{"produce", "reads_data", "short_lived", "uses_p", "uses_q"}},
	} {
		if c.change != nil {
			c.change()
		}
		before := counts()
		run(c.req)
		if got := ranNow(before); !slices.Equal(got, c.want) {
			t.Errorf("%s: ran %v, want %v", c.name, got, c.want)
		}
	}

	// The ttl passes: short_lived runs again, the others do not.
	time.Sleep(3 * time.Second)
	before = counts()
	run(scheduler.TriggerRequest{})
	if got := ranNow(before); !slices.Equal(got, []string{"produce", "short_lived"}) {
		t.Errorf("after the ttl: ran %v, want produce and short_lived", got)
	}

	// The artifact of reads_data's cached result is removed from the
	// store: the next run runs it rather than hand on what is gone.
	last, _ := e.st.GetTaskInstance("cached", again.RunID, "reads_data")
	gone := last.Artifacts[0]
	nc, err := nats.Connect(e.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	obs, err := js.ObjectStore(context.Background(), wire.ArtifactsBucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := obs.Delete(context.Background(), gone.SHA256); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the scheduler to see the artifact gone", 10*time.Second, func() bool { return !e.s.ArtifactStored(gone.SHA256, gone.Size) })
	before = counts()
	r := run(scheduler.TriggerRequest{})
	if got := ranNow(before); !slices.Equal(got, []string{"produce", "reads_data"}) {
		t.Errorf("after the artifact was removed: ran %v, want produce and reads_data", got)
	}
	tr, _ := e.st.GetTry("cached", r.RunID, "reads_data", 1)
	if res := tr.Manifest.Cache.Result; !strings.Contains(res, "artifact copy of the result of") || !strings.Contains(res, "no longer stored") {
		t.Errorf("cache result %q, want it to name the artifact no longer stored", res)
	}
}
