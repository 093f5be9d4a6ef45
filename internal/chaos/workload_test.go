package chaos

import (
	"testing"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/plugins"
)

// TestWorkloadLoads keeps the chaos suite's DAG loading as the servers in
// the containers load it, without Docker: a DAG format change that breaks
// it shows in `go test ./...`, not only in make chaos.
func TestWorkloadLoads(t *testing.T) {
	g, err := dag.LoadFile("testdata/dags/chaos_dag.yaml", dag.Options{Plugins: plugins.Builtin()})
	if err != nil {
		t.Fatal(err)
	}
	if g.ID != workloadDAG || len(g.Tasks) != 10 {
		t.Errorf("DAG %q with %d tasks, want %q with 10", g.ID, len(g.Tasks), workloadDAG)
	}
	for _, task := range g.Tasks {
		if task.Retries != workloadRetries {
			t.Errorf("task %s has %d retries, want %d: CheckTries bounds the tries by them", task.ID, task.Retries, workloadRetries)
		}
	}
}
