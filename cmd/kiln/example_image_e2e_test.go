package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/examples/image/tools"
	"github.com/kilnhq/kiln/internal/dockertest"
	"github.com/kilnhq/kiln/plugins/docker"
)

// TestExampleImageRunsTheContainerReport builds the example image as
// `make example-image` does, then runs the example DAG that uses it,
// container_report, with `kiln dags test`: its report task runs the
// image's awk script in a container, on the orders extract wrote, and
// publish reads the summary back. It needs a Docker Engine (skipped
// without one, unless KILN_REQUIRE_DOCKER=1).
func TestExampleImageRunsTheContainerReport(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.RemoveContainers(t, eng, docker.LabelDAG, "container_report")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	id, err := tools.Build(ctx, eng.Client())
	if err != nil {
		t.Fatal(err)
	}

	tmp, env := ownTmp(t)
	stdout, stderr, code := runKilnEnv(t, "", env, "", "dags", "test", "container_report", "--dags", "../../examples/dags", "--json")
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	out := decodeTestRun(t, stdout)
	var states []string
	for _, task := range out.Tasks {
		states = append(states, task.TaskID+"="+task.State)
	}
	if got := strings.Join(states, " "); out.State != "success" || got != "extract=success report=success publish=success" {
		t.Fatalf("run %s, tasks %s\n%s", out.State, got, stdout)
	}
	report, publish := out.Tasks[1], out.Tasks[2]
	if rows := report.Outputs["rows"]; rows != "200" {
		t.Errorf("report's output rows = %v, want 200 (the orders extract wrote)", rows)
	}
	if log := report.Tries[0].Log; !strings.Contains(log, "kiln: image: "+tools.Tag+" ("+id+")") {
		t.Errorf("report's log does not show it ran in the image just built, %s:\n%s", id, log)
	}
	if len(report.Artifacts) != 1 || report.Artifacts[0].Name != "summary" || report.Artifacts[0].Size == 0 {
		t.Errorf("report's artifacts %+v, want summary stored", report.Artifacts)
	}
	// The summary the container wrote reached publish, a shell task on
	// the worker, with the figures of the 200 orders.
	for _, want := range []string{"200 orders for ", "region,orders,revenue,avg_order", "apac,67,15911.69,237.49", "all,200,50799.00,254.00"} {
		if !strings.Contains(publish.Tries[0].Log, want) {
			t.Errorf("publish's log lacks %q:\n%s", want, publish.Tries[0].Log)
		}
	}
	if left := dockertest.Containers(t, eng, docker.LabelDAG, "container_report"); len(left) > 0 {
		t.Errorf("%d container(s) of container_report left after the run: %v", len(left), left[0].Names)
	}
	assertEmpty(t, tmp)
}
