package ui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
)

// TestWorkersPage: the workers page lists the worker with the try it runs,
// linking to its log, and warns of a queue whose task waits with no worker
// pulling it; the health page says the scheduler's role and sums up the
// workers, with the same warning. Both pages' live blocks are fragments.
func TestWorkersPage(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t, gatedDAG)
	gate := k.Gate("held")
	run := trigger(t, k, "held", "", nil).RunID
	if err := k.SetPool(t.Context(), "gpu", 1); err != nil {
		t.Fatal(err)
	}
	churn := trigger(t, k, "churn", "", nil).RunID
	k.WaitTask("churn", churn, "train", store.TaskQueued)
	held := "/dags/held/runs/" + run + "/tasks/wait/logs?try=1"
	k.WaitFor("the worker to list the held try alone", func() bool {
		d := getPage(t, srv.URL+"/workers", "workers-body").want(t, http.StatusOK)
		links := d.all("tr[data-worker=w1] .worker-running a")
		return len(links) == 1 && links[0].attr("href") == held
	})

	d := getPage(t, srv.URL+"/workers").want(t, http.StatusOK)
	if nav := d.one("header nav a.on"); nav.attr("href") != "/workers" {
		t.Errorf("nav marks %s, want /workers", nav.attr("href"))
	}
	w1 := d.one("[data-live=workers-body] table#workers tr[data-worker=w1]")
	if got := w1.attr("data-state"); got != "alive" {
		t.Errorf("w1 state %q, want alive", got)
	}
	for sel, want := range map[string]string{".used": "1", ".worker-queues": "default", ".worker-state": "alive"} {
		if got := strings.TrimSpace(w1.one(sel).text()); got != want {
			t.Errorf("w1 %s = %q, want %q", sel, got, want)
		}
	}
	link := w1.one(".worker-running a")
	if link.attr("href") != held {
		t.Errorf("running try links to %s, want %s", link.attr("href"), held)
	}
	warn := d.one("p.no-worker")
	if warn.attr("data-queue") != "gpu" || !strings.Contains(warn.text(), "kiln worker --queue gpu") {
		t.Errorf("warning %q for queue %q, want one for gpu saying how to start a worker", warn.text(), warn.attr("data-queue"))
	}
	gpu := d.one("table#queues tr[data-queue=gpu]")
	if gpu.one(".queue-queued").text() != "1" || gpu.one(".queue-wait").text() == "" || !strings.Contains(gpu.one(".queue-workers").text(), "none") {
		t.Errorf("queue gpu row %q: want 1 queued, its wait, no worker", gpu.text())
	}
	if got := d.one("table#queues tr[data-queue=default] .queue-workers").text(); got != "w1" {
		t.Errorf("default queue workers %q, want w1", got)
	}

	h := getPage(t, srv.URL+"/health", "health-status").want(t, http.StatusOK)
	if got := h.one("#scheduler-role").text(); got != "Scheduler: leader" {
		t.Errorf("scheduler role %q, want leader", got)
	}
	if got := h.one("#workers-summary").text(); got != "Workers: 1 alive." {
		t.Errorf("workers summary %q", got)
	}
	if got := h.one("p.no-worker").attr("data-queue"); got != "gpu" {
		t.Errorf("health warns of queue %q, want gpu", got)
	}

	gate.Open()
	k.WaitRun("held", run, store.RunSuccess)
}
