package ui

import (
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// The backfill pages: a DAG's backfill tab (a form with a dry run that
// shows the plan), the list of backfills and one backfill's progress.

// backfillFormView is the backfill tab.
type backfillFormView struct {
	Action        string
	TriggerHref   string
	ListHref      string // the DAG's backfills
	From, To      string
	Reprocess     string
	Reverse       bool
	MaxActiveRuns string
	Timezone      string
	// Params are the inputs of the params, rendered from paramFields.
	Params    template.HTML
	HasParams bool
	// Scheduled is false for a manual-only DAG, which has no dates to
	// backfill.
	Scheduled  bool
	Error      string
	Plan       *backfillPageView // the answer to a dry run
	CanOperate bool
}

// newBackfillForm is the backfill tab of g, its fields not yet filled in.
func newBackfillForm(g *dag.DAG) backfillFormView {
	return backfillFormView{
		Action:      dagHref(g.ID, "backfill"),
		TriggerHref: dagHref(g.ID, "trigger"),
		ListHref:    "/backfills?dag=" + url.QueryEscape(g.ID),
		Timezone:    dagTimezone(g),
		HasParams:   len(g.Params) > 0,
		Scheduled:   g.Timetable != nil,
	}
}

func (s *Server) dagBackfillPage(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	g := info.DAG
	v := newBackfillForm(g)
	v.Reprocess = store.ReprocessNone
	v.MaxActiveRuns = strconv.Itoa(scheduler.DefaultBackfillActiveRuns)
	v.CanOperate = mayOperate(c)
	if v.Params, err = s.partial("param-fields", paramFields(g.Params, nil, nil)); err != nil {
		return err
	}
	return s.renderDAGTab(c, http.StatusOK, info, "backfill", v)
}

// backfillDAG takes the backfill form. With dry_run it shows the plan on
// the form; otherwise it starts the backfill and goes to its page. A
// problem sends the form back with its status, the values kept.
func (s *Server) backfillDAG(c echo.Context) error {
	info, form, err := s.lookupDAGForm(c)
	if err != nil {
		return err
	}
	g := info.DAG
	v := newBackfillForm(g)
	v.From, v.To = form.Get("from"), form.Get("to")
	v.Reprocess = form.Get("reprocess")
	v.Reverse = form.Get("reverse") != "" && form.Get("reverse") != "false"
	v.MaxActiveRuns = form.Get("max_active_runs")
	v.CanOperate = true
	dryRun := form.Get("dry_run") != ""
	req, msgs, problems := backfillRequest(c, g, form, v)
	req.DryRun = dryRun
	status := http.StatusBadRequest
	if len(msgs) == 0 {
		bf, err := s.backend.Backfill(c.Request().Context(), g.ID, req)
		switch {
		case err == nil && !dryRun:
			return c.Redirect(http.StatusSeeOther, "/backfills/"+url.PathEscape(bf.ID))
		case err == nil:
			plan := newBackfillPageView(bf, dagLoc(g), time.Now())
			v.Plan = &plan
			status = http.StatusOK
		default:
			code, msg := classify(err)
			if code >= 500 {
				return err
			}
			status = code
			// problems is empty here: the form had none.
			msgs = append(msgs, paramProblems(g.Params, msg, problems)...)
			msgs = append(msgs, problemMessages(g.Params, problems)...)
		}
	}
	v.Error = strings.Join(msgs, "; ")
	if v.Params, err = s.partial("param-fields", paramFields(g.Params, form, problems)); err != nil {
		return err
	}
	return s.renderDAGTab(c, status, info, "backfill", v)
}

// backfillRequest reads the backfill form. msgs lists its problems, each
// naming its field; problems holds those of params by name.
func backfillRequest(c echo.Context, g *dag.DAG, form url.Values, v backfillFormView) (req scheduler.BackfillRequest, msgs []string, problems map[string]string) {
	loc := dagLoc(g)
	req = scheduler.BackfillRequest{Reverse: v.Reverse, RequestedBy: uiRequester(c)}
	bound := func(field, value string, end bool) time.Time {
		t, err := rangeBound(field, strings.TrimSpace(value), loc, end)
		if err != nil {
			_, msg := classify(err)
			msgs = append(msgs, msg)
		}
		return t
	}
	req.From = bound("from", v.From, false).UTC()
	req.To = bound("to", v.To, true).UTC()
	if len(msgs) == 0 && req.From.After(req.To) {
		msgs = append(msgs, "from: "+v.From+" is after to "+v.To)
	}
	switch v.Reprocess {
	case "", store.ReprocessNone, store.ReprocessFailed, store.ReprocessCompleted:
		req.Reprocess = v.Reprocess
	default:
		msgs = append(msgs, "reprocess: want none, failed or completed; got "+strconv.Quote(v.Reprocess))
	}
	if m := strings.TrimSpace(v.MaxActiveRuns); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 1 {
			msgs = append(msgs, "max_active_runs: want a whole number of at least 1, got "+strconv.Quote(m))
		} else {
			req.MaxActiveRuns = n
		}
	}
	params, problems, rest := checkFormParams(g, form)
	msgs = append(msgs, rest...)
	msgs = append(msgs, problemMessages(g.Params, problems)...)
	req.Params = params
	return req, msgs, problems
}

