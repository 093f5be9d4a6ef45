package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fanoutDAG maps a no-op task over 1,000 items its upstream lists.
const fanoutDAG = `id: fanout
max_active_tasks: 64
tasks:
  - id: list
    plugin: shell
    with: {command: 'echo "items=[$(seq -s, 1 1000)]" > "$KILN_OUTPUT"'}
  - id: noop
    plugin: shell
    depends_on: [list]
    map: outputs.list.items
    max_map_length: 1000
    with: {command: 'true'}
`

// TestMapExpansionSurvivesAKill SIGKILLs kiln standalone as the scheduler
// expands a mapped task (on the log line it writes as it decides the
// expansion, before the turn commits it), restarts it, and finds the run
// done with exactly one set of instances: the expansion and the end of
// the upstream task are one commit, so the restart sees both or neither.
func TestMapExpansionSurvivesAKill(t *testing.T) {
	dags, data := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(dags, "fanout.yaml"), []byte(fanoutDAG), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startStandalone(t, dags, data)
	out, stderr, code := s.kiln(t, "trigger", "fanout", "--json")
	var run struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal([]byte(out), &run); code != 0 || err != nil {
		t.Fatalf("trigger: %v %s", err, stderr)
	}
	deadline := time.Now().Add(runTimeout)
	for !strings.Contains(s.out.String(), `msg="mapped task expanded"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the mapped task did not expand:\n%s", s.out.String())
		}
		time.Sleep(time.Millisecond)
	}
	if err := s.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s.wait(t, runTimeout)

	s = startStandalone(t, dags, data)
	runURL := s.URL + "/api/v1/dags/fanout/runs/" + run.RunID
	waitSuccess(t, runURL, deadline.Add(runTimeout))
	var tis []struct {
		TaskID    string `json:"task_id"`
		MapIndex  int    `json:"map_index"`
		MapLength int    `json:"map_length"`
		State     string `json:"state"`
		Item      any    `json:"item"`
	}
	getJSON(t, runURL+"/tasks", &tis)
	seen := map[int]bool{}
	for _, ti := range tis {
		switch {
		case ti.TaskID == "noop" && ti.MapIndex < 0:
			if ti.MapLength != 1000 || ti.State != "success" {
				t.Errorf("noop: %d instances, %s; want 1000, success", ti.MapLength, ti.State)
			}
		case ti.TaskID == "noop":
			if seen[ti.MapIndex] || ti.State != "success" || ti.Item != float64(ti.MapIndex+1) {
				t.Errorf("noop[%d]: %s, item %v (seen before: %v)", ti.MapIndex, ti.State, ti.Item, seen[ti.MapIndex])
			}
			seen[ti.MapIndex] = true
		}
	}
	if len(seen) != 1000 || len(tis) != 1002 {
		t.Errorf("%d instances of noop in %d task instances, want 1000 in 1002", len(seen), len(tis))
	}
	// Where the kill fell: before the expansion's commit, the restarted
	// scheduler expanded the task again.
	t.Logf("expanded again after the restart: %v", strings.Contains(s.out.String(), `msg="mapped task expanded"`))
}

// TestMappingExamples runs the example DAGs of mapping through the CLI:
// file_fanout counts a dozen files in a mapped task and adds them up;
// region_sweep runs its mapped group once per region, and its report sees
// every branch's load.
func TestMappingExamples(t *testing.T) {
	s := startStandalone(t, exampleDAGs(t, "file_fanout.yaml", "region_sweep.yaml"), t.TempDir())
	outputs := func(dagID, runID string) map[string]map[string]any {
		t.Helper()
		var tis []struct {
			TaskID   string         `json:"task_id"`
			MapIndex int            `json:"map_index"`
			State    string         `json:"state"`
			Outputs  map[string]any `json:"outputs"`
		}
		getJSON(t, s.URL+"/api/v1/dags/"+dagID+"/runs/"+runID+"/tasks", &tis)
		out := map[string]map[string]any{}
		for _, ti := range tis {
			if ti.State != "success" {
				t.Errorf("%s[%d] is %s", ti.TaskID, ti.MapIndex, ti.State)
			}
			out[fmt.Sprintf("%s[%d]", ti.TaskID, ti.MapIndex)] = ti.Outputs
		}
		return out
	}
	trigger := func(dagID string, args ...string) string {
		t.Helper()
		out, stderr, code := s.kiln(t, append([]string{"trigger", dagID, "--wait", "--json"}, args...)...)
		var run struct {
			RunID string `json:"run_id"`
			State string `json:"state"`
		}
		if err := json.Unmarshal([]byte(out), &run); code != 0 || err != nil || run.State != "success" {
			t.Fatalf("trigger %s --wait: %v, %s, %s", dagID, err, out, stderr)
		}
		return run.RunID
	}

	got := outputs("file_fanout", trigger("file_fanout"))
	want := 0
	for i := range 12 {
		want += (i*37+11)%90 + 10
	}
	if rows := got["total[-1]"]["rows"]; rows != fmt.Sprint(want) || len(got) != 15 {
		t.Errorf("file_fanout: total rows %v, want %d; %d task instances, want 15", rows, want, len(got))
	}

	// 50 files: 50 instances in the API, the grid and `runs show`; one
	// cleared by --map-index runs again alone, with the total after it.
	run := trigger("file_fanout", "--param", "files=50")
	tries := func() map[string]int {
		t.Helper()
		var tis []struct {
			TaskID    string `json:"task_id"`
			MapIndex  int    `json:"map_index"`
			TryNumber int    `json:"try_number"`
		}
		getJSON(t, s.URL+"/api/v1/dags/file_fanout/runs/"+run+"/tasks", &tis)
		out := map[string]int{}
		for _, ti := range tis {
			out[fmt.Sprintf("%s[%d]", ti.TaskID, ti.MapIndex)] = ti.TryNumber
		}
		return out
	}
	before := tries()
	if len(before) != 53 || before["count_rows[49]"] != 1 {
		t.Fatalf("%d task instances in the API, want 53 with count_rows[49]: %v", len(before), before)
	}
	if out, _, _ := s.kiln(t, "runs", "show", run, "--dag", "file_fanout"); !strings.Contains(out, "(50 instances)") || !strings.Contains(out, "count_rows[49]") {
		t.Errorf("runs show does not list the 50 instances:\n%s", out)
	}
	resp, err := http.Get(s.URL + "/dags/file_fanout")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `data-map-length="50"`) {
		t.Errorf("the grid does not show count_rows's 50 instances")
	}
	if _, stderr, code := s.kiln(t, "tasks", "clear", "file_fanout", "--run", run, "--task", "count_rows", "--map-index", "7", "--downstream"); code != 0 {
		t.Fatalf("tasks clear --map-index 7: %s", stderr)
	}
	waitSuccess(t, s.URL+"/api/v1/dags/file_fanout/runs/"+run, time.Now().Add(runTimeout))
	for k, n := range tries() {
		want := before[k]
		if k == "count_rows[7]" || k == "total[-1]" {
			want++
		}
		if n != want {
			t.Errorf("after clearing count_rows[7]: %s ran %d tries, want %d", k, n, want)
		}
	}

	got = outputs("region_sweep", trigger("region_sweep"))
	for i, region := range []string{"eu", "us", "apac"} {
		loaded, _ := got[fmt.Sprintf("load[%d]", i)]["loaded"].(string)
		if !strings.HasPrefix(loaded, region+":") {
			t.Errorf("load[%d] loaded %q, want %s's rows", i, loaded, region)
		}
	}
	if len(got) != 4+9 {
		t.Errorf("region_sweep has %d task instances, want 13 (4 tasks, 3 branches of 3)", len(got))
	}
}

// TestDagsTestMapped: `kiln dags test` follows each instance of a mapped
// task as it runs, and its result lists the task once, as a whole, with
// the state of its instances together (docs/cli.md#kiln-dags-test).
func TestDagsTestMapped(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"dags/fanout.yaml": `
id: fanout
tasks:
  - id: list
    plugin: shell
    with: {command: 'echo "n=[1,2,3,4,5,6,7,8,9,10,11,12]" > "$KILN_OUTPUT"'}
  - id: square
    depends_on: [list]
    map: outputs.list.n
    plugin: shell
    with: {command: 'echo "n=$(( {{ .item }} * {{ .item }} ))" > "$KILN_OUTPUT"'}
  - id: total
    depends_on: [square]
    plugin: shell
    with: {command: 'echo "{{ json .outputs.square }}"'}
`})
	stdout, stderr, code := runKilnEnv(t, dir, nil, "", "dags", "test", "fanout", "--dags", "dags", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var tasks []string
	for _, ti := range decodeTestRun(t, stdout).Tasks {
		tasks = append(tasks, ti.TaskID+":"+ti.State)
	}
	if got := strings.Join(tasks, " "); got != "list:success square:success total:success" {
		t.Errorf("tasks = %s, want each once", got)
	}
	if !strings.Contains(stdout, `"map_length": 12`) {
		t.Errorf("square is not reported as a whole, with its 12 instances:\n%s", stdout)
	}
	stdout, stderr, code = runKilnEnv(t, dir, nil, "", "dags", "test", "fanout", "--dags", "dags")
	if code != 0 || !strings.Contains(stdout, "12 instances") || !strings.Contains(stdout, "square[11]") {
		t.Errorf("exit %d; the progress does not say square runs 12 instances, and follow square[11]:\n%s\n%s", code, stdout, stderr)
	}
}

// waitSuccess waits until the run at runURL (its API URL) succeeds.
func waitSuccess(t *testing.T, runURL string, deadline time.Time) {
	t.Helper()
	var got struct {
		State string `json:"state"`
	}
	for getJSON(t, runURL, &got); got.State != "success"; getJSON(t, runURL, &got) {
		if got.State == "failed" || time.Now().After(deadline) {
			t.Fatalf("the run is %s", got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
