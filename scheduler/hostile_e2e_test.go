package scheduler_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHostileInput attacks a real `kiln standalone` from outside, through
// its DAG folder and its API, as a black-box test did: an id that breaks
// NATS subjects, a secret written to outputs, a param that tries shell
// injection. Each attack must fail, and the server must go on running the
// other DAGs.
func TestHostileInput(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	pwned := filepath.Join(dir, "pwned")
	const secret = "hunter2-db-pass"
	t.Setenv("KILN_SECRET_DB", secret)
	files := map[string]string{
		// Valid ids before this fix; each stopped all task execution.
		"dot.yaml":     "id: \"x.\"\ntasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n",
		"dotdot.yaml":  "id: \"..\"\ntasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n",
		"leading.yaml": "id: \".x\"\ntasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n",
		"doubled.yaml": "id: \"a..b\"\ntasks: [{id: a, plugin: shell, with: {command: 'true'}}]\n",
		"good.yaml":    "id: good\ntasks: [{id: a, plugin: shell, with: {command: 'echo fine'}}]\n",
		"dotted.yaml":  "id: team.good\ntasks: [{id: a, plugin: shell, with: {command: 'echo fine'}}]\n",
		"leak.yaml":    "id: leak\nenv: {DB: \"{{ .secrets.DB }}\"}\ntasks:\n  - {id: a, plugin: shell, with: {command: 'echo \"leak=$DB\" >> \"$KILN_OUTPUT\"; echo \"{\\\"k\\\": \\\"$DB\\\"}\" > /dev/null; echo \"password is $DB\"'}}\n",
		"snoop.yaml":   "id: snoop\ntasks: [{id: a, plugin: shell, with: {command: 'env'}}]\n",
		"inject.yaml": "id: inject\nparams: {name: {type: string, default: world}}\ntasks:\n" +
			"  - {id: quoted, plugin: shell, with: {command: 'echo hello {{ .params.name | shellquote }}'}}\n" +
			"  - {id: env, plugin: shell, with: {command: 'echo \"hello $KILN_PARAM_NAME\"'}}\n",
	}
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dags, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr, natsAddr := freeAddr(t), freeAddr(t)
	startProcess(t, dir, "standalone", "--dags", dags, "--data", filepath.Join(dir, "data"), "--addr", addr,
		"--nats-listen", natsAddr, "--workers", "1", "--slots", "4", "--log-level", "warn")
	base := "http://" + addr
	waitHTTP(t, base+"/healthz")
	api := base + "/api/v1"

	t.Run("ids that break subjects are import errors", func(t *testing.T) {
		var ies []struct {
			File   string `json:"file"`
			Errors []struct {
				Msg string `json:"message"`
			} `json:"errors"`
		}
		getJSON(t, api+"/import-errors", &ies)
		broken := map[string]bool{}
		for _, ie := range ies {
			broken[filepath.Base(ie.File)] = true
		}
		for _, f := range []string{"dot.yaml", "dotdot.yaml", "leading.yaml", "doubled.yaml"} {
			if !broken[f] {
				t.Errorf("%s loaded; import errors: %+v", f, ies)
			}
		}
		for _, id := range []string{"good", "team.good"} {
			if r := triggerAndWait(t, api, id, nil); r != "success" {
				t.Errorf("%s: run %s, want success", id, r)
			}
		}
	})

	t.Run("secrets are masked in outputs and not inherited", func(t *testing.T) {
		run := trigger(t, api, "leak", nil)
		if r := waitRunState(t, api, "leak", run); r != "success" {
			t.Fatalf("leak: run %s", r)
		}
		body := getBody(t, api+"/dags/leak/runs/"+run+"/tasks")
		if strings.Contains(body, secret) || !strings.Contains(body, `"leak":"***"`) {
			t.Errorf("task instances show the secret, or not its mask: %s", body)
		}
		if log := getBody(t, api+"/dags/leak/runs/"+run+"/tasks/a/logs?try=1"); strings.Contains(log, secret) || !strings.Contains(log, "password is ***") {
			t.Errorf("log: %q", log)
		}
		run = trigger(t, api, "snoop", nil)
		if r := waitRunState(t, api, "snoop", run); r != "success" {
			t.Fatalf("snoop: run %s", r)
		}
		if log := getBody(t, api+"/dags/snoop/runs/"+run+"/tasks/a/logs?try=1"); strings.Contains(log, secret) || strings.Contains(log, "KILN_SECRET_") {
			t.Errorf("a task that names no secret saw the server's: %q", log)
		}
	})

	t.Run("params cannot inject shell commands", func(t *testing.T) {
		hostile := `"; touch ` + pwned + `; echo "` + "'; touch " + pwned + "; echo '"
		run := trigger(t, api, "inject", map[string]any{"name": hostile})
		if r := waitRunState(t, api, "inject", run); r != "success" {
			t.Fatalf("inject: run %s", r)
		}
		if _, err := os.Stat(pwned); err == nil {
			t.Fatal("the param's command ran")
		}
		for _, task := range []string{"quoted", "env"} {
			if log := getBody(t, api+"/dags/inject/runs/"+run+"/tasks/"+task+"/logs?try=1"); !strings.Contains(log, "hello "+hostile) {
				t.Errorf("%s log = %q, want the param printed as it is", task, log)
			}
		}
	})
}

func getBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(getBody(t, u)), v); err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
}

func trigger(t *testing.T, api, dagID string, params map[string]any) string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"params": params})
	resp, err := http.Post(api+"/dags/"+url.PathEscape(dagID)+"/runs", "application/json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var run struct {
		RunID string `json:"run_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("trigger %s: %d %v", dagID, resp.StatusCode, err)
	}
	return run.RunID
}

func waitRunState(t *testing.T, api, dagID, runID string) string {
	t.Helper()
	var run struct {
		State string `json:"state"`
	}
	waitUntil(t, fmt.Sprintf("run %s of %s to end", runID, dagID), 30*time.Second, func() bool {
		getJSON(t, api+"/dags/"+url.PathEscape(dagID)+"/runs/"+url.PathEscape(runID), &run)
		return run.State == "success" || run.State == "failed"
	})
	return run.State
}

func triggerAndWait(t *testing.T, api, dagID string, params map[string]any) string {
	t.Helper()
	return waitRunState(t, api, dagID, trigger(t, api, dagID, params))
}
