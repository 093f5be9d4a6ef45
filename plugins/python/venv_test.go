package python

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// showEnv prints what tells which environment the interpreter runs in.
const showEnv = `import os, shutil, sys
print("prefix", sys.prefix)
print("VIRTUAL_ENV", os.environ.get("VIRTUAL_ENV"))
print("which", shutil.which("python"))
`

var prefixLine = regexp.MustCompile(`(?m)^prefix (.*)$`)

// prefix returns the sys.prefix the task printed.
func prefix(t *testing.T, log string) string {
	t.Helper()
	m := prefixLine.FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no prefix in the log:\n%s", log)
	}
	return m[1]
}

func envOf(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// TestRequirements builds an environment from an empty requirements file,
// which pip installs nothing from, so it needs no network.
func TestRequirements(t *testing.T) {
	t.Parallel()
	env, _ := baseEnv(t)
	envs := envOf(env, "KILN_PYTHON_ENVS")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "requirements.lock"), "")
	tk := task{with: mustJSON(t, map[string]any{"code": showEnv, "requirements": "requirements.lock"}), dir: dir, env: env}

	// Two tries at once: one builds, the other waits and reuses.
	var wg sync.WaitGroup
	logs := make([]string, 2)
	results := make([]*stagepb.Result, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { logs[i], results[i], errs[i] = serve(context.Background(), tk) })
	}
	wg.Wait()
	built, reused := 0, 0
	for i := range 2 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		wantSuccess(t, logs[i], results[i])
		if strings.Contains(logs[i], " (built in ") {
			built++
		}
		if strings.Contains(logs[i], " (reused)") {
			reused++
		}
	}
	if built != 1 || reused != 1 {
		t.Errorf("%d tries built the environment and %d reused it, want 1 and 1; logs:\n%s\n---\n%s", built, reused, logs[0], logs[1])
	}
	venv := prefix(t, logs[0])
	if p := prefix(t, logs[1]); p != venv {
		t.Errorf("the tries ran in %s and %s, want one environment", venv, p)
	}
	if filepath.Dir(venv) != envs || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(filepath.Base(venv)) {
		t.Errorf("environment %s, want $KILN_PYTHON_ENVS/SHA256", venv)
	}
	for _, want := range []string{"VIRTUAL_ENV " + venv + "\n", "which " + filepath.Join(venv, "bin", "python") + "\n"} {
		if !strings.Contains(logs[0], want) {
			t.Errorf("log lacks %q:\n%s", want, logs[0])
		}
	}
	checkRelocated(t, venv)

	// Later tries reuse it.
	log, res := run(context.Background(), t, tk)
	wantSuccess(t, log, res)
	if !strings.Contains(log, "python env "+filepath.Base(venv)[:12]+" (reused)") {
		t.Errorf("log does not say the environment was reused:\n%s", log)
	}
	if p := prefix(t, log); p != venv {
		t.Errorf("ran in %s, want %s", p, venv)
	}

	// Another lock gets another environment.
	writeFile(t, filepath.Join(dir, "requirements.lock"), "# pinned again\n")
	log, res = run(context.Background(), t, tk)
	wantSuccess(t, log, res)
	if !strings.Contains(log, " (built in ") {
		t.Errorf("log does not say the environment was built:\n%s", log)
	}
	if p := prefix(t, log); p == venv || filepath.Dir(p) != envs {
		t.Errorf("ran in %s, want a new environment in %s", p, envs)
	}
	checkNoBuilds(t, envs)
}

// checkRelocated checks that nothing in the environment names the folder
// it was built in, and that pip's own script runs the final interpreter.
func checkRelocated(t *testing.T, venv string) {
	t.Helper()
	for _, name := range []string{"bin/pip", "bin/activate", "pyvenv.cfg"} {
		b, err := os.ReadFile(filepath.Join(venv, name))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), ".tmp-") {
			t.Errorf("%s names the build folder:\n%s", name, b)
		}
	}
	// pip's own script, run by the environment's interpreter.
	out, err := exec.Command(filepath.Join(venv, "bin", "pip"), "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("bin/pip --version: %v\n%s", err, out)
	}
	if want := filepath.Join(venv, "lib"); !strings.Contains(string(out), want) {
		t.Errorf("bin/pip --version says %q, want pip from %s", out, want)
	}
}

// checkNoBuilds checks that no build folder is left in envs.
func checkNoBuilds(t *testing.T, envs string) {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(envs, "*.tmp-*"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("build folders left behind: %v", left)
	}
}

func TestRequirementsBuildFails(t *testing.T) {
	t.Parallel()
	env, _ := baseEnv(t)
	envs := envOf(env, "KILN_PYTHON_ENVS")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "requirements.txt"), "not a valid requirement!!!\n")
	log, res := run(context.Background(), t, task{
		with: `{"code": "print('ran')", "requirements": "requirements.txt"}`,
		dir:  dir,
		env:  env,
	})
	if res.GetSuccess() || !strings.Contains(res.GetError(), "pip install: exit status 1") {
		t.Errorf("result %v, want a failure of pip install", res)
	}
	if !strings.Contains(log, "Invalid requirement") {
		t.Errorf("log lacks pip's error:\n%s", log)
	}
	if strings.Contains(log, "ran\n") {
		t.Errorf("the code ran without its environment:\n%s", log)
	}
	checkNoBuilds(t, envs)
	dirs, err := filepath.Glob(filepath.Join(envs, "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if isDir(d) {
			t.Errorf("a failed build left %s", d)
		}
	}
}
