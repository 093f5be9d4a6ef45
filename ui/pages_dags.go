package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aymanbagabas/go-udiff"
	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// The DAG pages: the list of DAGs, and one DAG's header and tabs (grid,
// graph, source, trigger, backfill). Handlers build view structs with
// every string the templates show already formatted, so the templates only
// place them; see web.go for how pages and their live blocks render.

// dagListRuns is how many recent runs the DAG list shows per DAG.
const dagListRuns = 10

// maxSourceBytes bounds the file the source tab shows.
const maxSourceBytes = 4 << 20

// dagHref is the path of a DAG's page, or of one of its tabs.
func dagHref(dagID string, tab ...string) string {
	p := "/dags/" + url.PathEscape(dagID)
	if len(tab) > 0 && tab[0] != "" {
		p += "/" + tab[0]
	}
	return p
}

// runHref is the path of a run's page (pages_runs.go serves it).
func runHref(dagID, runID string) string {
	return "/dags/" + url.PathEscape(dagID) + "/runs/" + url.PathEscape(runID)
}

// mayOperate reports whether the request's principal may change state:
// everyone when auth is off. The routes check it again; pages use it to
// leave out or disable controls the user cannot use.
func mayOperate(c echo.Context) bool { return hasRole(c, RoleOperator) }

// hasRole reports whether the request's principal has at least the role
// min: everyone when auth is off.
func hasRole(c echo.Context, min Role) bool {
	p := principal(c)
	return p == nil || p.Role >= min
}

// timeView is a time as pages show it: in UTC, with the DAG's timezone
// beside it (docs/cli.md#dates-and-times). The templates "time" and
// "time-rel" (layout.html) write it as a <time> element, which kiln.js
// rewrites in the zone the reader picked: UTC, the browser's or the DAG's.
type timeView struct {
	ISO   string // RFC 3339 in UTC, for <time datetime>
	Text  string // "2026-01-05 03:00 UTC"
	Local string // the same in the DAG's timezone, when that is not UTC
	Zone  string // the DAG's timezone, for <time data-tz>; "" for UTC
	Rel   string // "in 3h 5m", "5m ago"
}

func newTimeView(t time.Time, loc *time.Location, now time.Time) timeView {
	v := timeView{ISO: t.UTC().Format(time.RFC3339), Text: shortTime(t.UTC()) + " UTC", Rel: relTime(t, now)}
	if loc != nil && loc != time.UTC && loc.String() != "UTC" {
		v.Local = shortTime(t.In(loc)) + " " + loc.String()
		v.Zone = loc.String()
	}
	return v
}

func timeViewPtr(t *time.Time, loc *time.Location, now time.Time) *timeView {
	if t == nil || t.IsZero() {
		return nil
	}
	v := newTimeView(*t, loc, now)
	return &v
}

// shortTime formats t to the minute, or to the second when it has any.
func shortTime(t time.Time) string {
	if t.Second() != 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04")
}

