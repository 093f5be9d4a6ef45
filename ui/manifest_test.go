package ui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// secretDAG's task gets a secret through its env and puts it, through
// .env, into its rendered command, which it also runs and prints.
const secretDAG = `
id: secretive
env: {TOKEN: "{{ .secrets.ui_token }}"}
tasks:
  - id: call
    plugin: shell
    with: {command: 'echo "calling with {{ .env.TOKEN }} and $TOKEN"'}
`

// TestTriesAndSecrets: the tries API answers each try with its manifest,
// the run page shows it in its Rendered panel, and the secret the task
// used appears in none of the API's answers, the pages or /metrics.
func TestTriesAndSecrets(t *testing.T) {
	const secret = "ui-secret-7d3f9a"
	t.Setenv("KILN_SECRET_ui_token", secret)
	reg := prometheus.NewRegistry()
	k := kilntest.Start(t, kilntest.Options{DAGs: []string{secretDAG}, Metrics: reg})
	srv := serveAPI(t, k, ui.Options{Metrics: reg})
	r, err := k.Trigger(t.Context(), "secretive", scheduler.TriggerRequest{})
	if err != nil {
		t.Fatal(err)
	}
	k.WaitRun("secretive", r.RunID, store.RunSuccess)
	run := "/dags/secretive/runs/" + r.RunID
	api := srv.URL + "/api/v1" + run

	var tries []ui.TryDetail
	resp := call(t, "GET", api+"/tasks/call/tries", "")
	resp.decode(t, &tries)
	if len(tries) != 1 || tries[0].Manifest == nil || tries[0].TryNumber != 1 || tries[0].TaskID != "call" {
		t.Fatalf("tries = %s", resp.body)
	}
	m := tries[0].Manifest
	if got := m.With["command"]; got != `echo "calling with *** and $TOKEN"` {
		t.Errorf("manifest with.command = %q, want the secret masked", got)
	}
	if m.DAGVersion != r.DAGHash || m.Plugin.Name != "shell" || m.Plugin.SHA256 == "" || m.Worker == nil || m.Worker.ID != "w1" {
		t.Errorf("manifest = %+v", m)
	}
	if got := strings.Join(keys(t, call(t, "GET", api+"/tasks/call/tries/1", "").body), " "); got != "dag_id duration_s end_date error exit_code manifest map_index queued_at run_id start_date state task_id try_number worker" {
		t.Errorf("try keys: %s", got)
	}
	call(t, "GET", api+"/tasks/call/tries/2", "").wantError(t, http.StatusNotFound, "no try 2")
	call(t, "GET", api+"/tasks/call/tries/x", "").wantError(t, http.StatusBadRequest, "try number")
	call(t, "GET", api+"/tasks/nope/tries", "").wantError(t, http.StatusNotFound, `task "nope" not found`)
	call(t, "GET", api+"/tasks/cal/tries/1", "").wantError(t, http.StatusNotFound, `task "cal" not found`, `did you mean "call"?`)

	page := call(t, "GET", srv.URL+run+"?task=call", "")
	if page.status != http.StatusOK || !strings.Contains(string(page.body), `id="task-rendered"`) ||
		!strings.Contains(string(page.body), "calling with *** and $TOKEN") {
		t.Errorf("run page: %d, want a Rendered panel with the masked command:\n%s", page.status, page.body)
	}
	for _, path := range []string{
		"/api/v1" + run, "/api/v1" + run + "/tasks", "/api/v1" + run + "/tasks/call/tries",
		"/api/v1" + run + "/tasks/call/tries/1", "/api/v1" + run + "/tasks/call/logs",
		run + "?task=call", run + "/tasks/call/logs?try=1", "/metrics",
	} {
		got := call(t, "GET", srv.URL+path, "")
		if got.status != http.StatusOK {
			t.Errorf("GET %s: %d", path, got.status)
		}
		if strings.Contains(string(got.body), secret) {
			t.Errorf("GET %s shows the secret:\n%s", path, got.body)
		}
	}
}
