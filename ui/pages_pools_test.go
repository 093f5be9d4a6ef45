package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
)

// gpuDAG's tasks take slots of the gpu pool: train (2 slots) holds at its
// gate, report (1) waits in a queue no worker pulls, and extract (1) comes
// last. It runs one run at a time.
const gpuDAG = `
id: churn
max_active_runs: 1
tasks:
  - {id: train, plugin: shell, pool: gpu, pool_slots: 2, with: {command: "read gate < gates/train"}}
  - {id: report, plugin: shell, pool: gpu, queue: nowhere, with: {command: "true"}}
  - {id: extract, plugin: shell, pool: gpu, with: {command: "true"}}
`

func TestPoolsPage(t *testing.T) {
	t.Parallel()
	k, srv := newAPI(t)
	k.WriteDAG("churn.yaml", gpuDAG)
	k.WriteDAG("ghost.yaml", `
id: ghost
tasks: [{id: haunt, plugin: shell, with: {command: "true"}, pool: spooky}]
`)
	k.Gate("train")
	if err := k.SetPool(t.Context(), "gpu", 3); err != nil {
		t.Fatal(err)
	}
	if err := k.SetPool(t.Context(), "idle", 4); err != nil {
		t.Fatal(err)
	}
	// A running run takes gpu slots: train runs (2 slots), report is
	// queued (1) and extract waits for room (1). A queued run takes none.
	run := trigger(t, k, "churn", "", nil)
	k.WaitTask("churn", run.RunID, "train", store.TaskRunning)
	k.WaitTask("churn", run.RunID, "report", store.TaskQueued)
	trigger(t, k, "churn", "", nil)

	d := getPage(t, srv.URL+"/pools").want(t, http.StatusOK)
	d.one("[data-live=pools-table] table#pools")
	var names []string
	for _, tr := range d.all("table#pools tbody tr[data-pool]") {
		names = append(names, tr.attr("data-pool"))
	}
	if got := strings.Join(names, " "); got != "default_pool gpu idle spooky" {
		t.Errorf("pools = %s", got)
	}
	gpu := d.one("table#pools tr[data-pool=gpu]")
	for sel, want := range map[string]string{".pool-slots": "3", ".pool-running": "2", ".pool-queued": "1", ".pool-waiting": "1", ".used": "3"} {
		if got := gpu.one(sel).text(); got != want {
			t.Errorf("gpu %s = %q, want %q", sel, got, want)
		}
	}
	gpu.one(".usage.full")
	if got := gpu.one(".pool-description").text(); !strings.Contains(got, "Used by 3 tasks") {
		t.Errorf("gpu's description = %q", got)
	}
	if got := d.one("tr[data-pool=default_pool] .pool-description").text(); !strings.Contains(got, "Tasks that set no pool take their slots here") {
		t.Errorf("default_pool's description = %q", got)
	}
	ghost := d.one("table#pools tr.undefined[data-pool=spooky]")
	if got := ghost.one(".pool-slots").text(); got != "0" {
		t.Errorf("a pool never created has %s slots", got)
	}

	// Admin forms: set slots on every created pool, delete all but
	// default_pool.
	form := gpu.one("form.pool-form")
	if form.attr("action") != "/pools/gpu" || form.attr("method") != "post" {
		t.Errorf("gpu's form: %s %s", form.attr("method"), form.attr("action"))
	}
	if len(d.all("tr[data-pool=default_pool] form.pool-delete")) != 0 {
		t.Error("default_pool can be deleted from the page")
	}
	v := form.formValues()
	if v.Get("slots") != "3" || !v.Has("csrf") {
		t.Errorf("gpu's form sends %v", v)
	}
	v.Set("slots", "5")
	if p := postForm(t, srv.URL+"/pools/gpu", v); p.status != http.StatusSeeOther || p.location != "/pools" {
		t.Fatalf("set slots: %d to %q; %s", p.status, p.location, p.body)
	}
	if p, _ := k.Store().GetPool("gpu"); p.Slots != 5 {
		t.Errorf("gpu has %d slots, want 5", p.Slots)
	}
	newPool := d.one("form#pool-new")
	v = newPool.formValues()
	v.Set("name", "spooky")
	v.Set("slots", "3")
	if p := postForm(t, srv.URL+newPool.attr("action"), v); p.status != http.StatusSeeOther {
		t.Fatalf("create: %d; %s", p.status, p.body)
	}
	if p, err := k.Store().GetPool("spooky"); err != nil || p.Slots != 3 {
		t.Errorf("spooky = %+v (%v), want 3 slots", p, err)
	}
	del := d.one("tr[data-pool=idle] form.pool-delete")
	if del.attr("data-confirm") == "" || del.attr("action") != "/pools/idle/delete" {
		t.Errorf("idle's delete form: %v", del.n.Attr)
	}
	if p := postForm(t, srv.URL+del.attr("action"), del.formValues()); p.status != http.StatusSeeOther {
		t.Fatalf("delete: %d; %s", p.status, p.body)
	}
	if _, err := k.Store().GetPool("idle"); err == nil {
		t.Error("idle still exists after its delete")
	}

	for _, tc := range []struct {
		path   string
		form   url.Values
		status int
	}{
		{"/pools/gpu", url.Values{"slots": {"-1"}}, 400},
		{"/pools/gpu", url.Values{"slots": {"many"}}, 400},
		{"/pools", url.Values{"name": {" "}, "slots": {"1"}}, 400},
		{"/pools/default_pool/delete", nil, 400},
		{"/pools/nope/delete", nil, 404},
	} {
		if p := postForm(t, srv.URL+tc.path, tc.form); p.status != tc.status {
			t.Errorf("POST %s %v: %d, want %d", tc.path, tc.form, p.status, tc.status)
		}
	}
}
