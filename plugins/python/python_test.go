package python

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
	"github.com/kilnhq/kiln/plugins/sdk"
)

// stream is the plugin's end of a Run call, as the SDK's server sees it.
type stream struct {
	grpc.ServerStream // nil: the server only calls Context and Send
	ctx               context.Context

	mu  sync.Mutex
	log bytes.Buffer
	res *stagepb.Result
}

func (s *stream) Context() context.Context { return s.ctx }

func (s *stream) Send(ev *stagepb.RunEvent) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := ev.GetResult(); r != nil {
		s.res = r
	}
	s.log.Write(ev.GetLog())
	return nil
}

// task is one try of the python stage for run.
type task struct {
	with string // JSON
	dir  string // working directory
	env  []string
}

// run runs the task through the SDK's server, as a worker would, and
// returns its log and result.
func run(ctx context.Context, t *testing.T, tk task) (string, *stagepb.Result) {
	t.Helper()
	log, res, err := serve(ctx, tk)
	if err != nil {
		t.Fatal(err)
	}
	return log, res
}

// serve is run for goroutines other than the test's.
func serve(ctx context.Context, tk task) (string, *stagepb.Result, error) {
	st := &stream{ctx: ctx}
	req := &stagepb.RunRequest{With: []byte(tk.with), Env: tk.env, WorkDir: tk.dir, TryKey: "d/r/t#1"}
	if err := sdk.NewServer(Stage{}).Run(req, st); err != nil {
		return "", nil, fmt.Errorf("Run: %w", err)
	}
	if st.res == nil {
		return "", nil, errors.New("Run sent no result")
	}
	return st.log.String(), st.res, nil
}

// baseEnv is a task's environment: this process's (for PATH and pip's
// settings), outputs going to a file of its own, environments to a folder
// of its own.
func baseEnv(t *testing.T) (env []string, output string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3 on PATH")
	}
	dir := t.TempDir()
	output = filepath.Join(dir, "output")
	if err := os.WriteFile(output, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(), "KILN_OUTPUT="+output, "KILN_PYTHON_ENVS="+filepath.Join(dir, "envs"))
	return env, output
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantSuccess(t *testing.T, log string, res *stagepb.Result) {
	t.Helper()
	if !res.GetSuccess() {
		t.Fatalf("try failed: %s\nlog:\n%s", res.GetError(), log)
	}
}

func TestCodeOutputs(t *testing.T) {
	t.Parallel()
	env, output := baseEnv(t)
	code := `import os, sys
print("hello from", sys.argv[1:])
print("unbuffered", os.environ["PYTHONUNBUFFERED"])
print("to stderr", file=sys.stderr)
with open(os.environ["KILN_OUTPUT"], "a") as f:
    f.write("greeting=hello\n")
`
	log, res := run(context.Background(), t, task{
		with: mustJSON(t, map[string]any{"code": code, "args": []any{"x", 1}}),
		env:  env,
	})
	wantSuccess(t, log, res)
	for _, want := range []string{"hello from ['x', '1']\n", "unbuffered 1\n", "to stderr\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	got, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "greeting=hello\n" {
		t.Errorf("$KILN_OUTPUT holds %q, want %q", got, "greeting=hello\n")
	}
}

func TestScriptWithArgs(t *testing.T) {
	t.Parallel()
	env, _ := baseEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "jobs", "job.py"), `import json, os, sys
print("args", json.dumps(sys.argv[1:]))
print("cwd", os.getcwd())
`)
	log, res := run(context.Background(), t, task{
		with: `{"script": "jobs/job.py", "args": ["--day", "2024-01-02", 7, 12345678901234567890, true]}`,
		dir:  dir,
		env:  env,
	})
	wantSuccess(t, log, res)
	for _, want := range []string{
		`args ["--day", "2024-01-02", "7", "12345678901234567890", "true"]`,
		"cwd " + dir + "\n",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestModuleFromWorkDir(t *testing.T) {
	t.Parallel()
	env, _ := baseEnv(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "etl", "__init__.py"), "")
	writeFile(t, filepath.Join(dir, "etl", "load.py"), `import sys
if __name__ == "__main__":
    print("loading", sys.argv[1:])
`)
	log, res := run(context.Background(), t, task{
		with: `{"module": "etl.load", "args": ["orders"]}`,
		dir:  dir,
		env:  env,
	})
	wantSuccess(t, log, res)
	if want := "loading ['orders']\n"; !strings.Contains(log, want) {
		t.Errorf("log lacks %q:\n%s", want, log)
	}
}