// relTime says how far t is from now: "in 3h 5m", "2d ago".
func relTime(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		return "now"
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh %dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		s = fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// durationText formats a duration for a tooltip: "1.2s", "3m 4s", "2h 5m".
func durationText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm %ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	return fmt.Sprintf("%dh %dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// scheduleView is a DAG's schedule as pages show it (the template
// "schedule" in layout.html).
type scheduleView struct {
	Spec     string // dag.DAG.ScheduleText; "" for manual only
	Cron     string // the cron part; "" when it runs only on datasets
	Words    string // "every day at 03:00"
	Timezone string
	// Datasets are those it is scheduled on, each with its page; Any
	// when any of them is enough.
	Datasets []datasetLink
	Any      bool
}

func newScheduleView(g *dag.DAG) scheduleView {
	v := scheduleView{Spec: g.ScheduleText(), Cron: g.Schedule, Timezone: "UTC"}
	if g.Location != nil {
		v.Timezone = g.Location.String()
	}
	if g.Timetable != nil {
		v.Words = g.Timetable.Describe()
	}
	if g.Datasets != nil {
		v.Datasets, v.Any = newDatasetLinks(g.Datasets.URIs), g.Datasets.Any
	}
	return v
}

// nextRunView is the next scheduled run: its logical date, and when it is
// created (at the end of its data interval).
type nextRunView struct {
	LogicalDate timeView
	RunsAt      timeView
}

func newNextRunView(info scheduler.DAGInfo, now time.Time) *nextRunView {
	iv := info.NextDataInterval
	if iv == nil {
		return nil
	}
	return &nextRunView{
		LogicalDate: newTimeView(iv.Start, info.DAG.Location, now),
		RunsAt:      newTimeView(iv.End, info.DAG.Location, now),
	}
}

// dagRow is one DAG in the DAG list.
type dagRow struct {
	ID, Href, Description string
	Tags                  []string
	Schedule              scheduleView
	Next                  *nextRunView
	Paused, Stale         bool
	TaskCount             int
	// Trigger is the row's trigger button, written by writeTriggerButton.
	Trigger template.HTML
	// Runs are the recent runs as dots, oldest first, written by
	// writeRunDots: 1,000 DAGs have 10,000 of them.
	Runs template.HTML
}

// importErrorView is a DAG file with problems.
type importErrorView struct {
	File   string
	Errors []string // FILE:LINE:COL: message
	Stale  bool
}

// dagListView is the DAG list.
type dagListView struct {
	Rows         []dagRow
	ImportErrors []importErrorView
	// The filter: a substring of id, description or tags; a tag; and
	// "active" or "paused".
	Query, Tag, Status string
	Tags               []string // every tag, for the filter
	Total              int      // DAGs loaded
	CanOperate         bool
	// Self is the list's own URL, where a pause toggle comes back to.
	Self string
}

func (s *Server) dagsPage(c echo.Context) error {
	now := time.Now()
	infos := s.backend.DAGs()
	v := dagListView{
		Query:      strings.TrimSpace(c.QueryParam("q")),
		Tag:        c.QueryParam("tag"),
		Status:     c.QueryParam("status"),
		Total:      len(infos),
		CanOperate: mayOperate(c),
		Self:       c.Request().URL.RequestURI(),
	}
	if v.Status != "" && v.Status != "active" && v.Status != "paused" {
		return badRequest("status: want active or paused, got %q", v.Status)
	}
	q := strings.ToLower(v.Query)
	tags := map[string]bool{}
	shown := make([]scheduler.DAGInfo, 0, len(infos))
	for _, info := range infos {
		if info.DAG == nil {
			continue
		}
		for _, t := range info.DAG.Tags {
			tags[t] = true
		}
		if dagMatches(info, q, v.Tag, v.Status) {
			shown = append(shown, info)
		}
	}
	for t := range tags {
		v.Tags = append(v.Tags, t)
	}
	slices.Sort(v.Tags)

	ids := make([]string, len(shown))
	for i, info := range shown {
		ids[i] = info.DAG.ID
	}
	recent, err := s.backend.Store().RecentRuns(ids, dagListRuns)
	if err != nil {
		return err
	}
	v.Rows = make([]dagRow, len(shown))
	for i, info := range shown {
		g := info.DAG
		row := dagRow{
			ID:          g.ID,
			Href:        dagHref(g.ID),
			Description: g.Description,
			Tags:        g.Tags,
			Schedule:    newScheduleView(g),
			Next:        newNextRunView(info, now),
			Paused:      info.Paused,
			Stale:       info.Stale,
			TaskCount:   len(g.Tasks),
			Trigger:     writeTriggerButton(g.ID, len(g.Params) > 0, v.CanOperate),
			Runs:        writeRunDots(g.ID, recent[i]),
		}
		v.Rows[i] = row
	}
	for _, ie := range s.backend.ImportErrors() {
		iv := importErrorView{File: ie.File, Stale: ie.Stale}
		for _, e := range ie.Errors {
			iv.Errors = append(iv.Errors, e.Error())
		}
		v.ImportErrors = append(v.ImportErrors, iv)
	}
	return s.render(c, http.StatusOK, "dags", pageData{Title: "DAGs", Nav: "dags", Data: v})
}

// writeRunDots writes a DAG's recent runs (newest first) as dots, oldest
// first, each a link to its run.
func writeRunDots(dagID string, recent []store.RunDigest) template.HTML {
	if len(recent) == 0 {
		return ""
	}
	var b strings.Builder
	b.Grow(len(recent) * (150 + len(dagID)))
	for j := len(recent) - 1; j >= 0; j-- {
		r := recent[j]
		id, state := template.HTMLEscapeString(r.RunID), template.HTMLEscapeString(string(r.State))
		b.WriteString(`<a href="`)
		b.WriteString(template.HTMLEscapeString(runHref(dagID, r.RunID)))
		b.WriteString(`" title="`)
		b.WriteString(id)
		b.WriteString(" · ")
		b.WriteString(state)
		b.WriteString(`" data-run="`)
		b.WriteString(id)
		b.WriteString(`"><span class="dot" data-state="`)
		b.WriteString(state)
		b.WriteString(`"></span></a>`)
	}
	return template.HTML(b.String()) // #nosec G203 -- every value above is escaped
}

// writeTriggerButton writes a DAG list row's trigger button: for a DAG
// with params a link to its trigger form, where they are filled in;
// without, a button that triggers a run at once, through the list's
// shared form #trigger-now. Written rather than templated, as the run
// dots are, for a list of 1,000 DAGs.
func writeTriggerButton(dagID string, hasParams, canOperate bool) template.HTML {
	id, href := template.HTMLEscapeString(dagID), template.HTMLEscapeString(dagHref(dagID, "trigger"))
	var b strings.Builder
	b.Grow(160 + 2*len(id) + len(href))
	if hasParams {
		b.WriteString(`<a class="button trigger-run" href="`)
		b.WriteString(href)
		b.WriteString(`" title="Trigger a run: fill in its params" aria-label="Trigger `)
		b.WriteString(id)
		b.WriteString(`">▶</a>`)
		return template.HTML(b.String()) // #nosec G203 -- every value above is escaped
	}
	b.WriteString(`<button type="submit" form="trigger-now" formaction="`)
	b.WriteString(href)
	b.WriteString(`" class="trigger-run" data-confirm="Trigger a run of `)
	b.WriteString(id)
	b.WriteString(` now?" aria-label="Trigger `)
	b.WriteString(id)
	b.WriteString(` now"`)
	if !canOperate {
		b.WriteString(` disabled title="Triggering needs the operator role"`)
	}
	b.WriteString(`>▶</button>`)
	return template.HTML(b.String()) // #nosec G203 -- every value above is escaped
}

// dagMatches applies the DAG list's filter; q is lower case.
func dagMatches(info scheduler.DAGInfo, q, tag, status string) bool {
	g := info.DAG
	switch {
	case status == "active" && info.Paused, status == "paused" && !info.Paused:
		return false
	case tag != "" && !slices.Contains(g.Tags, tag):
		return false
	case q == "":
		return true
	case strings.Contains(strings.ToLower(g.ID), q), strings.Contains(strings.ToLower(g.Description), q):
		return true
	}
	for _, t := range g.Tags {
		if strings.Contains(strings.ToLower(t), q) {
			return true
		}
	}
	return false
}

// pauseDAG is the pause toggle: POST /dags/{dag}/pause with paused=true or
// false, then back to the page the form names in next.
func (s *Server) pauseDAG(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	var paused bool
	switch c.FormValue("paused") {
	case "true":
		paused = true
	case "false":
	default:
		return badRequest("paused: want true or false, got %q", c.FormValue("paused"))
	}
	if err := s.backend.SetPaused(c.Request().Context(), info.DAG.ID, paused); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, localPath(c.FormValue("next"), "/dags"))
}

// localPath returns p when it is a path on this server, else def: a form's
// "next" must not send the browser elsewhere.
func localPath(p, def string) string {
	if !isLocalPath(p) {
		return def
	}
	return p
}

// dagHeaderView is the header every tab of a DAG shows.
type dagHeaderView struct {
	ID, Description, File string
	Tags                  []string
	Schedule              scheduleView
	Next                  *nextRunView
	Paused, Stale         bool
	TaskCount             int
	// Tab is the tab shown: grid, graph, charts, calendar, source, trigger
	// or backfill.
	Tab        string
	Href       string // the grid's path, the DAG's own
	Self       string // the path of the tab shown, where the pause toggle returns
	CanOperate bool
	CSRF       string
}

// dagPage is what every tab of a DAG gets: the parts from dag_partials
// that it shows, already rendered, and the tab's own data.
type dagPage struct {
	Header template.HTML
	// Legend is the key to the task states, on the tabs that show them.
	Legend template.HTML
	Tab    any
}

// legendTabs are the tabs that show task states, and so their key.
var legendTabs = []string{"grid", "graph"}

// renderDAGTab renders a tab of a DAG's page with the header on top.
func (s *Server) renderDAGTab(c echo.Context, status int, info scheduler.DAGInfo, tab string, data any) error {
	g := info.DAG
	h := dagHeaderView{
		ID:          g.ID,
		Description: g.Description,
		File:        info.File,
		Tags:        g.Tags,
		Schedule:    newScheduleView(g),
		Next:        newNextRunView(info, time.Now()),
		Paused:      info.Paused,
		Stale:       info.Stale,
		TaskCount:   len(g.Tasks),
		Tab:         tab,
		Href:        dagHref(g.ID),
		Self:        c.Request().URL.Path,
		CanOperate:  mayOperate(c),
		CSRF:        csrfToken(c),
	}
	page := dagPage{Tab: data}
	var err error
	frag := c.Request().Header.Get(fragmentHeader)
	if frag == "" || frag == "dag-header" {
		if page.Header, err = s.partial("dag-header", h); err != nil {
			return err
		}
	}
	// The legend is in no live block: only the whole page shows it.
	if frag == "" && slices.Contains(legendTabs, tab) {
		if page.Legend, err = s.partial("legend", nil); err != nil {
			return err
		}
	}
	title := g.ID
	if tab != "grid" {
		title = g.ID + " · " + strings.ToUpper(tab[:1]) + tab[1:]
	}
	return s.render(c, status, "dag_"+tab, pageData{Title: title, Nav: "dags", Data: page, Events: eventsHref(g.ID, "")})
}

// dagPartials is the template set of the parts the tabs of a DAG share.
const dagPartials = "dag_partials"

// partial renders one of the parts in dag_partials.html, for a page to
// place as it is.
func (s *Server) partial(name string, data any) (template.HTML, error) {
	var buf bytes.Buffer
	if err := s.pages[dagPartials].ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("rendering %s: %w", name, err)
	}
	return template.HTML(buf.String()), nil // #nosec G203 -- html/template's output
}

