package scheduler_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// The built-in stages, run for real: served by the kiln binary as plugin
// processes, driven by the scheduler through NATS and a worker.

func TestE2EHTTPStages(t *testing.T) {
	var ready atomic.Bool
	var mu sync.Mutex
	var notified []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/data":
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"data": {"id": "ds-42", "items": [{"name": "first"}]}}`)
		case "/ready":
			if !ready.Load() {
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprint(w, "READY")
		case "/hook":
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			notified = append(notified, string(b))
			mu.Unlock()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	e := start(t, map[string]string{"web": fmt.Sprintf(`
tasks:
  - id: fetch
    plugin: http
    with: {url: "%[1]s/data", outputs: {id: "$.data.id", first: "data.items[0].name"}}
  - id: wait
    plugin: http_sensor
    with: {url: "%[1]s/ready", body_contains: READY}
    poke_interval: 200ms
    sensor_timeout: 30s
  - id: tell
    plugin: notify
    depends_on: [fetch, wait]
    with: {url: "%[1]s/hook", body: '{"id": "{{ .outputs.fetch.id }}", "first": "{{ .outputs.fetch.first }}"}'}
  - id: missing
    plugin: http
    with: {url: "%[1]s/nope"}
`, srv.URL)}, options{workers: 1})
	r := e.trigger("web", nil)
	time.AfterFunc(time.Second, func() { ready.Store(true) })
	r = e.waitRun(r, 30*time.Second)
	got := e.taskStates(r)
	if got["fetch"] != store.TaskSuccess || got["wait"] != store.TaskSuccess || got["tell"] != store.TaskSuccess || got["missing"] != store.TaskFailed {
		t.Fatalf("states %v; logs: fetch %q wait %q", got, e.log(r, "fetch", 1), e.log(r, "wait", 1))
	}
	ti, _ := e.st.GetTaskInstance("web", r.RunID, "fetch")
	if ti.Outputs["id"] != "ds-42" || ti.Outputs["first"] != "first" || fmt.Sprint(ti.Outputs["status"]) != "200" {
		t.Errorf("fetch outputs = %v", ti.Outputs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(notified) != 1 || notified[0] != `{"id": "ds-42", "first": "first"}` {
		t.Errorf("webhook got %q", notified)
	}
	wait, _ := e.st.GetTaskInstance("web", r.RunID, "wait")
	if wait.TryNumber != 1 {
		t.Errorf("the sensor used %d tries, want 1 for all its pokes", wait.TryNumber)
	}
}

// TestE2ERescheduleFreesTheSlot: two file sensors in reschedule mode on a
// worker with ONE slot both keep poking, and a normal task gets the slot
// between their pokes.
func TestE2ERescheduleFreesTheSlot(t *testing.T) {
	in := t.TempDir()
	e := start(t, map[string]string{"files": strings.ReplaceAll(`
tasks:
  - {id: wait_a, plugin: file_sensor, with: {path: "IN/a-*.csv"}, poke_interval: 200ms, sensor_timeout: 30s}
  - {id: wait_b, plugin: file_sensor, with: {path: "IN/b-*.csv", min_size: 3}, poke_interval: 200ms, sensor_timeout: 30s}
  - {id: meanwhile, plugin: shell, with: {command: 'echo x > IN/b-1.csv && sleep 0.5 && echo more > IN/b-1.csv'}}
  - {id: later, plugin: shell, with: {command: 'sleep 1 && echo 1 > IN/a-1.csv'}, depends_on: [meanwhile]}
`, "IN", in)}, options{workers: 1, slots: 1})
	r := e.waitRun(e.trigger("files", nil), 60*time.Second)
	if got := e.taskStates(r); r.State != store.RunSuccess {
		t.Fatalf("run %s, states %v\nwait_a log: %s", r.State, got, e.log(r, "wait_a", 1))
	}
	a, _ := e.st.GetTaskInstance("files", r.RunID, "wait_a")
	b, _ := e.st.GetTaskInstance("files", r.RunID, "wait_b")
	later, _ := e.st.GetTaskInstance("files", r.RunID, "later")
	if a.EndDate.Before(*later.EndDate) {
		t.Errorf("wait_a ended before the file it waits for was written")
	}
	for _, id := range []string{"wait_a", "wait_b"} {
		if log := e.log(r, id, 1); strings.Count(log, "\n") < 2 {
			t.Errorf("%s was poked too few times on a 1-slot worker; log %q", id, log)
		}
	}
	if b.TryNumber != 1 || a.TryNumber != 1 {
		t.Errorf("tries a=%d b=%d, want 1 each", a.TryNumber, b.TryNumber)
	}
}

func TestE2ESensorTimeoutAndSoftFail(t *testing.T) {
	e := start(t, map[string]string{"never": `
