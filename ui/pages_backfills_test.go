package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// newBackfillPages is a pageClient of a Kiln with backfillDAG, whose days
// of January 2026 can be backfilled, and adhoc.
func newBackfillPages(t *testing.T) *pageClient {
	t.Helper()
	k := kilntest.New(t, backfillDAG, manualDAG)
	return &pageClient{t: t, k: k, srv: serveAPI(t, k, ui.Options{})}
}

func backfillForm(changes map[string]string) url.Values {
	f := url.Values{
		"csrf": {""}, "from": {"2026-01-01"}, "to": {"2026-01-05"}, "reprocess": {"none"},
		"max_active_runs": {"2"}, "param.region": {"eu"}, "param.sample_frac": {"1"},
	}
	for k, v := range changes {
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
	}
	return f
}

func TestBackfillTab(t *testing.T) {
	t.Parallel()
	pc := newBackfillPages(t)
	p := pc.get("/dags/churn/backfill")
	p.wantStatus(t, http.StatusOK)
	form := p.has(t, "form", "id=backfill-form")
	if form["method"] != "post" || form["action"] != "/dags/churn/backfill" {
		t.Errorf("form = %v", form)
	}
	p.has(t, "input", "name=from", "type=date", "required")
	p.has(t, "input", "name=to", "type=date", "required")
	p.has(t, "select", "name=reprocess")
	for _, mode := range []string{"none", "failed", "completed"} {
		p.has(t, "option", "value="+mode)
	}
	p.has(t, "input", "name=reverse", "type=checkbox")
	p.has(t, "input", "name=max_active_runs", "type=number", "value=10", "min=1")
	p.has(t, "button", "id=backfill-dry-run", "name=dry_run")
	p.has(t, "button", "id=backfill-start", "type=submit")
	p.has(t, "input", "name=param.sample_frac", "type=number")

	adhoc := pc.get("/dags/adhoc/backfill")
	adhoc.wantStatus(t, http.StatusOK)
	adhoc.has(t, "p", "id=backfill-unscheduled")
}

func TestBackfillDryRunPage(t *testing.T) {
	t.Parallel()
	pc := newBackfillPages(t)
	failed := trigger(t, pc.k, "churn", "2026-01-05T02:00:00Z", nil) // churn's date; runs of the 5th fail
	pc.k.WaitRun("churn", failed.RunID, store.RunFailed)
	p := pc.post("/dags/churn/backfill", backfillForm(map[string]string{"dry_run": "true", "reprocess": "failed"}))
	p.wantStatus(t, http.StatusOK)
	p.has(t, "section", "id=backfill-plan")
	dates := dagPageTags(p.body, "tr", "data-action")
	if len(dates) != 5 {
		t.Fatalf("%d dates in the plan, want 5", len(dates))
	}
	if dates[0]["data-date"] != "2026-01-01T02:00:00Z" || dates[4]["data-action"] != "rerun" || dates[0]["data-action"] != "new" {
		t.Errorf("plan = %v", dates)
	}
	if bfs, _ := pc.k.Store().Backfills(""); len(bfs) != 0 {
		t.Errorf("a dry run created %d backfills", len(bfs))
	}
	// The form keeps its values.
	p.has(t, "input", "name=from", "value=2026-01-01")
	p.has(t, "input", "name=max_active_runs", "value=2")
	p.has(t, "option", "value=failed", "selected")
}

