package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// TestWorkersList: `kiln workers list` shows the installation's worker,
// alive, and warns of a queue whose task waits with no worker pulling it;
// with --json it prints the workers only.
func TestWorkersList(t *testing.T) {
	e := newCLIEnv(t, `
id: gpu
tasks: [{id: train, plugin: shell, queue: gpu, with: {command: "true"}}]
`)
	r := e.trigger("gpu", "2026-03-01T00:00:00Z", nil)
	e.k.WaitTask("gpu", r.RunID, "train", store.TaskQueued)
	e.k.WaitFor("the worker's entry", func() bool { return len(e.k.Workers()) == 1 })

	stdout, stderr, code := e.run("workers", "list", "--json")
	var ws []ui.Worker
	if err := json.Unmarshal([]byte(stdout), &ws); code != 0 || err != nil || stderr != "" {
		t.Fatalf("list --json: exit %d, %v, stdout %q, stderr %q", code, err, stdout, stderr)
	}
	if len(ws) != 1 || ws[0].Name != "w1" || ws[0].State != "alive" || ws[0].Slots != 8 {
		t.Errorf("workers %+v, want w1 alive with 8 slots", ws)
	}

	stdout, stderr, code = e.run("workers", "list")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 2 {
		t.Fatalf("list: exit %d, stdout %q", code, stdout)
	}
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "WORKER STATE QUEUES SLOTS RUNNING HEARTBEAT HOST VERSION" {
		t.Errorf("header %q", lines[0])
	}
	if got := strings.Fields(lines[1]); len(got) < 5 || strings.Join(got[:5], " ") != "w1 alive default 0/8 -" {
		t.Errorf("row %q, want w1 alive on default, 0 of 8 slots used, running nothing", lines[1])
	}
	if !strings.Contains(stderr, "queue gpu: 1 queued") || !strings.Contains(stderr, "kiln worker --queue gpu") {
		t.Errorf("stderr %q, want a warning that queue gpu has no worker", stderr)
	}
	if strings.Contains(stderr, "queue default") {
		t.Errorf("stderr %q warns of the default queue, which w1 pulls", stderr)
	}
}
