package browsertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGroupsAndDatasets serves copies of the example DAGs orders_ingest
// (whose task group pull holds pull_eu and pull_us, and whose ingest
// updates lake://orders) and orders_report (scheduled on lake://orders),
// runs orders_ingest, then folds and unfolds the group on the graph, opens
// it on the grid, and follows the dataset from the nav to its event.
func TestGroupsAndDatasets(t *testing.T) {
	b := startBrowser(t) // skips the test first when there is no browser
	files := map[string]string{}
	for _, name := range []string{"orders_ingest.yaml", "orders_report.yaml"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "examples", "dags", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(body)
	}
	k := serveDAGs(t, t.TempDir(), files, nil)
	removeFailShots(t)
	tb := b.newTab(t, k)
	tb.login(operator)

	// Run orders_ingest from its trigger form, to the end.
	tb.open("/dags/orders_ingest/trigger")
	tb.wait("form#trigger-form")
	tb.submit("#trigger-submit")
	if p := tb.path(); !strings.HasPrefix(p, "/dags/orders_ingest/runs/manual__") {
		tb.fatalf("after triggering, the page is %s, want a manual run of orders_ingest", p)
	}
	tb.waitState("the run", "#run-state", "success")

	// The graph draws pull as a box around its two tasks.
	tb.open("/dags/orders_ingest/graph")
	group := `svg#graph g.group[data-group="pull"]`
	tb.wait(group + " rect.group-box")
	for _, task := range []string{"pull_eu", "pull_us"} {
		node := fmt.Sprintf(`svg#graph g.node[data-task=%q][data-state="success"]`, task)
		tb.wait(node)
		inside := eval[bool](tb, fmt.Sprintf(`(function (g, n) {
			return n.left >= g.left && n.right <= g.right && n.top >= g.top && n.bottom <= g.bottom;
		})(document.querySelector(%q).getBoundingClientRect(), document.querySelector(%q).getBoundingClientRect())`,
			group+" rect.group-box", node+" rect.box"))
		if !inside {
			tb.fatalf("the box of group pull does not enclose the node %s", task)
		}
	}
	if tb.count(`svg#graph g.group`) != 1 {
		tb.fatalf("%d group boxes, want pull's only", tb.count(`svg#graph g.group`))
	}
	tb.screenshot("dag-graph-group")

	// Its label folds it into one node, green as its tasks.
	tb.submit(group + " a.group-fold text.group-label")
	if q := eval[string](tb, `location.search`); q != "?fold=pull" {
		tb.fatalf("the group's label led to %s%s, want ?fold=pull", tb.path(), q)
	}
	folded := `svg#graph g.node.folded[data-group="pull"]`
	tb.wait(folded + `[data-state="success"]`)
	if n := tb.count(`svg#graph g.node[data-task="pull_eu"], svg#graph g.node[data-task="pull_us"], ` + group); n != 0 {
		tb.fatalf("the folded graph still draws %d nodes or boxes of pull's tasks", n)
	}
	tb.present(`svg#graph g.node[data-task="ingest"]`)
	tb.screenshot("dag-graph-folded")

	// The folded node unfolds it.
	tb.submit(folded + " a")
	tb.wait(`svg#graph g.node[data-task="pull_eu"]`)
	tb.present(`svg#graph g.node[data-task="pull_us"]`)
	tb.present(group)
	if tb.count(folded) != 0 {
		tb.fatalf("the unfolded graph still draws pull as one node")
	}

	// The grid shows the group's row, closed; its name opens it.
	tb.open("/dags/orders_ingest")
	tb.wait(`table#grid tr.group-row[data-group="pull"]`)
	tasks := `table#grid tr[data-task="pull_eu"], table#grid tr[data-task="pull_us"]`
	if n := tb.count(tasks); n != 0 {
		tb.fatalf("the closed group shows %d rows of its tasks", n)
	}
	tb.present(`table#grid tr[data-task="ingest"]`)
	tb.submit(`table#grid tr.group-row[data-group="pull"] a.group-toggle`)
	if q := eval[string](tb, `location.search`); q != "?open=pull" {
		tb.fatalf("the group's name led to %s%s, want ?open=pull", tb.path(), q)
	}
	tb.wait(`table#grid tr[data-task="pull_eu"][data-in-group="pull"]`)
	tb.wait(`table#grid tr[data-task="pull_us"][data-in-group="pull"]`)
	tb.present(`table#grid tr.group-row[data-group="pull"] a.group-toggle[aria-expanded="true"]`)
	tb.screenshot("dag-grid-group-open")

	// The nav leads to the datasets: ingest produces lake://orders,
	// orders_report consumes it.
	tb.submit(`header.top nav a[href="/datasets"]`)
	row := `table#datasets tr[data-dataset="lake://orders"]`
	tb.wait(row)
	if got := tb.text(row + " td.dataset-producers"); got != "orders_ingest.ingest" {
		tb.fatalf("the producers of lake://orders read %q, want orders_ingest.ingest", got)
	}
	tb.present(row + ` td.dataset-consumers div.consumer[data-consumer="orders_report"]`)
	tb.screenshot("datasets")

	// Its page lists the event the run's ingest emitted.
	tb.submit(row + " td.dataset-uri a")
	if got := tb.text("#dataset-uri"); got != "lake://orders" {
		tb.fatalf("#dataset-uri = %q, want lake://orders", got)
	}
	tb.present("table#dataset-events tr[data-event]")
	sources := eval[[]string](tb, `[...document.querySelectorAll("table#dataset-events tr[data-event] td.source")].map(td => td.textContent.trim())`)
	if len(sources) != 1 || sources[0] != "orders_ingest.ingest" {
		tb.fatalf("the events of lake://orders come from %q, want one from orders_ingest.ingest", sources)
	}
	tb.screenshot("dataset-events")
}