func TestExitCode(t *testing.T) {
	t.Parallel()
	env, _ := baseEnv(t)
	log, res := run(context.Background(), t, task{
		with: `{"code": "import sys; print('bad input'); sys.exit(3)"}`,
		env:  env,
	})
	if res.GetSuccess() || res.ExitCode == nil || res.GetExitCode() != 3 {
		t.Fatalf("result %v, want a failure with exit code 3", res)
	}
	if want := "python exited with status 3"; res.GetError() != want {
		t.Errorf("error %q, want %q", res.GetError(), want)
	}
	if !strings.Contains(log, "bad input\n") {
		t.Errorf("log lacks the script's output:\n%s", log)
	}
}

func TestFailsWithoutRunning(t *testing.T) {
	t.Parallel()
	env, _ := baseEnv(t)
	tests := []struct {
		name, with, wantErr string
	}{
		{"no source", `{"args": ["x"]}`, "one of code, script and module is required"},
		{"two sources", `{"code": "pass", "module": "m"}`, "not code and module"},
		{"unknown interpreter", `{"code": "pass", "python": "no-such-python-kiln"}`, "no-such-python-kiln not found in the task's PATH"},
		{"missing requirements", `{"code": "pass", "requirements": "nope.txt"}`, "reading requirements"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, res := run(context.Background(), t, task{with: tt.with, env: env, dir: t.TempDir()})
			if res.GetSuccess() || !strings.Contains(res.GetError(), tt.wantErr) {
				t.Errorf("result %v, want a failure containing %q", res, tt.wantErr)
			}
		})
	}
}

// TestCancelKillsGroup cancels a try whose script sleeps, as does a child
// it started: both must be gone when Run returns.
func TestCancelKillsGroup(t *testing.T) {
	t.Parallel()
	env, _ := baseEnv(t)
	pidsFile := filepath.Join(t.TempDir(), "pids")
	code := `import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
with open(os.environ["PIDS"] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.rename(os.environ["PIDS"] + ".tmp", os.environ["PIDS"])
time.sleep(60)
`
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type ran struct {
		log string
		res *stagepb.Result
		err error
	}
	done := make(chan ran, 1)
	tk := task{with: mustJSON(t, map[string]any{"code": code}), env: append(env, "PIDS="+pidsFile)}
	go func() {
		log, res, err := serve(ctx, tk)
		done <- ran{log, res, err}
	}()

	var pids []int
	for deadline := time.Now().Add(10 * time.Second); pids == nil; {
		if b, err := os.ReadFile(pidsFile); err == nil {
			for _, f := range strings.Fields(string(b)) {
				n, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("pids file %q: %v", b, err)
				}
				pids = append(pids, n)
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the script did not start in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	cancel()
	var r ran
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of the cancel")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Run returned %v after the cancel", took)
	}
	if r.res.GetSuccess() || !strings.Contains(r.res.GetError(), "cancelled") {
		t.Errorf("result %v, want a failure saying cancelled\nlog:\n%s", r.res, r.log)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still runs after the cancel", pid)
		}
	}
}

// alive reports whether pid is a live process, a zombie counting as dead.
func alive(pid int) bool {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	f := bytes.Fields(stat[i+1:])
	return len(f) > 0 && f[0][0] != 'Z' && f[0][0] != 'X'
}
