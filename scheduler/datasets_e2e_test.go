package scheduler_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// runsOf returns a DAG's runs, newest first.
func (e *env) runsOf(dagID string) []*store.Run {
	e.t.Helper()
	runs, _, err := e.st.ListRuns(store.RunQuery{DAGID: dagID})
	if err != nil {
		e.t.Fatal(err)
	}
	return runs
}

// emit posts an external dataset event.
func (e *env) emit(uri string, extra map[string]any) *store.DatasetEvent {
	e.t.Helper()
	ev, err := e.s.EmitDatasetEvent(context.Background(), scheduler.DatasetEventRequest{URI: uri, Extra: extra, By: "tester"})
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

const (
	datasetsProducer = `
tasks:
  - id: load
    plugin: shell
    outlets: [warehouse://sales/daily]
    with: {command: 'echo "rows=42" >> "$KILN_OUTPUT"'}
`
	datasetsConsumer = `
schedule: {datasets: [warehouse://sales/daily]}
tasks:
  - id: report
    plugin: shell
    with: {command: 'echo {{ json .triggering_events | shellquote }}'}
`
	datasetsBoth = `
schedule: {datasets: [warehouse://sales/daily, s3://lake/fx.csv]}
tasks:
  - id: join
    plugin: shell
    with: {command: 'echo {{ len .triggering_events }} events'}
`
	datasetsAny = `
schedule: {datasets: {any: [s3://lake/fx.csv, s3://lake/rates.csv]}}
tasks:
  - id: refresh
    plugin: shell
    with: {command: 'true'}
`
)

// TestE2EDatasets: a producer's success starts the DAG scheduled on its
// dataset within a second, with the event in .triggering_events; a DAG
// on two datasets waits for both, one on any of two starts on either; an
// external event counts as a task's would.
func TestE2EDatasets(t *testing.T) {
	e := start(t, map[string]string{
		"producer": datasetsProducer, "consumer": datasetsConsumer, "both": datasetsBoth, "anyof": datasetsAny,
	}, options{workers: 1})

	p := e.waitRun(e.trigger("producer", nil), 20*time.Second)
	if p.State != store.RunSuccess {
		t.Fatalf("producer run %s", p.State)
	}
	load, err := e.st.GetTaskInstance("producer", p.RunID, "load")
	if err != nil {
		t.Fatal(err)
	}
	var c *store.Run
	e.waitFor("the consumer's run", 5*time.Second, func() bool {
		runs := e.runsOf("consumer")
		if len(runs) > 0 {
			c = runs[0]
		}
		return c != nil
	})
	after := c.QueuedAt.Sub(*load.EndDate)
	if after > time.Second {
		t.Errorf("the consumer's run was queued %s after the producer's task ended, want within 1s", after)
	}
	t.Logf("the consumer's run was queued %s after the producer's task ended (the same commit)", after)
	if !strings.HasPrefix(c.RunID, "dataset__") || c.RunType != "dataset" || len(c.TriggeringEvents) != 1 {
		t.Fatalf("consumer run %s (%s) with events %+v", c.RunID, c.RunType, c.TriggeringEvents)
	}
	ev := c.TriggeringEvents[0]
	if ev.URI != "warehouse://sales/daily" || ev.SourceDAGID != "producer" || ev.SourceRunID != p.RunID || ev.SourceTaskID != "load" || ev.Extra["rows"] != "42" {
		t.Errorf("triggering event %+v", ev)
	}
	if c = e.waitRun(c, 20*time.Second); c.State != store.RunSuccess {
		t.Fatalf("consumer run %s", c.State)
	}
	if report, err := e.st.GetTaskInstance("consumer", c.RunID, "report"); err == nil {
		t.Logf("the consumer's task started %s after the producer's task ended", report.StartDate.Sub(*load.EndDate))
	}
	var seen []map[string]any
	lines := strings.Split(strings.TrimSpace(e.log(c, "report", 1)), "\n") // after the running: line
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &seen); err != nil || len(seen) != 1 ||
		seen[0]["uri"] != "warehouse://sales/daily" || seen[0]["source_task_id"] != "load" {
		t.Errorf(".triggering_events rendered as %q (%v)", e.log(c, "report", 1), err)
	}

	// "both" had the sales event too, and waits for fx.csv.
	e.sync()
	if runs := e.runsOf("both"); len(runs) != 0 {
		t.Fatalf("both started with one of its two datasets updated: %v", runs[0].RunID)
	}
	e.emit("s3://lake/fx.csv", map[string]any{"day": "2026-12-05"})
	var b *store.Run
	e.waitFor("both's run", 5*time.Second, func() bool {
		runs := e.runsOf("both")
		if len(runs) > 0 {
			b = runs[0]
		}
		return b != nil
	})
	if len(b.TriggeringEvents) != 2 || b.TriggeringEvents[0].URI != "warehouse://sales/daily" || b.TriggeringEvents[1].By != "tester" {
		t.Errorf("both's events: %+v", b.TriggeringEvents)
	}
	// anyof ran on the same fx.csv event.
	if runs := e.runsOf("anyof"); len(runs) != 1 || len(runs[0].TriggeringEvents) != 1 {
		t.Errorf("anyof's runs: %d", len(runs))
	}
	e.emit("s3://lake/rates.csv", nil)
	e.sync()
	if runs := e.runsOf("anyof"); len(runs) != 2 {
		t.Errorf("anyof's runs after rates.csv: %d, want 2", len(runs))
	}
	// A too large extra is refused, and harms nothing.
	if _, err := e.s.EmitDatasetEvent(context.Background(), scheduler.DatasetEventRequest{URI: "s3://lake/fx.csv", Extra: map[string]any{"x": strings.Repeat("a", 70<<10)}}); !errors.Is(err, scheduler.ErrInvalid) {
		t.Errorf("a 70 KiB extra: %v, want ErrInvalid", err)
	}
	// A manual run of a DAG on datasets has no latest interval to take.
	if _, err := e.s.Trigger(context.Background(), "consumer", scheduler.TriggerRequest{LatestInterval: true}); err == nil ||
		!strings.Contains(err.Error(), "has no cron schedule (it runs on datasets), so it has no latest interval") {
		t.Errorf("a latest interval of consumer: %v", err)
	}
}