// sourceView is the source tab.
type sourceView struct {
	Path string
	// Lines are the shown source's lines, without the last newline,
	// which TrailingNewline notes.
	Lines           []string
	TrailingNewline bool
	Changed         bool   // the file on disk is not the version loaded
	Err             string // why the source cannot be shown
	// Versions are the DAG's stored versions, newest first
	// (docs/reproducibility.md#dag-versions); Shown is the one shown, nil
	// for the file on disk.
	Versions []versionRow
	Shown    *versionRow
	// Diff, when two versions are compared, replaces Lines.
	Diff *sourceDiff
}

// versionRow is a DAG version as the source tab lists it.
type versionRow struct {
	Hash, Short string
	FirstSeen   timeView
	File        string
	GitCommit   string // shortened
	GitDirty    bool
	Loaded      bool // the version the DAG runs now
	Href        string
}

// sourceDiff is a unified diff of two versions' sources.
type sourceDiff struct {
	From, To *versionRow
	Hunks    []diffHunk
	Same     bool
}

type diffHunk struct {
	Header string // @@ -a,b +c,d @@
	Lines  []diffLine
}

type diffLine struct {
	Kind string // add, del or ctx
	Text string
}

func (s *Server) dagSourcePage(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	v := sourceView{Path: info.File}
	st := s.backend.Store()
	versions, err := st.DAGVersions(info.DAG.ID)
	if err != nil {
		return err
	}
	byHash := map[string]*versionRow{}
	now := time.Now()
	for _, ver := range versions {
		row := versionRow{Hash: ver.Hash, Short: shortHash(ver.Hash), FirstSeen: newTimeView(ver.FirstSeen, info.DAG.Location, now), File: ver.File,
			GitCommit: shortHash(ver.GitCommit), GitDirty: ver.GitDirty, Loaded: ver.Hash == info.DAG.Hash,
			Href: dagHref(info.DAG.ID, "source") + "?version=" + url.QueryEscape(ver.Hash)}
		v.Versions = append(v.Versions, row)
	}
	for i := range v.Versions {
		byHash[v.Versions[i].Hash] = &v.Versions[i]
	}
	q := c.QueryParams()
	find := func(param string) (*versionRow, error) {
		h := q.Get(param)
		row := byHash[h]
		if row == nil {
			return nil, notFound("DAG %s has no version %q", info.DAG.ID, h)
		}
		return row, nil
	}
	switch {
	case q.Has("from") || q.Has("to"):
		from, err := find("from")
		if err != nil {
			return err
		}
		to, err := find("to")
		if err != nil {
			return err
		}
		if v.Diff, err = s.diffVersions(from, to); err != nil {
			return err
		}
	case q.Has("version"):
		row, err := find("version")
		if err != nil {
			return err
		}
		src, err := st.DAGSource(row.Hash)
		if err != nil {
			return err
		}
		v.Shown = row
		v.Path = row.File
		v.setLines(src)
	default:
		src, err := readSource(info.DAG.File)
		if err != nil {
			v.Err = err.Error()
			break
		}
		sum := sha256.Sum256(src)
		v.setLines(src)
		v.Changed = info.DAG.Hash != "" && hex.EncodeToString(sum[:]) != info.DAG.Hash
	}
	return s.renderDAGTab(c, http.StatusOK, info, "source", v)
}

