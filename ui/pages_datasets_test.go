package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/kilnhq/kiln/internal/kilntest"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
	"github.com/kilnhq/kiln/ui"
)

// ordersProducerDAG's task updates lake://orders; ordersConsumerDAG runs
// when lake://orders and lake://customers were both updated.
const (
	ordersProducerDAG = `
id: ingest
tasks:
  - {id: load, plugin: shell, outlets: [lake://orders], with: {command: "true"}}
`
	ordersConsumerDAG = `
id: report
schedule: {datasets: [lake://orders, lake://customers]}
tasks:
  - {id: sum, plugin: shell, with: {command: "true"}}
`
)

func TestDatasetsPages(t *testing.T) {
	t.Parallel()
	k := kilntest.New(t, ordersProducerDAG, ordersConsumerDAG)
	srv := serveAPI(t, k, ui.Options{})
	base := srv.URL

	// Before any event: both datasets, named by the DAGs.
	d := getPage(t, base+"/datasets").want(t, http.StatusOK)
	if a := d.one("header nav a.on"); a.attr("href") != "/datasets" || a.text() != "Datasets" {
		t.Errorf("the nav's current link: %q %q", a.attr("href"), a.text())
	}
	var uris []string
	for _, tr := range d.all("table#datasets tbody tr[data-dataset]") {
		uris = append(uris, tr.attr("data-dataset"))
	}
	if got := strings.Join(uris, " "); got != "lake://customers lake://orders" {
		t.Errorf("datasets = %s", got)
	}
	if got := d.one(`tr[data-dataset="lake://orders"] .dataset-last`).text(); got != "never" {
		t.Errorf("orders' last event before any: %q", got)
	}

	e, err := k.EmitDatasetEvent(t.Context(), scheduler.DatasetEventRequest{URI: "lake://orders", Extra: map[string]any{"rows": 5}, By: "tester"})
	if err != nil {
		t.Fatal(err)
	}

	d = getPage(t, base+"/datasets").want(t, http.StatusOK)
	orders := d.one(`tr[data-dataset="lake://orders"]`)
	if a := orders.one(".dataset-uri a"); a.attr("href") != "/datasets/events?uri="+url.QueryEscape("lake://orders") {
		t.Errorf("orders' link = %q", a.attr("href"))
	}
	if p := orders.one(".dataset-producers .producer a"); p.text() != "ingest.load" || p.attr("href") != "/dags/ingest" {
		t.Errorf("orders' producer = %q %q", p.text(), p.attr("href"))
	}
	c := orders.one(".consumer[data-consumer=report]")
	if got := strings.Join(strings.Fields(c.text()), " "); got != "report all waiting on lake://customers 1 queued" {
		t.Errorf("orders' consumer = %q", got)
	}
	if a := c.one(".next a"); a.attr("href") != "/datasets/events?uri="+url.QueryEscape("lake://customers") {
		t.Errorf("the dataset report waits on links to %q", a.attr("href"))
	}
	if got := orders.one(".dataset-events").text(); got != "1" {
		t.Errorf("orders' events = %q, want 1", got)
	}
	if got := orders.one(".dataset-last .source").text(); got != "external by tester" {
		t.Errorf("orders' last event source = %q", got)
	}
	customers := d.one(`tr[data-dataset="lake://customers"]`)
	if got := customers.one(".consumer .next").text(); got != "runs on the next event" {
		t.Errorf("customers' consumer = %q", got)
	}
	if got := customers.one(".dataset-producers").text(); got != "none loaded" {
		t.Errorf("customers' producers = %q", got)
	}

	// The dataset's page: its row and its event.
	d = getPage(t, base+"/datasets/events?uri="+url.QueryEscape("lake://orders")).want(t, http.StatusOK)
	if got := d.one("#dataset-uri").text(); got != "lake://orders" {
		t.Errorf("the page's dataset = %q", got)
	}
	d.one(`table#datasets tr[data-dataset="lake://orders"] .consumer[data-consumer=report]`)
	rows := d.all("table#dataset-events tbody tr[data-event]")
	if len(rows) != 1 {
		t.Fatalf("%d events listed, want 1", len(rows))
	}
	ev := rows[0]
	if ev.attr("data-event") != "1" || e.ID != 1 {
		t.Errorf("event id %q, emitted %d", ev.attr("data-event"), e.ID)
	}
	if got := ev.one(".source").text(); got != "external by tester" {
		t.Errorf("the event's source = %q", got)
	}
	if got := ev.one(".extra").text(); got != `{"rows":5}` {
		t.Errorf("the event's extra = %q", got)
	}
	ev.one("time[datetime]")

	// A run of the producer adds an event with its run as source, newest
	// first.
	run := trigger(t, k, "ingest", "", nil)
	k.WaitRun("ingest", run.RunID, store.RunSuccess)
	d = getPage(t, base+"/datasets/events?uri="+url.QueryEscape("lake://orders")).want(t, http.StatusOK)
	rows = d.all("table#dataset-events tbody tr[data-event]")
	if len(rows) != 2 || rows[0].attr("data-event") != "2" {
		t.Fatalf("%d events listed, want 2, newest first", len(rows))
	}
	if a := rows[0].one(".source a"); a.text() != "ingest.load" || a.attr("href") != "/dags/ingest/runs/"+url.PathEscape(run.RunID) {
		t.Errorf("the run's event's source = %q %q", a.text(), a.attr("href"))
	}
	if a := d.one(`tr[data-dataset="lake://orders"] .dataset-last .source a`); a.text() != "ingest.load" {
		t.Errorf("the last event's source = %q", a.text())
	}

	// The consumer's schedule links its datasets to their pages.
	for _, page := range []string{"/dags/report", "/dags"} {
		d = getPage(t, base+page).want(t, http.StatusOK)
		var links []string
		for _, a := range d.all(".schedule-datasets a") {
			links = append(links, a.text()+" "+a.attr("href"))
		}
		want := "lake://orders /datasets/events?uri=lake%3A%2F%2Forders, lake://customers /datasets/events?uri=lake%3A%2F%2Fcustomers"
		if got := strings.Join(links, ", "); got != want {
			t.Errorf("%s: schedule links %s, want %s", page, got, want)
		}
	}

	// Paused, report keeps the events that would start it.
	if err := k.SetPaused(t.Context(), "report", true); err != nil {
		t.Fatal(err)
	}
	if _, err := k.EmitDatasetEvent(t.Context(), scheduler.DatasetEventRequest{URI: "lake://customers"}); err != nil {
		t.Fatal(err)
	}
	d = getPage(t, base+"/datasets").want(t, http.StatusOK)
	c = d.one(`tr[data-dataset="lake://customers"] .consumer[data-consumer=report]`)
	if got := strings.Join(strings.Fields(c.text()), " "); got != "report all paused runs when unpaused 1 queued" {
		t.Errorf("customers' paused consumer = %q", got)
	}

	getPage(t, base+"/datasets/events?uri="+url.QueryEscape("lake://nope")).want(t, http.StatusNotFound).one("#error-message")
	getPage(t, base+"/datasets/events").want(t, http.StatusBadRequest)
}

func TestDatasetsPageEmpty(t *testing.T) {
	t.Parallel()
	_, srv := newAPI(t)
	d := getPage(t, srv.URL+"/datasets").want(t, http.StatusOK)
	if got := d.one("table#datasets tbody tr.empty").text(); !strings.HasPrefix(got, "No dataset yet") {
		t.Errorf("the empty list says %q", got)
	}
}
