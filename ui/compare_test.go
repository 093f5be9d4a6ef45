package ui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/store"
)

// TestComparePage: the runs list offers a checkbox per run, and the compare
// page shows what differs between the two ticked.
func TestComparePage(t *testing.T) {
	t.Parallel()
	pc := newPageClient(t, numberDAG)
	a := trigger(t, pc.k, "n", "", map[string]any{"n": 1})
	b := trigger(t, pc.k, "n", "", map[string]any{"n": 2})
	c := trigger(t, pc.k, "n", "", map[string]any{"n": 1})
	for _, r := range []*store.Run{a, b, c} {
		pc.k.WaitRun("n", r.RunID, store.RunSuccess)
	}

	list := pc.get("/dags/n/runs")
	list.wantStatus(t, http.StatusOK)
	list.has(t, "form", "id=compare", "action=/dags/n/compare")
	list.has(t, "input", "type=checkbox", "name=run", "value="+a.RunID, "form=compare")

	p := pc.get("/dags/n/compare?run=" + a.RunID + "&run=" + b.RunID)
	p.wantStatus(t, http.StatusOK)
	p.has(t, "p", "id=compare-verdict")
	p.has(t, "table", "id=compare-params")
	if text := p.text(); !strings.Contains(text, "did not run the same thing") || !strings.Contains(text, "n") {
		t.Errorf("compare page:\n%.2000s", text)
	}
	same := pc.get("/dags/n/compare?run=" + a.RunID + "&run=" + c.RunID)
	if !strings.Contains(same.text(), "The two runs ran the same thing.") {
		t.Errorf("runs with the same params:\n%.2000s", same.text())
	}
	pc.get("/dags/n/compare?run="+a.RunID).wantStatus(t, http.StatusBadRequest)
	pc.get("/dags/n/compare?run="+a.RunID+"&run=nope").wantStatus(t, http.StatusNotFound)
}
