package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// apiWorker is a worker as GET /api/v1/workers answers it.
type apiWorker struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Draining  bool   `json:"draining"`
	SlotsUsed int    `json:"slots_used"`
	Running   []struct {
		DAGID string `json:"dag_id"`
		RunID string `json:"run_id"`
	} `json:"running"`
}

// TestWorkerDrainsOnSIGTERM runs a `kiln worker` process against `kiln
// standalone` (with no worker of its own) and stops it with SIGTERM while a
// task runs: the API shows the worker draining at once, the worker takes
// no new task, the running one finishes and succeeds, and then the worker
// exits and leaves the list.
func TestWorkerDrainsOnSIGTERM(t *testing.T) {
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	dags, data := filepath.Join(dir, "dags"), filepath.Join(dir, "data")
	writeFiles(t, dags, map[string]string{
		"held.yaml": `
id: held
tasks:
  - {id: wait, plugin: shell, with: {command: "while [ ! -e ` + release + ` ]; do sleep 0.02; done; echo released"}}
`,
		"later.yaml": `
id: later
tasks:
  - {id: quick, plugin: shell, with: {command: "true"}}
`})
	addr, natsAddr := freeAddr(t), freeAddr(t)
	startKiln(t, "standalone", "--dags", dags, "--data", data, "--addr", addr, "--nats-listen", natsAddr, "--workers", "0")
	api := "http://" + addr + "/api/v1"
	waitHTTP(t, "http://"+addr+"/healthz")

	w := startKiln(t, "worker", "--nats", "nats://"+natsAddr, "--nats-nkey", filepath.Join(data, "nats", "worker.nk"),
		"--name", "drainer", "--slots", "2", "--data", filepath.Join(dir, "work"))
	drainer := func() *apiWorker {
		t.Helper()
		var ws []apiWorker
		getJSON(t, api+"/workers", &ws)
		for i := range ws {
			if ws[i].Name == "drainer" {
				return &ws[i]
			}
		}
		return nil
	}
	held := triggerAt(t, api+"/dags/held/runs")
	waitFor(t, "the worker to run the held task", func() bool {
		d := drainer()
		return d != nil && d.SlotsUsed == 1 && len(d.Running) == 1 && d.Running[0].RunID == held
	})

	if err := w.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Written at once, not at the next heartbeat.
	signalled := time.Now()
	waitFor(t, "the worker to show as draining", func() bool { d := drainer(); return d != nil && d.Draining })
	if took := time.Since(signalled); took > 3*time.Second {
		t.Errorf("the worker showed as draining %v after SIGTERM, want at once", took)
	}
	if d := drainer(); d.State != "alive" || d.SlotsUsed != 1 {
		t.Errorf("draining worker %+v, want alive and still running the held task", d)
	}
	later := triggerAt(t, api+"/dags/later/runs")
	if got := runStateAt(t, api+"/dags/held/runs/"+held); got != "running" {
		t.Errorf("the held run is %s while its worker drains, want running", got)
	}

	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the held run to succeed", func() bool { return runStateAt(t, api+"/dags/held/runs/"+held) == "success" })
	if err := w.wait(); err != nil {
		t.Fatalf("kiln worker after SIGTERM: %v\n%s", err, w.out.String())
	}
	waitFor(t, "the stopped worker to leave the list", func() bool { return drainer() == nil })
	if out := w.out.String(); !strings.Contains(out, "letting running tasks finish") {
		t.Errorf("the worker did not say it lets its task finish:\n%s", out)
	}

	// The later task waited in its queue for the next worker.
	startKiln(t, "worker", "--nats", "nats://"+natsAddr, "--nats-nkey", filepath.Join(data, "nats", "worker.nk"),
		"--name", "next", "--data", filepath.Join(dir, "work"))
	waitFor(t, "the later run to succeed", func() bool { return runStateAt(t, api+"/dags/later/runs/"+later) == "success" })
	if ws := taskWorkers(t, api+"/dags/later/runs/"+later+"/tasks"); ws["quick"] != "next" {
		t.Errorf("the later task ran on %q, want the next worker: the draining one must not take it", ws["quick"])
	}
}
