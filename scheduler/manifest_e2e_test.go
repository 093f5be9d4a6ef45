package scheduler_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// TestE2EManifests runs a shell task, a python task with requirements and
// a task of an external plugin (the crash test plugin, its own binary) on
// the real plugin processes, and checks that every field of each try's
// manifest is there, with the binaries' real hashes, and that the secret
// the tasks use appears in no stored try.
func TestE2EManifests(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	const secret = "manifest-secret-4b1d"
	t.Setenv("KILN_SECRET_token", secret)
	t.Setenv("KILN_PYTHON_ENVS", t.TempDir())
	reqs := filepath.Join(t.TempDir(), "requirements.lock")
	if err := os.WriteFile(reqs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e := start(t, map[string]string{"man": strings.ReplaceAll(`
params: {n: {type: integer, default: 3}}
env: {TOKEN: "{{ .secrets.token }}"}
tasks:
  - id: count
    plugin: shell
    with: {command: 'echo "rows={{ .params.n }}" >> $KILN_OUTPUT; echo "token $TOKEN"'}
  - id: py
    plugin: python
    depends_on: [count]
    when: int(outputs.count.rows) > 0
    with:
      code: print("rows {{ .outputs.count.rows }} with {{ .env.TOKEN }}")
      requirements: REQS
  - id: ext
    plugin: crashy
    depends_on: [count]
    with: {panic: false}
`, "REQS", reqs)}, options{workers: 1})
	r := e.waitRun(e.trigger("man", map[string]any{"n": 5}), 120*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run %s: %v\npy: %s", r.State, e.taskStates(r), e.log(r, "py", 1))
	}
	kilnSum, crashSum := fileSHA256(t, kilnBin), fileSHA256(t, crashBin)
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	host, _ := os.Hostname()

	tests := []struct {
		task, plugin, version, sha256 string
		with                          map[string]any
		when                          *store.WhenResult
		read                          map[string]map[string]any
	}{
		{task: "count", plugin: "shell", version: "0.1.0", sha256: kilnSum,
			with: map[string]any{"command": `echo "rows=5" >> $KILN_OUTPUT; echo "token $TOKEN"`},
			read: map[string]map[string]any{}},
		{task: "py", plugin: "python", version: "0.1.0", sha256: kilnSum,
			with: map[string]any{"code": "print(\"rows 5 with ***\")", "requirements": reqs},
			when: &store.WhenResult{Expr: "int(outputs.count.rows) > 0", Result: true},
			read: map[string]map[string]any{"count": {"rows": "5"}}},
		{task: "ext", plugin: "crashy", version: "test", sha256: crashSum,
			with: map[string]any{"panic": false},
			read: map[string]map[string]any{}},
	}
	for _, tt := range tests {
		tr, err := e.st.GetTry("man", r.RunID, tt.task, 1)
		if err != nil {
			t.Fatal(err)
		}
		m := tr.Manifest
		if m == nil {
			t.Errorf("%s: no manifest", tt.task)
			continue
		}
		check := func(field string, ok bool, got any) {
			if !ok {
				t.Errorf("%s: manifest %s = %v", tt.task, field, got)
			}
		}
		check("dag_version", m.DAGVersion == r.DAGHash && hex64.MatchString(m.DAGVersion), m.DAGVersion)
		check("kiln_version", m.KilnVersion != "", m.KilnVersion)
		check("with", jsonEqual(m.With, tt.with), m.With)
		check("env", strings.Join(m.Env, ",") == "TOKEN", m.Env)
		check("when", jsonEqual(m.When, tt.when), m.When)
		check("params", jsonEqual(m.Params, map[string]any{"n": 5}), m.Params)
		check("outputs_read", jsonEqual(m.OutputsRead, tt.read), m.OutputsRead)
		check("plugin", m.Plugin.Name == tt.plugin && m.Plugin.Version == tt.version && m.Plugin.SHA256 == tt.sha256, m.Plugin)
		check("worker", m.Worker != nil && m.Worker.ID == "w0" && m.Worker.Host == host && m.Worker.KilnVersion != "", m.Worker)
		if tt.plugin == "python" {
			f := m.Plugin.Facts
			check("plugin.facts", regexp.MustCompile(`^3\.\d+\.\d+`).MatchString(f["python_version"]) &&
				hex64.MatchString(f["env_key"]) && filepath.IsAbs(f["python"]), f)
		}
		b, _ := json.Marshal(tr)
		if strings.Contains(string(b), secret) {
			t.Errorf("%s: the stored try holds the secret: %s", tt.task, b)
		}
	}
	if log := e.log(r, "count", 1); !strings.HasPrefix(log, `kiln: running: echo "rows=5" >> $KILN_OUTPUT; echo "token $TOKEN"`+"\n") || strings.Contains(log, secret) {
		t.Errorf("count's log: %q", log)
	}
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// jsonEqual compares two values as their JSON.
func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
