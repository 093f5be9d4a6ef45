package ui

import (
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// The datasets pages (docs/dag-format.md#datasets): every dataset with the
// tasks that update it, the DAGs scheduled on it and what holds them
// back, and its last event; and one dataset with its last events. A URI
// has slashes, so the dataset's page takes it as the query param uri.

// datasetPageEvents is how many events a dataset's page lists.
const datasetPageEvents = 50

// datasetPageRoutes registers the datasets pages.
func (s *Server) datasetPageRoutes() {
	s.page(http.MethodGet, "/datasets", s.datasetsPage, RoleViewer)
	s.page(http.MethodGet, "/datasets/events", s.datasetPage, RoleViewer)
}

// datasetHref is the path of a dataset's page.
func datasetHref(uri string) string {
	return "/datasets/events?uri=" + url.QueryEscape(uri)
}

// datasetLink is a dataset named on a page, with its page.
type datasetLink struct{ URI, Href string }

func newDatasetLinks(uris []string) []datasetLink {
	links := make([]datasetLink, len(uris))
	for i, uri := range uris {
		links[i] = datasetLink{uri, datasetHref(uri)}
	}
	return links
}

// datasetProducerView is a task with the dataset among its outlets.
type datasetProducerView struct {
	Label, Href string // DAG.TASK, the DAG's page
}

// datasetConsumerView is a DAG scheduled on the dataset.
type datasetConsumerView struct {
	DAGID, Href string
	Condition   string // all or any
	Paused      bool
	// Next says what its next run waits for: "runs on the next event"
	// when an event of this dataset is enough, else "waiting on" the
	// datasets in Waiting, or when none holds it back "ready", or "runs
	// when unpaused" for a paused DAG, which keeps its events.
	Next         string
	Waiting      []datasetLink
	QueuedEvents int
}

// datasetEventView is one event of a dataset.
type datasetEventView struct {
	ID   uint64
	Time timeView
	// Source is the producing task as DAG.TASK, SourceHref its run's
	// page and Try its try; all empty for an external event, which By
	// may name.
	Source, SourceHref, RunID string
	Try                       int
	By                        string
	Extra                     string // compact JSON, "" when none
}

// datasetView is one dataset: a row of the list, the head of its page.
type datasetView struct {
	URI, Href string
	Producers []datasetProducerView
	Consumers []datasetConsumerView
	Events    int
	Last      *datasetEventView
}

// datasetsView is the datasets list, or with Detail one dataset's page:
// Rows holds it alone and Recent its last events.
type datasetsView struct {
	Rows   []datasetView
	Detail bool
	Recent []datasetEventView
	// Hidden counts the events older than Recent.
	Hidden int
}

func newDatasetView(info scheduler.DatasetInfo, now time.Time) datasetView {
	v := datasetView{URI: info.URI, Href: datasetHref(info.URI), Events: info.Events}
	for _, p := range info.Producers {
		v.Producers = append(v.Producers, datasetProducerView{Label: p.DAGID + "." + p.TaskID, Href: dagHref(p.DAGID)})
	}
	for _, c := range info.Consumers {
		cv := datasetConsumerView{DAGID: c.DAGID, Href: dagHref(c.DAGID), Condition: "all", Paused: c.Paused, QueuedEvents: c.QueuedEvents}
		if c.Any {
			cv.Condition = "any"
		}
		switch {
		case len(c.WaitingOn) == 0 && c.Paused:
			cv.Next = "runs when unpaused"
		case len(c.WaitingOn) == 0:
			cv.Next = "ready"
		case c.Any || slices.Equal(c.WaitingOn, []string{info.URI}):
			cv.Next = "runs on the next event"
		default:
			cv.Next = "waiting on"
			cv.Waiting = newDatasetLinks(c.WaitingOn)
		}
		v.Consumers = append(v.Consumers, cv)
	}
	if info.LastEvent != nil {
		e := newDatasetEventView(*info.LastEvent, now)
		v.Last = &e
	}
	return v
}

func newDatasetEventView(e store.DatasetEvent, now time.Time) datasetEventView {
	v := datasetEventView{ID: e.ID, Time: newTimeView(e.Time, nil, now), By: e.By}
	if e.SourceRunID != "" {
		v.Source = e.SourceDAGID + "." + e.SourceTaskID
		v.SourceHref = runHref(e.SourceDAGID, e.SourceRunID)
		v.RunID, v.Try = e.SourceRunID, e.SourceTry
	}
	if len(e.Extra) > 0 {
		v.Extra = formatParam(e.Extra, false)
	}
	return v
}

func (s *Server) datasetsPage(c echo.Context) error {
	list, err := s.backend.Datasets(c.Request().Context())
	if err != nil {
		return err
	}
	now := time.Now()
	v := datasetsView{Rows: make([]datasetView, len(list))}
	for i, info := range list {
		v.Rows[i] = newDatasetView(info, now)
	}
	return s.render(c, http.StatusOK, "datasets", pageData{Title: "Datasets", Nav: "datasets", Data: v})
}

// datasetPage is one dataset: GET /datasets/events?uri=URI. A URI no
// loaded DAG names and no event updated is not found.
func (s *Server) datasetPage(c echo.Context) error {
	uri := c.QueryParam("uri")
	if uri == "" {
		return badRequest("uri: required, the dataset's URI")
	}
	list, err := s.backend.Datasets(c.Request().Context())
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(d scheduler.DatasetInfo) bool { return d.URI == uri })
	if i < 0 {
		return notFound("dataset %q not found: no loaded DAG names it and it has no event", uri)
	}
	events, total, err := s.backend.Store().DatasetEvents(uri, datasetPageEvents)
	if err != nil {
		return err
	}
	now := time.Now()
	v := datasetsView{Rows: []datasetView{newDatasetView(list[i], now)}, Detail: true, Hidden: total - len(events)}
	for _, e := range events {
		v.Recent = append(v.Recent, newDatasetEventView(e, now))
	}
	return s.render(c, http.StatusOK, "datasets", pageData{Title: "Dataset " + uri, Nav: "datasets", Data: v})
}