// TestE2EDatasetsWhilePaused: a paused DAG gets no run from its datasets'
// events, keeps them, in the store too, and runs once on all of them when
// unpaused.
func TestE2EDatasetsWhilePaused(t *testing.T) {
	e := start(t, map[string]string{"consumer": datasetsConsumer}, options{workers: 1})
	if err := e.s.SetPaused(context.Background(), "consumer", true); err != nil {
		t.Fatal(err)
	}
	first := e.emit("warehouse://sales/daily", map[string]any{"n": 1})
	second := e.emit("warehouse://sales/daily", map[string]any{"n": 2})
	e.sync()
	if runs := e.runsOf("consumer"); len(runs) != 0 {
		t.Fatalf("a paused DAG got %d run(s)", len(runs))
	}
	if queues, err := e.st.DatasetQueues(); err != nil || len(queues["consumer"]["warehouse://sales/daily"]) != 2 {
		t.Fatalf("stored queues: %+v, %v", queues, err)
	}
	infos, err := e.s.Datasets(context.Background())
	if err != nil || len(infos) != 1 || len(infos[0].Consumers) != 1 || infos[0].Consumers[0].QueuedEvents != 2 || !infos[0].Consumers[0].Paused || infos[0].Events != 2 {
		t.Fatalf("datasets while paused: %+v, %v", infos, err)
	}
	if err := e.s.SetPaused(context.Background(), "consumer", false); err != nil {
		t.Fatal(err)
	}
	runs := e.runsOf("consumer")
	if len(runs) != 1 || len(runs[0].TriggeringEvents) != 2 || runs[0].TriggeringEvents[0].ID != first.ID || runs[0].TriggeringEvents[1].ID != second.ID {
		t.Fatalf("after unpausing: %d run(s), %+v", len(runs), runs)
	}
	if r := e.waitRun(runs[0], 20*time.Second); r.State != store.RunSuccess {
		t.Fatalf("run %s", r.State)
	}
	if infos, _ := e.s.Datasets(context.Background()); infos[0].Consumers[0].QueuedEvents != 0 {
		t.Errorf("events still queued after the run: %+v", infos[0].Consumers[0])
	}
}
