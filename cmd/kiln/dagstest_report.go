package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// testRunJSON is what `kiln dags test --json` prints
// (docs/cli.md#kiln-dags-test): the run as the API shows one, each task
// as the API shows a task instance, and each try with its log. The views
// are the API's own, so that the two cannot drift apart.
type testRunJSON struct {
	ui.Run // its tasks are those below
	// ElapsedS is the command's own wall time, from start to report.
	ElapsedS  float64            `json:"elapsed_s"`
	Tasks     []testTaskJSON     `json:"tasks"`
	Callbacks []testCallbackJSON `json:"callbacks"`
}

type testTaskJSON struct {
	ui.TaskInstance               // its tries are those below
	Tries           []testTryJSON `json:"tries"`
}

type testTryJSON struct {
	ui.Try
	Log string `json:"log"`
}

// testCallbackJSON is a try of a callback stage, such as
// train.on_failure.1.
type testCallbackJSON struct {
	TaskID string `json:"task_id"`
	testTryJSON
}

// logPaths finds a try's log (*scheduler.Scheduler).
type logPaths interface {
	LogPath(wire.TryKey) string
}

// reportTestRun ends `kiln dags test`: the JSON, or a summary line; exit
// 1 naming the tasks that did not succeed when the run failed.
func reportTestRun(w io.Writer, st *store.Store, logs logPaths, g *dag.DAG, run *store.Run, callbacks []string, asJSON bool, elapsed time.Duration) error {
	out, err := testRunResult(st, logs, g, run, callbacks)
	if err != nil {
		return &exitError{code: 1, msg: err.Error()}
	}
	out.ElapsedS = elapsed.Seconds()
	var bad, ran []string
	for _, t := range out.Tasks {
		switch t.State {
		case store.TaskFailed, store.TaskUpstreamFailed:
			bad = append(bad, fmt.Sprintf("%s (%s)", t.TaskID, t.State))
		case store.TaskSuccess:
			ran = append(ran, t.TaskID)
		}
	}
	if asJSON {
		if err := printJSONValue(w, out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(w, "\nrun %s of DAG %s: %s in %s (%d task(s) succeeded, %d skipped, %d failed)\n",
			run.RunID, run.DAGID, run.State, elapsed.Round(time.Millisecond), len(ran), len(out.Tasks)-len(ran)-len(bad), len(bad))
	}
	if run.State == store.RunSuccess {
		return nil
	}
	return &exitError{code: 1, msg: fmt.Sprintf("run %s of DAG %s failed: %s", run.RunID, run.DAGID, strings.Join(bad, ", "))}
}

// testRunResult reads the run's outcome from the store; callbacks are the
// ids of the callback stages that ran (their tries' task ids).
func testRunResult(st *store.Store, logs logPaths, g *dag.DAG, run *store.Run, callbacks []string) (*testRunJSON, error) {
	out := &testRunJSON{Run: ui.NewRun(run, nil), Tasks: []testTaskJSON{}, Callbacks: []testCallbackJSON{}}
	// A mapped task is reported as a whole (docs/cli.md#mapped-tasks).
	tis, err := st.TaskInstancesPerTask(run.DAGID, run.RunID)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.TaskInstance, len(tis))
	for _, ti := range tis {
		byID[ti.TaskID] = ti
	}
	for _, t := range g.Tasks {
		ti := byID[t.ID]
		if ti == nil {
			continue
		}
		tries, err := st.Tries(ti.DAGID, ti.RunID, ti.TaskID)
		if err != nil {
			return nil, err
		}
		tj := testTaskJSON{TaskInstance: ui.NewTaskInstance(ti, tries), Tries: make([]testTryJSON, len(tries))}
		for i, tr := range tries {
			tj.Tries[i] = tryJSON(tr, logs)
		}
		out.Tasks = append(out.Tasks, tj)
	}
	for _, id := range callbacks {
		tries, err := st.Tries(run.DAGID, run.RunID, id)
		if err != nil {
			return nil, err
		}
		for _, tr := range tries {
			out.Callbacks = append(out.Callbacks, testCallbackJSON{TaskID: id, testTryJSON: tryJSON(tr, logs)})
		}
	}
	return out, nil
}

func tryJSON(tr *store.Try, logs logPaths) testTryJSON {
	log, _ := os.ReadFile(logs.LogPath(wire.TryKey{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.TaskID, Try: tr.Number}))
	return testTryJSON{Try: ui.NewTry(tr), Log: string(log)}
}
