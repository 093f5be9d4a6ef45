package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kilnhq/kiln/internal/tlstest"
)

// TestStandaloneNATSNeedsCredentials runs `kiln standalone` with its NATS
// on loopback over TLS: it creates the NKeys at first start, 0600 in
// DATA/nats, and says where the workers' is; a client without a key is
// refused; an extra `kiln worker` with that key and the CA runs the tasks
// of its queue while the in-process worker runs the others; after a
// restart the same keys are in force and the same worker goes on working.
func TestStandaloneNATSNeedsCredentials(t *testing.T) {
	dir := t.TempDir()
	certs := tlstest.Write(t, dir)
	dags, data := filepath.Join(dir, "dags"), filepath.Join(dir, "data")
	writeFiles(t, dags, map[string]string{"hello.yaml": `
id: hello
tasks:
  - {id: here, plugin: shell, with: {command: "echo in-process"}}
  - {id: there, plugin: shell, queue: extra, with: {command: "echo extra"}, depends_on: [here]}
`})
	addr, natsAddr := freeAddr(t), freeAddr(t)
	standalone := func() *kilnProc {
		return startKiln(t, "standalone", "--dags", dags, "--data", data, "--addr", addr, "--nats-listen", natsAddr,
			"--nats-tls-cert", certs.Cert, "--nats-tls-key", certs.Key, "--workers", "1", "--log-level", "info")
	}
	first := standalone()
	waitHTTP(t, "http://"+addr+"/healthz")

	workerSeed := filepath.Join(data, "nats", "worker.nk")
	waitFor(t, "standalone to say where the workers' key is", func() bool { return strings.Contains(first.out.String(), "--nats-nkey "+workerSeed) })
	seeds := map[string][]byte{}
	for _, name := range []string{"scheduler.nk", "worker.nk"} {
		path := filepath.Join(data, "nats", name)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, st.Mode().Perm())
		}
		seeds[path], _ = os.ReadFile(path)
	}

	url := "tls://" + natsAddr
	if nc, err := nats.Connect(url, nats.RootCAs(certs.CA)); !errors.Is(err, nats.ErrAuthorization) {
		if nc != nil {
			nc.Close()
		}
		t.Errorf("connecting without a key: %v, want an authorization error", err)
	}
	nkey, err := nats.NkeyOptionFromSeed(workerSeed)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect("nats://"+natsAddr, nkey); err == nil {
		nc.Close()
		t.Error("connecting without TLS succeeded")
	}

	startKiln(t, "worker", "--nats", url, "--nats-tls-ca", certs.CA, "--nats-nkey", workerSeed,
		"--name", "extra", "--queue", "extra", "--data", filepath.Join(dir, "work"))
	api := "http://" + addr + "/api/v1/dags/hello/runs"
	checkRun := func(runID string) {
		t.Helper()
		waitFor(t, "run "+runID+" to succeed", func() bool { return runStateAt(t, api+"/"+runID) == "success" })
		workers := taskWorkers(t, api+"/"+runID+"/tasks")
		if workers["there"] != "extra" || workers["here"] == "" || workers["here"] == "extra" {
			t.Errorf("task workers = %v, want here on the in-process worker and there on extra", workers)
		}
	}
	checkRun(triggerAt(t, api))

	if err := first.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := first.wait(); err != nil {
		t.Fatalf("standalone after SIGTERM: %v\n%s", err, first.out.String())
	}
	standalone()
	waitHTTP(t, "http://"+addr+"/healthz")
	for path, seed := range seeds {
		if now, _ := os.ReadFile(path); !bytes.Equal(now, seed) {
			t.Errorf("%s changed across a restart", path)
		}
	}
	checkRun(triggerAt(t, api))
}

// TestStandaloneNATSListenBeyondLoopback: the embedded NATS listens beyond
// loopback only with a TLS certificate, and the refusal says how.
func TestStandaloneNATSListenBeyondLoopback(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"no certificate", []string{"--nats-listen", "0.0.0.0:4222"},
			[]string{"--nats-listen 0.0.0.0:4222 is not a loopback address", "--nats-tls-cert FILE --nats-tls-key FILE", "127.0.0.1"}},
		{"every interface", []string{"--nats-listen", ":4222"}, []string{"is not a loopback address"}},
		{"a certificate without its key", []string{"--nats-tls-cert", filepath.Join(dir, "c.pem")}, []string{"--nats-tls-cert and --nats-tls-key go together"}},
		{"a bad address", []string{"--nats-listen", "4222"}, []string{`--nats-listen "4222"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(dir, tc.name)
			args := append([]string{"standalone", "--dags", dir, "--data", data, "--addr", "127.0.0.1:0"}, tc.args...)
			_, stderr, code := runKiln(t, args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr %q", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr = %q, want it to mention %q", stderr, w)
				}
			}
			if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data folder was created (%v): the check must come before anything starts", err)
			}
		})
	}
}

// kilnProc is a kiln process a test started.
type kilnProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan error
}

// wait waits for the process to exit, and returns how it did.
func (p *kilnProc) wait() error {
	err := <-p.exited
	p.exited <- err
	return err
}

// startKiln starts kiln in its own process group, killed with the group
// when the test ends; its output is shown if the test failed.
func startKiln(t *testing.T, args ...string) *kilnProc {
	t.Helper()
	p := &kilnProc{cmd: exec.Command(kilnBin, args...), out: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd.Env = kilnEnv()
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = p.wait()
		if t.Failed() {
			t.Logf("kiln %s:\n%s", strings.Join(args, " "), p.out.String())
		}
	})
	return p
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

// waitFor polls cond until it holds, failing the test after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	waitFor(t, url+" to answer 200", func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// getJSON decodes the answer to a GET of url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// triggerAt creates a manual run through the runs URL of a DAG and returns
// its id.
func triggerAt(t *testing.T, runs string) string {
	t.Helper()
	resp, err := http.Post(runs, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var run struct {
		RunID string `json:"run_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&run); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("trigger: %s %v", resp.Status, err)
	}
	return run.RunID
}

func runStateAt(t *testing.T, run string) string {
	t.Helper()
	var r struct {
		State string `json:"state"`
	}
	getJSON(t, run, &r)
	if r.State == "failed" {
		t.Fatalf("run %s failed", run)
	}
	return r.State
}

// taskWorkers maps each task of a run to the worker that ran it.
func taskWorkers(t *testing.T, tasks string) map[string]string {
	t.Helper()
	var tis []struct {
		TaskID string `json:"task_id"`
		Worker string `json:"worker"`
	}
	getJSON(t, tasks, &tis)
	out := map[string]string{}
	for _, ti := range tis {
		out[ti.TaskID] = ti.Worker
	}
	return out
}