// uiRequester is who asks for a backfill from a page: the signed-in user,
// or "ui" when auth is off.
func uiRequester(c echo.Context) string {
	if p := principal(c); p != nil && p.Name != "" {
		return p.Name
	}
	return "ui"
}

// backfillCountsView is a backfill's progress: its counts and the share of
// the bar each takes, in percent.
type backfillCountsView struct {
	BackfillCounts
	Done int // dates that need nothing more: success, failed, skipped
	// Percentages of the progress bar.
	SuccessPct, FailedPct, QueuedPct, RunningPct, SkippedPct string
}

func newBackfillCountsView(c store.BackfillCounts) backfillCountsView {
	v := backfillCountsView{
		BackfillCounts: BackfillCounts{
			Total: c.Total, Pending: c.Pending, Queued: c.Queued, Running: c.Running,
			Success: c.Success, Failed: c.Failed, Skipped: c.Skipped,
		},
		Done: c.Success + c.Failed + c.Skipped,
	}
	pct := func(n int) string {
		if c.Total == 0 {
			return "0"
		}
		return strconv.FormatFloat(100*float64(n)/float64(c.Total), 'f', 2, 64)
	}
	v.SuccessPct, v.FailedPct, v.QueuedPct, v.RunningPct, v.SkippedPct = pct(c.Success), pct(c.Failed), pct(c.Queued), pct(c.Running), pct(c.Skipped)
	return v
}

// backfillDateView is one date of a backfill's plan.
type backfillDateView struct {
	LogicalDate     timeView
	Action, Reason  string
	RunID, RunHref  string // "" while the date has no run
	State           string // the run's state; "" until started or for a skipped date
	DisplayState    string // State, or pending / skipped
	DisplayStateKey string // the data-state the badge takes
}

// backfillPageView is one backfill: the list shows its summary, its page and
// a dry run its dates too.
type backfillPageView struct {
	ID, Href       string
	DAGID, DAGHref string
	From, To       timeView
	// Range is From to To in words: dates in the DAG's timezone when
	// they are whole days.
	Range         string
	Reprocess     string
	Reverse       bool
	MaxActiveRuns int
	Params        string // JSON, "" when none
	RequestedBy   string
	State         string
	Created       timeView
	Ended         *timeView
	Counts        backfillCountsView
	Dates         []backfillDateView
	Cancellable   bool
	CanOperate    bool
	// Hidden counts the dates left out of a long plan.
	Hidden int
}

// maxPlanDates bounds the dates a backfill's page lists; the counts cover
// them all.
const maxPlanDates = 1000

// newBackfillPageView is bf with its dates, as its page and a dry run
// show it.
func newBackfillPageView(bf *store.Backfill, loc *time.Location, now time.Time) backfillPageView {
	v := newBackfillSummary(bf, loc, now)
	v.Dates, v.Hidden = backfillDates(bf, loc, now)
	return v
}

// newBackfillSummary is bf without its dates, as the list shows it.
func newBackfillSummary(bf *store.Backfill, loc *time.Location, now time.Time) backfillPageView {
	v := backfillPageView{
		ID:            bf.ID,
		DAGID:         bf.DAGID,
		DAGHref:       dagHref(bf.DAGID),
		From:          newTimeView(bf.From, loc, now),
		To:            newTimeView(bf.To, loc, now),
		Range:         rangeText(bf.From, bf.To, loc),
		Reprocess:     bf.Reprocess,
		Reverse:       bf.Reverse,
		MaxActiveRuns: bf.MaxActiveRuns,
		RequestedBy:   bf.RequestedBy,
		State:         string(bf.State),
		Created:       newTimeView(bf.CreatedAt, loc, now),
		Ended:         timeViewPtr(bf.EndDate, loc, now),
		Counts:        newBackfillCountsView(bf.Counts()),
		Cancellable:   bf.ID != "" && bf.State == store.BackfillRunning,
	}
	if bf.ID != "" {
		v.Href = "/backfills/" + url.PathEscape(bf.ID)
	}
	if len(bf.Params) > 0 {
		v.Params = formatParam(bf.Params, false)
	}
	return v
}

