package main_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pinnedDAG is a DAG whose run waits on a gate file (a sensor in
// reschedule mode, so that no try is in flight while it waits), then runs
// b and c. version 2 changes b's command, removes c and adds d.
func pinnedDAG(gate string, version int) string {
	src := fmt.Sprintf(`id: pinned
tasks:
  - {id: a, plugin: shell, with: {command: "echo a-v%[2]d"}}
  - id: wait
    plugin: file_sensor
    depends_on: [a]
    poke_interval: 1s
    with: {path: %[1]q}
  - {id: b, plugin: shell, depends_on: [wait], with: {command: "echo b-v%[2]d"}}
`, gate, version)
	if version == 1 {
		return src + `  - {id: c, plugin: shell, depends_on: [wait], with: {command: "echo c-v1"}}
`
	}
	return src + `  - {id: d, plugin: shell, depends_on: [wait], with: {command: "echo d-v2"}}
`
}

// apiRun is what these tests read of a run's JSON.
type apiRun struct {
	State      string `json:"state"`
	DAGVersion string `json:"dag_version"`
	Tasks      []struct {
		TaskID    string `json:"task_id"`
		State     string `json:"state"`
		TryNumber int    `json:"try_number"`
	} `json:"tasks"`
	VersionChanges []struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"version_changes"`
}

func (r apiRun) states() map[string]string {
	m := map[string]string{}
	for _, t := range r.Tasks {
		m[t.TaskID] = t.State
	}
	return m
}

func showRun(t *testing.T, s *standalone, dag, run string) apiRun {
	t.Helper()
	stdout, stderr, code := s.kiln(t, "runs", "show", run, "--dag", dag, "--json")
	if code != 0 {
		t.Fatalf("kiln runs show %s: exit code %d, stderr %q", run, code, stderr)
	}
	var r apiRun
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("kiln runs show: %v\n%s", err, stdout)
	}
	return r
}

func waitRunState(t *testing.T, s *standalone, dag, run string, cond func(apiRun) bool) apiRun {
	t.Helper()
	var r apiRun
	waitFor(t, "run "+run+" of "+dag, func() bool {
		r = showRun(t, s, dag, run)
		return cond(r)
	})
	return r
}

func taskLog(t *testing.T, s *standalone, dag, run, task string) string {
	t.Helper()
	stdout, stderr, code := s.kiln(t, "tasks", "logs", dag, "--run", run, "--task", task)
	if code != 0 {
		t.Fatalf("kiln tasks logs %s: exit code %d, stderr %q", task, code, stderr)
	}
	return stdout
}

func ended(r apiRun) bool { return r.State == "success" || r.State == "failed" }

// TestRunKeepsItsVersion: a run mid-way when its DAG file is edited, and
// the server killed with SIGKILL and started again, finishes as the
// version it started with; the next run uses the new version; tasks clear
// keeps the run's version and --latest moves it.
func TestRunKeepsItsVersion(t *testing.T) {
	root, dags, data, gate := pinnedFolders(t)
	s, run, v1 := startPinnedRun(t, dags, data)

	writeFiles(t, root, map[string]string{"dags/pinned.yaml": pinnedDAG(gate, 2)})
	killStandalone(t, s)
	s = startStandalone(t, dags, data)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := waitRunState(t, s, "pinned", run, ended)
	want := map[string]string{"a": "success", "wait": "success", "b": "success", "c": "success"}
	if got := r.states(); r.State != "success" || !maps.Equal(got, want) || r.DAGVersion != v1.DAGVersion {
		t.Fatalf("the first run ended %s with %v on version %s; want success with %v on %s", r.State, got, r.DAGVersion, want, v1.DAGVersion)
	}
	if log := taskLog(t, s, "pinned", run, "b"); !strings.Contains(log, "b-v1") {
		t.Errorf("b of the first run logged %q, want b-v1", log)
	}

	next := trigger(t, s, "pinned", true)
	r2 := showRun(t, s, "pinned", next)
	want2 := map[string]string{"a": "success", "wait": "success", "b": "success", "d": "success"}
	if got := r2.states(); !maps.Equal(got, want2) || r2.DAGVersion == v1.DAGVersion {
		t.Errorf("the next run: %v on version %s; want %v on the new version", got, r2.DAGVersion, want2)
	}
	if log := taskLog(t, s, "pinned", next, "b"); !strings.Contains(log, "b-v2") {
		t.Errorf("b of the next run logged %q, want b-v2", log)
	}

	// A clear runs b again on the first run's own version.
	if _, stderr, code := s.kiln(t, "tasks", "clear", "pinned", "--run", run, "--task", "b"); code != 0 {
		t.Fatalf("kiln tasks clear: exit code %d, stderr %q", code, stderr)
	}
	r = waitRunState(t, s, "pinned", run, func(r apiRun) bool { return ended(r) && taskTry(r, "b") == 2 })
	if log := taskLog(t, s, "pinned", run, "b"); !strings.Contains(log, "b-v1") || r.DAGVersion != v1.DAGVersion {
		t.Errorf("b cleared ran %q on version %s; want b-v1 on %s", log, r.DAGVersion, v1.DAGVersion)
	}
	// A task only the new version has is refused, naming the version.
	if _, stderr, code := s.kiln(t, "tasks", "clear", "pinned", "--run", run, "--task", "d"); code == 0 || !strings.Contains(stderr, `no task "d"`) {
		t.Errorf("clearing d of the first run: exit code %d, stderr %q; want a refusal", code, stderr)
	}

	// --latest moves it: d is created and runs, b runs the new command.
	if _, stderr, code := s.kiln(t, "tasks", "clear", "pinned", "--run", run, "--task", "b", "--latest"); code != 0 {
		t.Fatalf("kiln tasks clear --latest: exit code %d, stderr %q", code, stderr)
	}
	r = waitRunState(t, s, "pinned", run, func(r apiRun) bool { return ended(r) && taskTry(r, "b") == 3 })
	if r.DAGVersion != r2.DAGVersion || len(r.VersionChanges) != 1 || r.VersionChanges[0].From != v1.DAGVersion || r.VersionChanges[0].To != r2.DAGVersion {
		t.Errorf("after --latest: version %s, changes %+v; want moved from %s to %s", r.DAGVersion, r.VersionChanges, v1.DAGVersion, r2.DAGVersion)
	}
	if got := r.states(); got["d"] != "success" || r.State != "success" {
		t.Errorf("after --latest the run is %s with %v; want d run and success", r.State, got)
	}
	if log := taskLog(t, s, "pinned", run, "b"); !strings.Contains(log, "b-v2") {
		t.Errorf("b after --latest logged %q, want b-v2", log)
	}
}

// TestRunKeepsItsVersionWhileServing: a run mid-way when its DAG file is
// edited, the server running on, finishes as the version it started with.
func TestRunKeepsItsVersionWhileServing(t *testing.T) {
	root, dags, data, gate := pinnedFolders(t)
	s, run, v1 := startPinnedRun(t, dags, data)
	writeFiles(t, root, map[string]string{"dags/pinned.yaml": pinnedDAG(gate, 2)})
	waitFor(t, "the edit to load", func() bool {
		resp, err := http.Get(s.URL + "/api/v1/dags/pinned/versions")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var vs []struct{}
		return json.NewDecoder(resp.Body).Decode(&vs) == nil && len(vs) == 2
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r := waitRunState(t, s, "pinned", run, ended)
	want := map[string]string{"a": "success", "wait": "success", "b": "success", "c": "success"}
	if got := r.states(); r.State != "success" || !maps.Equal(got, want) || r.DAGVersion != v1.DAGVersion {
		t.Fatalf("the run ended %s with %v on version %s; want success with %v on %s", r.State, got, r.DAGVersion, want, v1.DAGVersion)
	}
	if log := taskLog(t, s, "pinned", run, "b"); !strings.Contains(log, "b-v1") {
		t.Errorf("b logged %q, want b-v1", log)
	}
}

// TestVersionSurvivesBrokenAndDeletedFile: a file broken when the server
// starts keeps its last good version, and a run whose file is deleted
// finishes.
func TestVersionSurvivesBrokenAndDeletedFile(t *testing.T) {
	root, dags, data, gate := pinnedFolders(t)
	s, run, v1 := startPinnedRun(t, dags, data)
	killStandalone(t, s)

	writeFiles(t, root, map[string]string{"dags/pinned.yaml": "id: pinned\ntasks: [\n"})
	s = startStandalone(t, dags, data)
	stdout, stderr, code := s.kiln(t, "dags", "list", "--json")
	if code != 0 || !strings.Contains(stdout, `"pinned"`) {
		t.Fatalf("dags list after a start with the file broken: exit code %d, stdout %q, stderr %q; want pinned listed", code, stdout, stderr)
	}
	again := trigger(t, s, "pinned", false)
	if r := showRun(t, s, "pinned", again); r.DAGVersion != v1.DAGVersion {
		t.Errorf("a run of the broken file's DAG is on %s, want its last good version %s", r.DAGVersion, v1.DAGVersion)
	}

	if err := os.Remove(filepath.Join(dags, "pinned.yaml")); err != nil {
		t.Fatal(err)
	}
	var listed string
	defer func() {
		if t.Failed() {
			t.Logf("dags list --json:\n%s", listed)
		}
	}()
	waitFor(t, "the DAG to go", func() bool {
		listed, _, _ = s.kiln(t, "dags", "list", "--json")
		return !strings.Contains(listed, `"pinned"`)
	})
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{run, again} {
		if r := waitRunState(t, s, "pinned", id, ended); r.State != "success" {
			t.Errorf("run %s of the deleted file ended %s with %v, want success", id, r.State, r.states())
		}
	}
}

// pinnedFolders makes a folder with pinnedDAG's version 1 in dags/, and
// names its data folder and gate file.
func pinnedFolders(t *testing.T) (root, dags, data, gate string) {
	t.Helper()
	root = t.TempDir()
	gate = filepath.Join(root, "gate")
	writeFiles(t, root, map[string]string{"dags/pinned.yaml": pinnedDAG(gate, 1)})
	return root, filepath.Join(root, "dags"), filepath.Join(root, "data"), gate
}

// startPinnedRun starts kiln standalone and a run of pinned, and waits
// until the run waits at its gate with no try in flight.
func startPinnedRun(t *testing.T, dags, data string) (*standalone, string, apiRun) {
	t.Helper()
	s := startStandalone(t, dags, data)
	run := trigger(t, s, "pinned", false)
	r := waitRunState(t, s, "pinned", run, func(r apiRun) bool { return r.states()["wait"] == "up_for_reschedule" })
	return s, run, r
}

// killStandalone kills a kiln standalone with SIGKILL and waits for it.
func killStandalone(t *testing.T, s *standalone) {
	t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.exited
}

func taskTry(r apiRun, task string) int {
	for _, t := range r.Tasks {
		if t.TaskID == task {
			return t.TryNumber
		}
	}
	return 0
}
