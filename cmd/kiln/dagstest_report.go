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

// testRunJSON is what `kiln dags test --json` prints: the run as the API
// shows one, each task with its outputs and tries, each try with its log
// (docs/cli.md#kiln-dags-test).
type testRunJSON struct {
	DAGID             string         `json:"dag_id"`
	RunID             string         `json:"run_id"`
	State             store.RunState `json:"state"`
	RunType           string         `json:"run_type"`
	LogicalDate       time.Time      `json:"logical_date"`
	DataIntervalStart time.Time      `json:"data_interval_start"`
	DataIntervalEnd   time.Time      `json:"data_interval_end"`
	StartDate         *time.Time     `json:"start_date"`
	EndDate           *time.Time     `json:"end_date"`
	Params            map[string]any `json:"params"`
	DAGVersion        string         `json:"dag_version"`
	// ElapsedS is the command's own wall time, from start to report.
	ElapsedS  float64        `json:"elapsed_s"`
	Tasks     []testTaskJSON `json:"tasks"`
	Callbacks []testTryJSON  `json:"callbacks"`
}

type testTaskJSON struct {
	TaskID    string          `json:"task_id"`
	State     store.TaskState `json:"state"`
	TryNumber int             `json:"try_number"`
	StartDate *time.Time      `json:"start_date"`
	EndDate   *time.Time      `json:"end_date"`
	DurationS *float64        `json:"duration_s"`
	Outputs   map[string]any  `json:"outputs"`
	Error     string          `json:"error"`
	ui.CacheResult
	Artifacts []ui.Artifact `json:"artifacts,omitempty"`
	Tries     []testTryJSON `json:"tries"`
}

type testTryJSON struct {
	TaskID    string          `json:"task_id,omitempty"` // callbacks only
	TryNumber int             `json:"try_number"`
	State     store.TaskState `json:"state"`
	StartDate *time.Time      `json:"start_date"`
	EndDate   *time.Time      `json:"end_date"`
	DurationS *float64        `json:"duration_s"`
	ExitCode  *int            `json:"exit_code"`
	Error     string          `json:"error"`
	ui.CacheResult
	Artifacts []ui.Artifact `json:"artifacts,omitempty"`
	Log       string        `json:"log"`
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
	out := &testRunJSON{
		DAGID: run.DAGID, RunID: run.RunID, State: run.State, RunType: run.RunType,
		LogicalDate: run.LogicalDate, DataIntervalStart: run.DataIntervalStart, DataIntervalEnd: run.DataIntervalEnd,
		StartDate: run.StartDate, EndDate: run.EndDate, Params: run.Params, DAGVersion: run.DAGHash,
		Tasks: []testTaskJSON{}, Callbacks: []testTryJSON{},
	}
	tis, err := st.TaskInstances(run.DAGID, run.RunID)
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
		tj := testTaskJSON{
			TaskID: ti.TaskID, State: ti.State, TryNumber: ti.TryNumber, StartDate: ti.StartDate, EndDate: ti.EndDate,
			DurationS: durationS(ti.StartDate, ti.EndDate), Outputs: ti.Outputs, Error: ti.Error, Tries: []testTryJSON{},
			CacheResult: ui.NewCacheResult(ti.CachedFrom), Artifacts: ui.ArtifactViews(ti.Artifacts),
		}
		tries, err := st.Tries(ti.DAGID, ti.RunID, ti.TaskID)
		if err != nil {
			return nil, err
		}
		for _, tr := range tries {
			tj.Tries = append(tj.Tries, tryJSON(tr, logs))
		}
		out.Tasks = append(out.Tasks, tj)
	}
	for _, id := range callbacks {
		tries, err := st.Tries(run.DAGID, run.RunID, id)
		if err != nil {
			return nil, err
		}
		for _, tr := range tries {
			cj := tryJSON(tr, logs)
			cj.TaskID = id
			out.Callbacks = append(out.Callbacks, cj)
		}
	}
	return out, nil
}

func tryJSON(tr *store.Try, logs logPaths) testTryJSON {
	log, _ := os.ReadFile(logs.LogPath(wire.TryKey{DAGID: tr.DAGID, RunID: tr.RunID, TaskID: tr.TaskID, Try: tr.Number}))
	return testTryJSON{
		TryNumber: tr.Number, State: tr.State, StartDate: tr.StartDate, EndDate: tr.EndDate,
		DurationS: durationS(tr.StartDate, tr.EndDate), ExitCode: tr.ExitCode, Error: tr.Error, Log: string(log),
		CacheResult: ui.NewCacheResult(tr.CachedFrom), Artifacts: ui.ArtifactViews(tr.Artifacts),
	}
}