// backfillDates are the first maxPlanDates dates of bf, and how many more
// it has.
func backfillDates(bf *store.Backfill, loc *time.Location, now time.Time) (views []backfillDateView, hidden int) {
	dates := bf.Dates
	if len(dates) > maxPlanDates {
		hidden = len(dates) - maxPlanDates
		dates = dates[:maxPlanDates]
	}
	views = make([]backfillDateView, len(dates))
	for i, d := range dates {
		dv := backfillDateView{
			LogicalDate: newTimeView(d.LogicalDate, loc, now),
			Action:      d.Action,
			Reason:      d.Reason,
			RunID:       d.RunID,
		}
		if d.RunID != "" {
			dv.RunHref = runHref(bf.DAGID, d.RunID)
		}
		switch {
		case d.Action == store.DateSkip:
			dv.DisplayState, dv.DisplayStateKey = "skipped", "skipped"
		case d.Started && d.State != "":
			dv.State = string(d.State)
			dv.DisplayState, dv.DisplayStateKey = dv.State, dv.State
		default:
			dv.DisplayState, dv.DisplayStateKey = "pending", "none"
		}
		views[i] = dv
	}
	return views, hidden
}

// rangeText describes a backfill's range: "2026-01-01 to 2026-01-31
// (Europe/Berlin)" when it is whole days there, as the form asks for it,
// else its two times.
func rangeText(from, to time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	f, t := from.In(loc), to.In(loc).Add(time.Nanosecond)
	midnight := func(x time.Time) bool {
		return x.Hour() == 0 && x.Minute() == 0 && x.Second() == 0 && x.Nanosecond() == 0
	}
	if midnight(f) && midnight(t) {
		last := t.AddDate(0, 0, -1)
		if f.Equal(last) {
			return f.Format(time.DateOnly) + " (" + loc.String() + ")"
		}
		return f.Format(time.DateOnly) + " to " + last.Format(time.DateOnly) + " (" + loc.String() + ")"
	}
	return shortTime(from.UTC()) + " to " + shortTime(to.UTC()) + " UTC"
}

// backfillListView is the list of backfills.
type backfillListView struct {
	DAGID     string // the filter, "" for all
	Backfills []backfillPageView
}

func (s *Server) backfillsPage(c echo.Context) error {
	dagID := c.QueryParam("dag")
	bfs, err := s.backend.Store().Backfills(dagID)
	if err != nil {
		return err
	}
	now := time.Now()
	v := backfillListView{DAGID: dagID, Backfills: make([]backfillPageView, len(bfs))}
	for i, bf := range bfs {
		v.Backfills[i] = newBackfillSummary(bf, s.dagLocation(bf.DAGID), now)
	}
	return s.render(c, http.StatusOK, "backfills", pageData{Title: "Backfills", Nav: "backfills", Data: v, Events: eventsHref(dagID, "")})
}

func (s *Server) backfillPage(c echo.Context) error {
	bf, err := s.lookupBackfill(c)
	if err != nil {
		return err
	}
	v := newBackfillPageView(bf, s.dagLocation(bf.DAGID), time.Now())
	v.CanOperate = mayOperate(c)
	return s.render(c, http.StatusOK, "backfill", pageData{Title: "Backfill " + bf.ID, Nav: "backfills", Data: v, Events: eventsHref(bf.DAGID, "")})
}

// cancelBackfillForm cancels a backfill, then shows it again.
func (s *Server) cancelBackfillForm(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := s.backend.CancelBackfill(c.Request().Context(), id); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/backfills/"+url.PathEscape(id))
}

// dagLocation is a loaded DAG's timezone; UTC for a DAG no longer loaded.
func (s *Server) dagLocation(dagID string) *time.Location {
	info, _ := s.backend.DAG(dagID)
	return dagLoc(info.DAG)
}
