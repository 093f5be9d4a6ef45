package scheduler_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/dockertest"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// BenchmarkDockerNoopTask times a run of one docker task that runs `true`,
// from the trigger's call until the store shows its success, with the
// plugin process warm. Where the docker CLI is installed, each iteration
// also times `docker run --rm IMAGE true`, side by side, as the baseline
// the issue names; the CLI is used for nothing else.
func BenchmarkDockerNoopTask(b *testing.B) {
	eng := dockertest.Engine(b)
	dockertest.Busybox(b, eng)
	src := fmt.Sprintf(`
tasks:
  - id: noop
    plugin: docker
    with: {image: %s, command: [true]}
`, dockertest.BusyboxTag)
	e := start(b, map[string]string{"docker_noop": src}, options{workers: 1})
	cli, _ := exec.LookPath("docker")
	day := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	trigger := func(i int) time.Duration {
		ld := day.Add(time.Duration(i) * time.Millisecond)
		begin := time.Now()
		r, err := e.s.Trigger(context.Background(), "docker_noop", scheduler.TriggerRequest{LogicalDate: &ld})
		if err != nil {
			b.Fatal(err)
		}
		r = e.waitRun(r, time.Minute)
		took := time.Since(begin)
		if r.State != store.RunSuccess {
			b.Fatalf("run %s: %s", r.State, e.log(r, "noop", 1))
		}
		return took
	}
	dockerRun := func() time.Duration {
		begin := time.Now()
		if out, err := exec.Command(cli, "run", "--rm", dockertest.BusyboxTag, "true").CombinedOutput(); err != nil {
			b.Fatalf("docker run: %v\n%s", err, out)
		}
		return time.Since(begin)
	}
	trigger(0) // warms the plugin process and the Engine's client
	var kiln, baseline time.Duration
	i := 1
	for b.Loop() {
		kiln += trigger(i)
		i++
		if cli != "" {
			baseline += dockerRun()
		}
	}
	b.ReportMetric(ms(kiln)/float64(b.N), "ms/kiln-task")
	if cli != "" {
		b.ReportMetric(ms(baseline)/float64(b.N), "ms/docker-run")
		b.ReportMetric(float64(kiln)/float64(baseline), "kiln/docker-run")
	}
}