func (v *sourceView) setLines(src []byte) {
	text := string(src)
	v.TrailingNewline = strings.HasSuffix(text, "\n")
	if text = strings.TrimSuffix(text, "\n"); text != "" || !v.TrailingNewline {
		v.Lines = strings.Split(text, "\n")
	} else {
		v.Lines = []string{""}
	}
}

// diffVersions diffs the sources of two stored versions, three lines of
// context around each change.
func (s *Server) diffVersions(from, to *versionRow) (*sourceDiff, error) {
	a, err := s.backend.Store().DAGSource(from.Hash)
	if err != nil {
		return nil, err
	}
	b, err := s.backend.Store().DAGSource(to.Hash)
	if err != nil {
		return nil, err
	}
	d := &sourceDiff{From: from, To: to}
	edits := udiff.Strings(string(a), string(b))
	if len(edits) == 0 {
		d.Same = true
		return d, nil
	}
	u, err := udiff.ToUnifiedDiff(from.Short, to.Short, string(a), edits, 3)
	if err != nil {
		return nil, fmt.Errorf("diffing versions %s and %s: %w", from.Short, to.Short, err)
	}
	for _, h := range u.Hunks {
		dh := diffHunk{}
		var del, add int
		for _, l := range h.Lines {
			kind := "ctx"
			switch l.Kind {
			case udiff.Delete:
				kind = "del"
				del++
			case udiff.Insert:
				kind = "add"
				add++
			default:
				del++
				add++
			}
			dh.Lines = append(dh.Lines, diffLine{Kind: kind, Text: strings.TrimSuffix(l.Content, "\n")})
		}
		dh.Header = fmt.Sprintf("@@ -%d,%d +%d,%d @@", h.FromLine, del, h.ToLine, add)
		d.Hunks = append(d.Hunks, dh)
	}
	return d, nil
}

