package scheduler_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// buildDAG has a cached task of the built-in shell plugin (the kiln
// binary), which leaves a line in RAN when it runs, and one of the
// external crash plugin.
const buildDAG = `
tasks:
  - id: shell_task
    plugin: shell
    cache: true
    with: {command: 'echo x >> RAN'}
  - id: crash_task
    plugin: crash
    cache: true
    with: {echo: hello}
`

// TestE2ECacheFollowsThePluginBuild replaces the kiln binary a `kiln
// worker` runs the built-in plugins from by another build: the shell task
// runs again, the task of the external plugin, whose executable did not
// change, is still taken from the cache.
func TestE2ECacheFollowsThePluginBuild(t *testing.T) {
	dir := t.TempDir()
	ran := filepath.Join(dir, "ran")
	plugins := filepath.Join(dir, "plugins")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(crashBin, filepath.Join(plugins, "kiln-plugin-crash")); err != nil {
		t.Fatal(err)
	}
	e := start(t, map[string]string{"builds": strings.ReplaceAll(buildDAG, "RAN", ran)}, options{})
	// Another build of kiln: the same program with a byte more, which
	// changes its SHA-256 as a rebuild would.
	rebuilt := filepath.Join(dir, "kiln-rebuilt")
	copyFile(t, kilnBin, rebuilt)
	f, err := os.OpenFile(rebuilt, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	startWorker := func(bin, name string) *exec.Cmd {
		t.Helper()
		return startBinary(t, bin, dir, "worker", "--nats", e.ns.ClientURL(), "--name", name, "--plugins", plugins, "--data", filepath.Join(dir, name))
	}
	shellRuns := func() int {
		b, _ := os.ReadFile(ran)
		return bytes.Count(b, []byte("\n"))
	}
	// run runs the DAG and returns the tasks that ran, by their task
	// instances (not taken from the cache); the shell task's side effect
	// must agree.
	run := func() []string {
		t.Helper()
		before := shellRuns()
		r := e.waitRun(e.trigger("builds", nil), 60*time.Second)
		if r.State != store.RunSuccess {
			t.Fatalf("run %s: %v\nshell_task: %s", r.State, e.taskStates(r), e.log(r, "shell_task", 1))
		}
		var out []string
		for _, task := range []string{"crash_task", "shell_task"} {
			ti, err := e.st.GetTaskInstance("builds", r.RunID, task)
			if err != nil {
				t.Fatal(err)
			}
			if ti.CachedFrom == nil {
				out = append(out, task)
			}
		}
		if shellRan := shellRuns() != before; shellRan != slices.Contains(out, "shell_task") {
			t.Fatalf("the shell task's command ran: %t, but its task instance says it ran: %t", shellRan, !shellRan)
		}
		return out
	}
	knows := func(sha string) {
		t.Helper()
		e.waitFor("the scheduler to know the shell build "+sha[:12], 20*time.Second, func() bool {
			return e.s.PluginSHA256("default", "shell") == sha && e.s.PluginBuildKnown("default", "crash")
		})
	}

	old := startWorker(kilnBin, "old")
	knows(fileSHA256(t, kilnBin))
	if got := run(); !slices.Equal(got, []string{"crash_task", "shell_task"}) {
		t.Fatalf("first run ran %v, want both", got)
	}
	if got := run(); len(got) != 0 {
		t.Fatalf("second run ran %v, want both cached", got)
	}

	// The worker stops, withdrawing its entry; one of the new build takes
	// its place.
	if err := old.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Process.Wait(); err != nil {
		t.Fatal(err)
	}
	startWorker(rebuilt, "new")
	knows(fileSHA256(t, rebuilt))
	if got := run(); !slices.Equal(got, []string{"shell_task"}) {
		t.Errorf("after the rebuild ran %v, want shell_task only", got)
	}
	if got := run(); len(got) != 0 {
		t.Errorf("the run after ran %v, want both cached again", got)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// pythonDAG locks a python task's requirements in an artifact of a task
// that is not cached (it copies them from REQS, which the test edits); the
// cached python task names them as an input, so their content is part of
// its key.
const pythonDAG = `
tasks:
  - id: lock
    plugin: shell
    with: {command: 'cp REQS requirements.txt'}
    artifacts: {requirements: requirements.txt}
  - id: fit
    plugin: python
    depends_on: [lock]
    inputs: {reqs: lock.requirements}
    cache: true
    with:
      code: open("RAN", "a").write("x\n")
      requirements: "{{ .inputs.reqs }}"
`

// TestE2ECacheFollowsPythonRequirements edits the requirements of a cached
// python task: it runs again, in a new environment; the same requirements
// again take the cached result.
func TestE2ECacheFollowsPythonRequirements(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	t.Setenv("KILN_PYTHON_ENVS", t.TempDir())
	dir := t.TempDir()
	reqs, ran := filepath.Join(dir, "requirements.in"), filepath.Join(dir, "ran")
	write := func(content string) {
		if err := os.WriteFile(reqs, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# no packages\n")
	e := start(t, map[string]string{"py": strings.NewReplacer("REQS", reqs, "RAN", ran).Replace(pythonDAG)}, options{workers: 1})
	e.waitFor("the worker's plugin builds", 10*time.Second, func() bool { return e.s.PluginBuildKnown("default", "python") })
	fitRan := func() (bool, string) {
		t.Helper()
		b, _ := os.ReadFile(ran)
		before := len(b)
		r := e.waitRun(e.trigger("py", nil), 120*time.Second)
		if r.State != store.RunSuccess {
			t.Fatalf("run %s: %v\nfit: %s", r.State, e.taskStates(r), e.log(r, "fit", 1))
		}
		b, _ = os.ReadFile(ran)
		tr, err := e.st.GetTry("py", r.RunID, "fit", 1)
		if err != nil {
			t.Fatal(err)
		}
		return len(b) != before, tr.Manifest.Cache.Result
	}
	if ran, res := fitRan(); !ran || res != "miss" {
		t.Fatalf("first run: fit ran %t (%s), want it run on a miss", ran, res)
	}
	if ran, res := fitRan(); ran || res != "hit" {
		t.Errorf("same requirements: fit ran %t (%s), want a hit", ran, res)
	}
	write("# no packages\n# pinned again\n")
	if ran, res := fitRan(); !ran || res != "miss" {
		t.Errorf("edited requirements: fit ran %t (%s), want it run on a miss", ran, res)
	}
	if ran, res := fitRan(); ran || res != "hit" {
		t.Errorf("edited requirements again: fit ran %t (%s), want a hit", ran, res)
	}
}
