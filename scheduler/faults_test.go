package scheduler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kilnhq/kiln/store"
)

// startProcess runs kiln with args in its own process group, killed with
// the whole group when the test ends; its output is shown if the test fails.
func startProcess(t *testing.T, dir string, args ...string) *osexec.Cmd {
	t.Helper()
	return startBinary(t, kilnBin, dir, args...)
}

// startBinary runs a build of kiln, bin, in its own process group, killed
// when the test ends; its output is logged if the test failed.
func startBinary(t *testing.T, bin, dir string, args ...string) *osexec.Cmd {
	t.Helper()
	cmd := osexec.Command(bin, args...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("kiln %s output:\n%s", args[0], out.String())
		}
	})
	return cmd
}

// startWorkerProcess runs a real `kiln worker` process.
func startWorkerProcess(t *testing.T, natsURL, name, workDir string) *osexec.Cmd {
	t.Helper()
	return startProcess(t, workDir, "worker", "--nats", natsURL, "--name", name, "--slots", "2", "--data", filepath.Join(workDir, name))
}

// TestWorkerKilledMidTask kills the worker running a task with SIGKILL: the
// try fails once heartbeat_timeout passes, the retry runs on the other
// worker, the run succeeds and nothing is recorded twice.
func TestWorkerKilledMidTask(t *testing.T) {
	executions := filepath.Join(t.TempDir(), "executions")
	e := start(t, map[string]string{"victim": fmt.Sprintf(`
tasks:
  - id: long
    plugin: shell
    retries: 1
    retry_delay: 100ms
    with: {command: 'echo "$KILN_TRY_NUMBER" >> %s; sleep 2'}
`, executions)}, options{heartbeatTimeout: 2 * time.Second})
	workers := map[string]*osexec.Cmd{
		"wA": startWorkerProcess(t, e.ns.ClientURL(), "wA", e.dir),
		"wB": startWorkerProcess(t, e.ns.ClientURL(), "wB", e.dir),
	}
	r := e.trigger("victim", nil)
	var victim string
	e.waitFor("the task to start", 20*time.Second, func() bool {
		ti, err := e.st.GetTaskInstance("victim", r.RunID, "long")
		if err == nil && ti.State == store.TaskRunning {
			victim = ti.Worker
		}
		return victim != ""
	})
	e.waitFor("try 1 to execute", 10*time.Second, func() bool {
		data, _ := os.ReadFile(executions)
		return len(data) > 0
	})
	killed := time.Now()
	if err := syscall.Kill(-workers[victim].Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	r = e.waitRun(r, 30*time.Second)
	if r.State != store.RunSuccess {
		t.Fatalf("run = %s, want success", r.State)
	}
	tries, err := e.st.Tries("victim", r.RunID, "long")
	if err != nil || len(tries) != 2 {
		t.Fatalf("tries = %d (%v), want exactly 2", len(tries), err)
	}
	if tries[0].State != store.TaskFailed || !strings.Contains(tries[0].Error, "heartbeat") || tries[0].Worker != victim {
		t.Errorf("try 1 = %+v, want failed by %s for a missing heartbeat", tries[0], victim)
	}
	if tries[1].State != store.TaskSuccess || tries[1].Worker == victim {
		t.Errorf("try 2 = %+v, want success on the other worker", tries[1])
	}
	if failedAt := tries[0].EndDate.Sub(killed); failedAt < 1500*time.Millisecond || failedAt > 6*time.Second {
		t.Errorf("try 1 failed %s after the kill, want about the 2s heartbeat timeout", failedAt)
	}
	execs, _ := os.ReadFile(executions)
	if got := strings.Fields(string(execs)); strings.Join(got, " ") != "1 2" {
		t.Errorf("executions = %q, want try 1 then try 2, once each", got)
	}
}

// TestStandaloneKilledAndRestarted kills `kiln standalone` with SIGKILL in
// the middle of a run and restarts it on the same data folder: the run
// finishes and no task runs more than once per try.
func TestStandaloneKilledAndRestarted(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	var b strings.Builder
	b.WriteString("id: chain\ndefaults: {plugin: shell, retries: 3, retry_delay: 100ms}\ntasks:\n")
	for i := range 8 {
		fmt.Fprintf(&b, "  - id: s%d\n    with: {command: 'echo \"$KILN_TASK_ID $KILN_TRY_NUMBER\" >> %s; sleep 0.4'}\n", i, filepath.Join(dir, "executions"))
		if i > 0 {
			fmt.Fprintf(&b, "    depends_on: [s%d]\n", i-1)
		}
	}
	if err := os.MkdirAll(dags, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dags, "chain.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, natsAddr := freeAddr(t), freeAddr(t)
	standalone := func() *osexec.Cmd {
		return startProcess(t, dir, "standalone", "--dags", dags, "--data", filepath.Join(dir, "data"), "--addr", addr,
			"--nats-listen", natsAddr, "--workers", "1", "--slots", "4", "--heartbeat-timeout", "2s", "--log-level", "warn")
	}
	api := "http://" + addr + "/api/v1"
	first := standalone()
	waitHTTP(t, "http://"+addr+"/healthz")
	var run struct {
		RunID string `json:"run_id"`
		State string `json:"state"`
	}
	resp, err := http.Post(api+"/dags/chain/runs", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("trigger: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	waitUntil(t, "three tasks to run", 20*time.Second, func() bool {
		data, _ := os.ReadFile(filepath.Join(dir, "executions"))
		return strings.Count(string(data), "\n") >= 3
	})
	// SIGKILL the whole process group: the server, its workers, plugins and tasks.
	if err := syscall.Kill(-first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	standalone()
	waitHTTP(t, "http://"+addr+"/healthz")
	waitUntil(t, "the run to succeed after the restart", 60*time.Second, func() bool {
		resp, err := http.Get(api + "/dags/chain/runs/" + run.RunID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&run)
		if run.State == "failed" {
			t.Fatalf("run failed after the restart")
		}
		return run.State == "success"
	})
	data, _ := os.ReadFile(filepath.Join(dir, "executions"))
	execs := lines(string(data))
	sort.Strings(execs)
	seen := map[string]bool{}
	tasks := map[string]bool{}
	for _, l := range execs {
		if seen[l] {
			t.Errorf("%q ran twice: executions %v", l, execs)
		}
		seen[l] = true
		tasks[strings.Fields(l)[0]] = true
	}
	if len(tasks) != 8 {
		t.Errorf("tasks that ran: %v, want all 8", tasks)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	waitUntil(t, url+" to answer 200", 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestStandaloneKilledDuringCallback kills `kiln standalone` while a task's
// on_success callback runs: after the restart the callback is taken up
// again and, its worker being gone, recorded as failed with the reason in
// its log, instead of staying "running" for ever.
func TestStandaloneKilledDuringCallback(t *testing.T) {
	dir := t.TempDir()
	dags := filepath.Join(dir, "dags")
	marker := filepath.Join(dir, "callback-started")
	writeFile(t, filepath.Join(dags, "cb.yaml"), fmt.Sprintf(`
id: cb
tasks:
  - id: ok
    plugin: shell
    with: {command: "true"}
    on_success: [{plugin: shell, with: {command: "touch %s; sleep 60"}}]
`, marker))
	addr, natsAddr := freeAddr(t), freeAddr(t)
	standalone := func() *osexec.Cmd {
		return startProcess(t, dir, "standalone", "--dags", dags, "--data", filepath.Join(dir, "data"), "--addr", addr,
			"--nats-listen", natsAddr, "--workers", "1", "--heartbeat-timeout", "2s", "--log-level", "warn")
	}
	api := "http://" + addr + "/api/v1"
	first := standalone()
	waitHTTP(t, "http://"+addr+"/healthz")
	resp, err := http.Post(api+"/dags/cb/runs", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var run struct {
		RunID string `json:"run_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("trigger: %d %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	waitUntil(t, "the callback to start", 20*time.Second, func() bool {
		_, err := os.Stat(marker)
		return err == nil
	})
	if err := syscall.Kill(-first.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	standalone()
	waitHTTP(t, "http://"+addr+"/healthz")
	logURL := api + "/dags/cb/runs/" + run.RunID + "/tasks/ok.on_success.1/logs?try=1"
	var log string
	waitUntil(t, "the callback to be failed after the restart", 30*time.Second, func() bool {
		resp, err := http.Get(logURL)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		log = string(b)
		return strings.Contains(log, "stopped sending heartbeats")
	})
	t.Logf("callback log after the restart: %q", log)
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