func TestBackfillStartListAndCancel(t *testing.T) {
	t.Parallel()
	pc := newBackfillPages(t)
	holdDays(pc.k, 1, 2, 3, 4, 5)
	p := pc.post("/dags/churn/backfill", backfillForm(map[string]string{"reverse": "true"}))
	p.wantStatus(t, http.StatusSeeOther)
	if p.location != "/backfills/bf-1" {
		t.Fatalf("Location = %q, want /backfills/bf-1", p.location)
	}
	if bf, err := pc.k.Store().GetBackfill("bf-1"); err != nil || !bf.Reverse || bf.RequestedBy != "ui" || bf.MaxActiveRuns != 2 {
		t.Errorf("backfill = %+v, %v; want reverse, by ui, 2 runs at once", bf, err)
	}

	list := pc.get("/backfills")
	list.wantStatus(t, http.StatusOK)
	list.has(t, "table", "id=backfills")
	list.has(t, "tr", "data-backfill=bf-1", "data-backfill-state=running")
	list.has(t, "a", "class~=backfill-link", "href=/backfills/bf-1")
	list.has(t, "tbody", "data-live=backfill-rows")
	pc.get("/backfills?dag=churn").has(t, "tr", "data-backfill=bf-1")
	if n := pc.get("/backfills?dag=adhoc").count("tr", "data-backfill"); n != 0 {
		t.Errorf("adhoc lists %d backfills", n)
	}

	page := pc.get("/backfills/bf-1")
	page.wantStatus(t, http.StatusOK)
	page.has(t, "form", "id=cancel-backfill", "action=/backfills/bf-1/cancel")
	page.has(t, "div", "data-live=backfill-progress")
	page.has(t, "div", "data-live=backfill-dates")
	page.has(t, "span", "id=backfill-state", "data-state=running")
	dates := dagPageTags(page.body, "tr", "data-action")
	if len(dates) != 5 || dates[0]["data-date"] != "2026-01-05T02:00:00Z" {
		t.Errorf("dates = %v, want 5, newest first", dates)
	}
	text := page.text()
	for _, want := range []string{"5 dates", "2 running", "3 pending"} {
		if !strings.Contains(strings.Join(strings.Fields(text), " "), want) {
			t.Errorf("the page does not say %q", want)
		}
	}

	// Progress shows live: the run of the 4th goes through.
	pc.k.Gate("2026-01-04").Open()
	pc.k.WaitBackfill("bf-1", "the 4th to succeed", func(bf *store.Backfill) bool {
		return backfillDate(bf, time.Date(2026, 1, 4, 2, 0, 0, 0, time.UTC)).State == store.RunSuccess
	})
	frag := pc.get("/backfills/bf-1", "backfill-progress")
	frag.wantStatus(t, http.StatusOK)
	if text := strings.Join(strings.Fields(frag.text()), " "); !strings.Contains(text, "1 success") || strings.Contains(frag.body, "<html") {
		t.Errorf("the progress fragment:\n%s", frag.body)
	}

	c := pc.post("/backfills/bf-1/cancel", url.Values{"csrf": {""}})
	c.wantStatus(t, http.StatusSeeOther)
	if c.location != "/backfills/bf-1" {
		t.Errorf("Location = %q", c.location)
	}
	page = pc.get("/backfills/bf-1")
	page.has(t, "span", "id=backfill-state", "data-state=cancelled")
	if page.count("form", "id=cancel-backfill") != 0 {
		t.Error("a cancelled backfill still offers to cancel")
	}
	again := pc.post("/backfills/bf-1/cancel", url.Values{})
	again.wantStatus(t, http.StatusConflict)
	again.has(t, "div", "id=error-message")
	pc.post("/backfills/bf-9/cancel", url.Values{}).wantStatus(t, http.StatusNotFound)
}

func TestBackfillFormErrors(t *testing.T) {
	t.Parallel()
	pc := newBackfillPages(t)
	for _, tc := range []struct {
		name    string
		dag     string
		form    url.Values
		status  int
		message string
	}{
		{"from missing", "churn", backfillForm(map[string]string{"from": ""}), 400, "from: required"},
		{"bad to", "churn", backfillForm(map[string]string{"to": "soon"}), 400, `to: want a date`},
		{"from after to", "churn", backfillForm(map[string]string{"from": "2026-01-09"}), 400, "from: 2026-01-09 is after to 2026-01-05"},
		{"bad max active runs", "churn", backfillForm(map[string]string{"max_active_runs": "0"}), 400, "max_active_runs"},
		{"bad reprocess", "churn", backfillForm(map[string]string{"reprocess": "all"}), 400, "reprocess"},
		{"bad param", "churn", backfillForm(map[string]string{"param.sample_frac": "2"}), 400, "param sample_frac"},
		{"future", "churn", backfillForm(map[string]string{"from": "2099-01-01", "to": "2099-03-01"}), 400, "in the future"},
		{"manual only", "adhoc", backfillForm(map[string]string{"param.region": "", "param.sample_frac": ""}), 400, "has no schedule"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc := &pageClient{t: t, k: pc.k, srv: pc.srv}
			p := pc.post("/dags/"+tc.dag+"/backfill", tc.form)
			p.wantStatus(t, tc.status)
			p.has(t, "div", "id=backfill-error", "class~=banner", "class~=error")
			if !strings.Contains(p.text(), tc.message) {
				t.Errorf("the page does not say %q:\n%s", tc.message, p.text())
			}
			p.has(t, "form", "id=backfill-form")
		})
	}

	// One active backfill per DAG: the first one's run of the 1st holds.
	holdDays(pc.k, 1)
	pc.post("/dags/churn/backfill", backfillForm(nil)).wantStatus(t, http.StatusSeeOther)
	p := pc.post("/dags/churn/backfill", backfillForm(nil))
	p.wantStatus(t, http.StatusConflict)
	if !strings.Contains(p.text(), "already has an active backfill") {
		t.Errorf("the conflict is not explained:\n%s", p.text())
	}
}
