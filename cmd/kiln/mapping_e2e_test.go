package main_test

import (
	"strings"
	"testing"
)

// TestDagsTestMapped: `kiln dags test` reports a mapped task once, as a
// whole, with the state of its instances together (docs/cli.md#mapped-tasks).
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
	if code != 0 || !strings.Contains(stdout, "12 instances") {
		t.Errorf("exit %d; the progress does not say square runs 12 instances:\n%s\n%s", code, stdout, stderr)
	}
}
