package kilntest_test

import (
	"testing"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

func TestMain(m *testing.M) { kilntest.Main(m, nil) }

const gated = `
id: gated
tasks:
  - id: hold
    plugin: shell
    with: {command: "echo waiting; read gate < gates/hold; echo through"}
  - id: fail
    plugin: shell
    depends_on: [hold]
    with: {command: "echo no; exit 3"}
`

// TestGate checks the fixture itself: a task held at a gate runs until the
// test opens it, then the run goes on and ends as its tasks say.
func TestGate(t *testing.T) {
	k := kilntest.New(t, gated)
	g := k.Gate("hold")
	r, err := k.Trigger(t.Context(), "gated", scheduler.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	k.WaitTask("gated", r.RunID, "hold", store.TaskRunning)
	key := wire.TryKey{DAGID: "gated", RunID: r.RunID, TaskID: "hold", Try: 1}
	k.WaitLog(key, "waiting\n")
	if got := k.WaitTask("gated", r.RunID, "fail", store.TaskNone).State; got != store.TaskNone {
		t.Fatalf("fail = %s before the gate opened", got)
	}
	g.Open()
	if got := k.WaitRun("gated", r.RunID).State; got != store.RunFailed {
		t.Errorf("run = %s, want failed", got)
	}
	if log := k.WaitLog(key, "through"); log != "kiln: running: echo waiting; read gate < gates/hold; echo through\nwaiting\nthrough\n" {
		t.Errorf("log = %q", log)
	}
}

// TestHeldAtTheEnd checks that a task still held at a gate when the test
// ends does not hold the installation's stop up.
func TestHeldAtTheEnd(t *testing.T) {
	k := kilntest.New(t, gated)
	k.Gate("hold")
	r, err := k.Trigger(t.Context(), "gated", scheduler.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	k.WaitTask("gated", r.RunID, "hold", store.TaskRunning)
}

// TestSeedAndReload checks a seeded history, DAG files written while the
// scheduler runs, and an installation without a worker.
func TestSeedAndReload(t *testing.T) {
	k := kilntest.Start(t, kilntest.Options{NoWorker: true, DAGs: []string{gated}, Seed: func(st *store.Store) error {
		var b store.Batch
		b.PutRun(&store.Run{DAGID: "gone", RunID: "manual__old", RunType: store.RunTypeManual, State: store.RunSuccess})
		return st.Commit(t.Context(), &b)
	}})
	if _, err := k.Store().GetRun("gone", "manual__old"); err != nil {
		t.Errorf("the seeded run: %v", err)
	}
	k.WriteDAG("more/other.yaml", "id: other\ntasks: [{id: a, plugin: shell, with: {command: \"true\"}}]\n")
	if _, ok := k.DAG("other"); !ok {
		t.Error("other is not loaded")
	}
	k.WriteDAG("gated.yaml", "id: gated\ntaks: []\n")
	if info, _ := k.DAG("gated"); !info.Stale || len(k.ImportErrors()) != 1 {
		t.Errorf("gated broken: stale %v, import errors %v", info.Stale, k.ImportErrors())
	}
}