// shortHash shortens a hash for showing; the whole one is in links.
func shortHash(h string) string { return h[:min(len(h), 12)] }

// readSource reads a DAG file for the source tab.
func readSource(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading the DAG file: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, maxSourceBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the DAG file: %w", err)
	}
	if len(src) > maxSourceBytes {
		return nil, fmt.Errorf("the DAG file is larger than %d bytes", maxSourceBytes)
	}
	return src, nil
}

// storeState names a task instance's state for data-state; a cell without
// an instance is "none".
func storeState(st store.TaskState) string {
	if st == "" {
		return string(store.TaskNone)
	}
	return string(st)
}

// dagPageRoutes registers the DAG and backfill pages.
func (s *Server) dagPageRoutes() {
	get, post := http.MethodGet, http.MethodPost
	s.page(get, "/dags", s.dagsPage, RoleViewer)
	s.page(post, "/dags/:dag/pause", s.pauseDAG, RoleOperator)
	s.page(get, "/dags/:dag", s.dagGridPage, RoleViewer)
	s.page(get, "/dags/:dag/graph", s.dagGraphPage, RoleViewer)
	s.page(get, "/dags/:dag/charts", s.dagChartsPage, RoleViewer)
	s.page(get, "/dags/:dag/calendar", s.dagCalendarPage, RoleViewer)
	s.page(get, "/dags/:dag/source", s.dagSourcePage, RoleViewer)
	s.page(get, "/dags/:dag/trigger", s.dagTriggerPage, RoleViewer)
	s.page(post, "/dags/:dag/trigger", s.triggerDAG, RoleOperator)
	s.page(get, "/dags/:dag/backfill", s.dagBackfillPage, RoleViewer)
	s.page(post, "/dags/:dag/backfill", s.backfillDAG, RoleOperator)
	s.page(get, "/backfills", s.backfillsPage, RoleViewer)
	s.page(get, "/backfills/:id", s.backfillPage, RoleViewer)
	s.page(post, "/backfills/:id/cancel", s.cancelBackfillForm, RoleOperator)
}
