package scheduler_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/dockerimage"
	"github.com/kilnhq/kiln/internal/dockertest"
	"github.com/kilnhq/kiln/internal/rundiff"
	"github.com/kilnhq/kiln/plugins/docker"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// dockerDAG names a DAG of a docker test: the Engine is shared with every
// other test on the machine, and the DAG's label tells its containers
// apart.
func dockerDAG() string { return "docker_" + strings.ToLower(rand.Text()[:10]) }

// removeContainers removes the DAG's containers when the test ends,
// whatever it did. Called after start, it runs before the harness stops
// its worker, which would otherwise wait for the try of a container left
// running (a test that failed half-way).
func removeContainers(t *testing.T, eng *docker.Engine, id string) {
	dockertest.RemoveContainers(t, eng, docker.LabelDAG, id)
}

// markedImage builds a busybox image tagged tag with /etc/marker holding
// marker, removed when the test ends, and returns its ID.
func markedImage(t *testing.T, eng *docker.Engine, tag, marker string) string {
	t.Helper()
	return dockertest.Image(t, eng, tag, map[string]dockerimage.File{"etc/marker": {Data: []byte(marker + "\n")}})
}

// tries returns a task instance's tries.
func (e *env) tries(r *store.Run, task string) []*store.Try {
	e.t.Helper()
	tries, err := e.st.Tries(r.DAGID, r.RunID, task)
	if err != nil {
		e.t.Fatal(err)
	}
	return tries
}

