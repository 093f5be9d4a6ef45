package browsertest

import (
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/kilntest"
)

// fanoutDAG maps square over the 12 letters list writes, then sums up
// (docs/api.md#mapped-tasks).
var fanoutDAG = kilntest.FanoutDAG(`'echo "item {{ .item }} at {{ .map_index }}"'`, "all_success")

// TestMappedTask runs a DAG with a mapped task from its trigger form: the
// grid shows the task's instance count in its one row, the graph marks it,
// and the run page lists its instances, each with its panel and log.
func TestMappedTask(t *testing.T) {
	b := startBrowser(t) // skips the test first when there is no browser
	k := serveDAGs(t, t.TempDir(), map[string]string{"fanout.yaml": fanoutDAG}, nil)
	removeFailShots(t)
	tb := b.newTab(t, k)
	tb.login(operator)

	tb.open("/dags/fanout/trigger")
	tb.wait("form#trigger-form")
	tb.submit("#trigger-submit")
	tb.waitState("the run", "#run-state", "success")

	// The grid: one row per task, the count in the mapped task's cell.
	tb.open("/dags/fanout")
	cell := `table#grid a.cell[data-task="square"][data-map-length="12"]`
	tb.wait(cell + ` span.map-count`)
	if got := tb.text(cell + " span.map-count"); got != "12" {
		tb.fatalf("square's cell says %q, want 12", got)
	}
	if n := tb.count(`table#grid tbody tr[data-task]`); n != 3 {
		tb.fatalf("%d grid rows, want one per task", n)
	}
	tb.screenshot("mapped-grid")

	// Its cell leads to the run with the task picked: its instances.
	tb.submit(cell)
	tb.wait(`section#task-detail[data-task="square"] table#instances`)
	if n := tb.count(`table#instances tbody tr[data-map-index]`); n != 12 {
		tb.fatalf("%d instance rows, want 12", n)
	}
	if got := tb.text(`table#tasks tr[data-task="square"] a.badge.map-count`); got != "12 instances" {
		tb.fatalf("square's badge says %q", got)
	}
	tb.screenshot("mapped-instances")

	// An instance's panel, then its log.
	tb.submit(`table#instances tr[data-map-index="3"] a.instance-link`)
	tb.wait(`section#task-detail[data-map-index="3"]`)
	if got := tb.text(`#task-item`); got != `"d"` {
		tb.fatalf("square[3]'s item = %s", got)
	}
	tb.submit(`table#tries tr[data-try="1"] a.try-log`)
	tb.waitLog("item d at 3")
	if got := tb.text("h1#log-title"); !strings.HasPrefix(got, "square[3]") {
		tb.fatalf("log title %q", got)
	}

	// The graph marks the task with its count.
	tb.open("/dags/fanout/graph")
	tb.wait(`svg#graph g.node[data-task="square"][data-mapped="[12]"]`)
	tb.screenshot("mapped-graph")
}
