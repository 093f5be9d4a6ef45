package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// showDAG's load reads an output of extract and a secret through its env.
const showDAG = `
id: show
params: {region: {type: string, default: eu}}
tasks:
  - {id: extract, plugin: shell, with: {command: "echo rows=12 >> $KILN_OUTPUT"}}
  - id: load
    plugin: shell
    depends_on: [extract]
    when: int(outputs.extract.rows) > 0
    env: {TOKEN: "{{ .secrets.show_token }}"}
    with: {command: "echo loading {{ .outputs.extract.rows }} rows for {{ .params.region }} with {{ .env.TOKEN }}"}
`

func TestTasksShow(t *testing.T) {
	const secret = "tok-5e2c-very-secret"
	t.Setenv("KILN_SECRET_show_token", secret)
	e := newCLIEnv(t, showDAG)
	r := e.trigger("show", "2026-01-05T02:00:00Z", map[string]any{"region": "us"})
	e.k.WaitRun("show", r.RunID, store.RunSuccess)

	show := func(extra ...string) (string, string, int) {
		return e.run(append([]string{"tasks", "show", "show", "--run", r.RunID, "--task", "load"}, extra...)...)
	}
	stdout, stderr, code := show()
	if code != 0 {
		t.Fatalf("tasks show: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"Task:          load", "Try:           1", "State:         success",
		"DAG version:   " + r.DAGHash, "Plugin:        shell 0.1.0 (sha256 ",
		"Worker:        w1 on ", "When:          int(outputs.extract.rows) > 0 → true",
		"Env:           TOKEN", "Params:        region=us", "Outputs read:  extract.rows=12",
		`"command": "echo loading 12 rows for us with ***"`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("tasks show lacks %q:\n%s", want, stdout)
		}
	}

	stdout, stderr, code = show("--try", "1", "--json")
	if code != 0 {
		t.Fatalf("tasks show --json: exit %d: %s", code, stderr)
	}
	var tr ui.TryDetail
	if err := json.Unmarshal([]byte(stdout), &tr); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout)
	}
	if m := tr.Manifest; m == nil || m.DAGVersion != r.DAGHash || m.Plugin.SHA256 == "" || m.Worker == nil || m.Worker.Host == "" {
		t.Errorf("--json manifest = %+v", tr.Manifest)
	}
	if got := strings.Join(jsonKeys(t, []byte(stdout)), " "); got != "dag_id duration_s end_date error exit_code manifest map_index queued_at run_id start_date state task_id try_number worker" {
		t.Errorf("--json keys: %s", got)
	}
	if strings.Contains(stdout, secret) {
		t.Errorf("the secret is in the output:\n%s", stdout)
	}

	_, stderr, code = show("--try", "2")
	wantExit(t, code, stderr, 1, "no try 2")
	_, stderr, code = show("--try", "0")
	wantExit(t, code, stderr, 2, "--try")
	_, stderr, code = e.run("tasks", "show", "show", "--run", r.RunID, "--task", "nope")
	wantExit(t, code, stderr, 1, "nope")
}

// keyValues is how `tasks show` and `dags test` print params: each value
// as a task's $KILN_PARAM_* has it, a string as it is, anything else as
// JSON.
func TestKeyValues(t *testing.T) {
	for _, c := range []struct {
		m    map[string]any
		want string
	}{
		{nil, "-"},
		{map[string]any{}, "-"},
		{map[string]any{"region": "eu", "sample_frac": 1.0}, "region=eu sample_frac=1"},
		{map[string]any{"regions": []any{"eu", "us"}, "opts": map[string]any{"deep": true}, "none": nil}, `none=null opts={"deep":true} regions=["eu","us"]`},
	} {
		if got := keyValues(c.m); got != c.want {
			t.Errorf("keyValues(%v) = %q, want %q", c.m, got, c.want)
		}
	}
}