tasks:
  - {id: hard, plugin: file_sensor, with: {path: "never-*.txt"}, poke_interval: 200ms, sensor_timeout: 1s, retries: 3}
  - {id: soft, plugin: file_sensor, with: {path: "never-*.txt"}, mode: poke, poke_interval: 200ms, sensor_timeout: 1s, soft_fail: true}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("never", nil), 30*time.Second)
	got := e.taskStates(r)
	if got["hard"] != store.TaskFailed || got["soft"] != store.TaskSkipped {
		t.Errorf("states %v, want hard failed and soft skipped", got)
	}
	hard, _ := e.st.GetTaskInstance("never", r.RunID, "hard")
	if hard.TryNumber != 1 || !strings.Contains(hard.Error, "timed out") {
		t.Errorf("hard: try %d %q, want one try, timed out (no retries)", hard.TryNumber, hard.Error)
	}
}

func TestE2EPythonStage(t *testing.T) {
	e := start(t, map[string]string{"py": `
params: {n: {type: integer, default: 7}}
tasks:
  - id: square
    plugin: python
    with:
      code: |
        import os, sys
        n = {{ .params.n }}
        print(f"python {sys.version_info.major}: {n}^2 = {n*n}")
        with open(os.environ["KILN_OUTPUT"], "a") as f:
            f.write(f"square={n*n}\n")
  - id: fail
    plugin: python
    with: {code: "raise SystemExit(3)"}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("py", nil), 60*time.Second)
	got := e.taskStates(r)
	if got["square"] != store.TaskSuccess || got["fail"] != store.TaskFailed {
		t.Fatalf("states %v; log %q", got, e.log(r, "square", 1))
	}
	ti, _ := e.st.GetTaskInstance("py", r.RunID, "square")
	if ti.Outputs["square"] != "49" || !strings.Contains(e.log(r, "square", 1), "7^2 = 49") {
		t.Errorf("outputs %v log %q", ti.Outputs, e.log(r, "square", 1))
	}
	if tr, _ := e.st.GetTry("py", r.RunID, "fail", 1); tr.ExitCode == nil || *tr.ExitCode != 3 {
		t.Errorf("fail's try = %+v, want exit code 3", tr)
	}
}

// TestE2ESecretsMasked: a secret reaches the task through env and is
// masked in its stored log; a missing one fails the task, naming where it
// was looked for.
func TestE2ESecretsMasked(t *testing.T) {
	t.Setenv("KILN_SECRET_api_token", "tok-8f14e45fceea167a")
	e := start(t, map[string]string{"sec": `
env: {TOKEN: "{{ .secrets.api_token }}"}
tasks:
  - id: use
    plugin: shell
    with: {command: 'echo "calling with $TOKEN"; test "$TOKEN" = tok-8f14e45fceea167a'}
  - id: missing
    plugin: shell
    env: {PASS: "{{ .secrets.db_password }}"}
    with: {command: 'true'}
`}, options{workers: 1})
	r := e.waitRun(e.trigger("sec", nil), 30*time.Second)
	states := e.taskStates(r)
	if states["use"] != store.TaskSuccess || states["missing"] != store.TaskFailed {
		t.Fatalf("states %v; logs: use %q missing %q", states, e.log(r, "use", 1), e.log(r, "missing", 1))
	}
	// The command line the shell stage logs first is masked too.
	if log := e.log(r, "use", 1); log != "kiln: running: echo \"calling with $TOKEN\"; test \"$TOKEN\" = ***\ncalling with ***\n" {
		t.Errorf("use's log = %q, want the secret masked", log)
	}
	if log := e.log(r, "missing", 1); !strings.Contains(log, "secret db_password") || !strings.Contains(log, "KILN_SECRET_db_password") {
		t.Errorf("missing's log = %q, want the missing secret named", log)
	}
}