// TestE2EDockerTask runs a task in a container through a real `kiln
// plugin docker` process: its log arrives while it runs, its exit code and
// outputs are recorded, the image's digest is in the manifest, and `kiln
// runs diff` shows the digest change when the tag moves.
func TestE2EDockerTask(t *testing.T) {
	eng := dockertest.Engine(t)
	tag := "kiln-test/moving:" + strings.ToLower(rand.Text()[:8])
	first := markedImage(t, eng, tag, "one")
	gates := t.TempDir()
	id := dockerDAG()
	e := start(t, map[string]string{id: fmt.Sprintf(`
params:
  code: {type: integer, default: 0}
tasks:
  - id: step
    plugin: docker
    with:
      image: %s
      mounts: ["%s:/gates"]
      command: 'echo first; while [ ! -e "/gates/$KILN_RUN_ID" ]; do sleep 0.05; done; cat /etc/marker; echo rows=7 >> "$KILN_OUTPUT"; exit {{ .params.code }}'
`, tag, gates)}, options{workers: 1})
	removeContainers(t, eng, id)
	open := func(r *store.Run) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(gates, r.RunID), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The container waits for its gate, which opens only once its first
	// line is in the scheduler's log of the try: the log streams.
	r := e.trigger(id, map[string]any{"code": 3})
	e.waitFor("the first line in the log while the container runs", time.Minute, func() bool {
		return strings.Contains(e.log(r, "step", 1), "first\n")
	})
	if ti, err := e.st.GetTaskInstance(id, r.RunID, "step"); err != nil || ti.State != store.TaskRunning {
		t.Fatalf("while its log streams the task is %v (%v), want running", ti.State, err)
	}
	open(r)
	if r = e.waitRun(r, time.Minute); r.State != store.RunFailed {
		t.Fatalf("run %s, want failed", r.State)
	}
	tr := e.tries(r, "step")[0]
	if tr.ExitCode == nil || *tr.ExitCode != 3 || !strings.Contains(tr.Error, "container exited with status 3") {
		t.Errorf("try: exit code %v, error %q; want 3", tr.ExitCode, tr.Error)
	}
	facts := tr.Manifest.Plugin.Facts
	if facts["image_digest"] != first || facts["image_id"] != first || facts["pull"] != "missing" || facts["image"] != tag {
		t.Errorf("manifest facts %v, want image %s resolved to %s", facts, tag, first)
	}
	if log := e.log(r, "step", 1); !strings.Contains(log, "one\n") {
		t.Errorf("log:\n%s", log)
	}

	// The same run again succeeds, with its outputs; then the tag moves.
	a := e.trigger(id, nil)
	open(a)
	if a = e.waitRun(a, time.Minute); a.State != store.RunSuccess {
		t.Fatalf("run %s: %s", a.State, e.log(a, "step", 1))
	}
	if got := e.tries(a, "step")[0].Outputs["rows"]; got != "7" {
		t.Errorf("outputs rows = %v, want 7", got)
	}
	second := markedImage(t, eng, tag, "two")
	b := e.trigger(id, nil)
	open(b)
	if b = e.waitRun(b, time.Minute); b.State != store.RunSuccess || !strings.Contains(e.log(b, "step", 1), "two\n") {
		t.Fatalf("run %s on the moved tag:\n%s", b.State, e.log(b, "step", 1))
	}
	d, err := rundiff.Compute(e.st, id, a.RunID, id, b.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Same || len(d.Tasks) != 1 || d.Tasks[0].ImageDigest == nil || d.Tasks[0].ImageDigest.A != first || d.Tasks[0].ImageDigest.B != second {
		t.Fatalf("diff of the runs before and after the tag moved:\n%s", d.Text())
	}
	if !strings.Contains(d.Text(), "image digest: "+first+" → "+second) {
		t.Errorf("the diff's text does not show the digest's change:\n%s", d.Text())
	}
}

// TestE2EDockerTimeoutAndClear stops and removes a container within 2 s
// of its try's deadline (6 s: on a loaded Engine, creating and starting a
// container alone has taken over 3), and within 2 s of a clear of its running task;
// and a container over its memory limit fails its try as out of memory.
func TestE2EDockerTimeoutAndClear(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.Busybox(t, eng)
	id := dockerDAG()
	e := start(t, map[string]string{id: fmt.Sprintf(`
defaults: {plugin: docker}
tasks:
  - id: timed
    timeout: 6s
    with: {image: %[1]s, command: "echo started; sleep 600"}
  - id: cleared
    with: {image: %[1]s, command: 'echo started; if [ "$KILN_TRY_NUMBER" = 1 ]; then sleep 600; fi'}
  - id: greedy
    with: {image: %[1]s, memory: 8m, command: "dd if=/dev/zero of=/dev/null bs=64M count=1"}
`, dockertest.BusyboxTag)}, options{workers: 1})
	removeContainers(t, eng, id)
	r := e.trigger(id, nil)
	defer func() {
		if t.Failed() { // what the run's tasks had come to, for a failure that says only "timed out"
			t.Logf("tasks: %v; logs of timed: %q, of cleared: %q; containers: %d", e.taskStates(r),
				e.log(r, "timed", 1), e.log(r, "cleared", 1), len(dockertest.Containers(t, eng, docker.LabelDAG, id)))
		}
	}()
	gone := func(task string) time.Time {
		t.Helper()
		e.waitFor(task+"'s first container to be removed", time.Minute, func() bool {
			for _, c := range dockertest.Containers(t, eng, docker.LabelDAG, id) {
				if c.Labels[docker.LabelTask] == task && c.Labels[docker.LabelTry] == "1" {
					return false
				}
			}
			return true
		})
		return time.Now()
	}
	e.waitFor("both containers to run", time.Minute, func() bool {
		return strings.Contains(e.log(r, "timed", 1), "started\n") && strings.Contains(e.log(r, "cleared", 1), "started\n")
	})

	removed := gone("timed")
	tr := e.tries(r, "timed")[0]
	deadline := tr.StartDate.Add(6 * time.Second)
	late := removed.Sub(deadline)
	if late > 2*time.Second {
		t.Errorf("the timed-out container was removed %s after the try's deadline, want at most 2s", late)
	}
	t.Logf("the timed-out container was removed %s after the deadline", late.Round(time.Millisecond))

	cleared := time.Now()
	if _, err := e.s.Clear(context.Background(), id, r.RunID, scheduler.ClearRequest{Tasks: []string{"cleared"}}); err != nil {
		t.Fatal(err)
	}
	took := gone("cleared").Sub(cleared)
	if took > 2*time.Second {
		t.Errorf("the cleared task's container was removed %s after the clear, want at most 2s", took)
	}
	t.Logf("the cleared task's container was removed %s after the clear", took.Round(time.Millisecond))
	if r = e.waitRun(r, time.Minute); r.State != store.RunFailed {
		t.Fatalf("run %s, want failed (timed out)", r.State)
	}
	if tr := e.tries(r, "timed")[0]; !strings.Contains(tr.Error, "timed out") {
		t.Errorf("timed's try ended with %q", tr.Error)
	}
	if tries := e.tries(r, "cleared"); len(tries) != 2 || tries[1].State != store.TaskSuccess {
		t.Errorf("cleared's tries: %+v", tries)
	}
	if tr := e.tries(r, "greedy")[0]; tr.State != store.TaskFailed || tr.ExitCode == nil || *tr.ExitCode != 137 ||
		!strings.Contains(tr.Error, "container ran out of memory: OOM-killed at its limit of 8MiB") {
		t.Errorf("greedy's try: %s, exit code %v, error %q; want failed as out of memory", tr.State, tr.ExitCode, tr.Error)
	}
}

// TestE2EDockerWorkerKilled kills a `kiln worker` process with SIGKILL
// while its task's container runs. Killed alone, its plugin process
// notices and removes the container; killed with its plugin process, the
// container is left until the worker starts again, and removed then.
// Either way the try is retried and the run succeeds.
func TestE2EDockerWorkerKilled(t *testing.T) {
	eng := dockertest.Engine(t)
	dockertest.Busybox(t, eng)
	for _, c := range []struct {
		name  string
		group bool // kill the worker's whole process group
	}{{"worker alone", false}, {"worker and plugin", true}} {
		t.Run(c.name, func(t *testing.T) {
			id := dockerDAG()
			e := start(t, map[string]string{id: fmt.Sprintf(`
tasks:
  - id: long
    plugin: docker
    retries: 1
    retry_delay: 100ms
    with:
      image: %s
      command: 'if [ "$KILN_TRY_NUMBER" = 1 ]; then echo started; sleep 600; fi'
`, dockertest.BusyboxTag)}, options{heartbeatTimeout: 2 * time.Second})
			removeContainers(t, eng, id)
			w := startWorkerProcess(t, e.ns.ClientURL(), "dw", e.dir)
			r := e.trigger(id, nil)
			e.waitFor("try 1's container to run", time.Minute, func() bool {
				return strings.Contains(e.log(r, "long", 1), "started\n")
			})
			pid := w.Process.Pid
			if c.group {
				pid = -pid
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			firstTry := func() bool {
				for _, ct := range dockertest.Containers(t, eng, docker.LabelDAG, id) {
					if ct.Labels[docker.LabelTry] == "1" {
						return false
					}
				}
				return true
			}
			if c.group {
				// Nobody is left to remove it: it runs on.
				if firstTry() {
					t.Fatal("try 1's container went away with the worker's process group")
				}
				startWorkerProcess(t, e.ns.ClientURL(), "dw", e.dir)
			}
			e.waitFor("try 1's container to be removed", 30*time.Second, firstTry)
			if !c.group {
				startWorkerProcess(t, e.ns.ClientURL(), "dw", e.dir)
			}
			if r = e.waitRun(r, time.Minute); r.State != store.RunSuccess {
				t.Fatalf("run %s", r.State)
			}
			tries := e.tries(r, "long")
			if len(tries) != 2 || tries[0].State != store.TaskFailed || !strings.Contains(tries[0].Error, "heartbeat") || tries[1].State != store.TaskSuccess {
				t.Errorf("tries: %+v", tries)
			}
			if left := dockertest.Containers(t, eng, docker.LabelDAG, id); len(left) != 0 {
				t.Errorf("containers left: %+v", left)
			}
		})
	}
}
