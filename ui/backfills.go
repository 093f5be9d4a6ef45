package ui

import (
	"errors"
	"github.com/kilnhq/kiln/dag"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// UserHeader carries who asks for a change, as the CLI knows them
// ($USER@host); a backfill records it as requested_by. Until the API
// authenticates, it is the client's word.
const UserHeader = "X-Kiln-User"

// defaultRequester is requested_by when a request does not say who asks.
const defaultRequester = "api"

// maxRequesterLen bounds what requested_by keeps of the header.
const maxRequesterLen = 200

var reprocessModes = []string{store.ReprocessNone, store.ReprocessFailed, store.ReprocessCompleted}

func (s *Server) createBackfill(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	var req CreateBackfillRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	loc := info.DAG.Location
	if loc == nil {
		loc = time.UTC
	}
	from, err := rangeBound("from", req.From, loc, false)
	if err != nil {
		return err
	}
	to, err := rangeBound("to", req.To, loc, true)
	if err != nil {
		return err
	}
	if from.After(to) {
		return badRequest("from: %s is after to %s", req.From, req.To)
	}
	if req.Reprocess != "" && !slices.Contains(reprocessModes, req.Reprocess) {
		return badRequest("reprocess: want none, failed or completed; got %q", req.Reprocess)
	}
	breq := scheduler.BackfillRequest{
		From:        from.UTC(),
		To:          to.UTC(),
		Reprocess:   req.Reprocess,
		Reverse:     req.Reverse,
		Params:      req.Params,
		DryRun:      req.DryRun,
		RequestedBy: requester(c),
		NoCache:     req.NoCache,
	}
	if req.MaxActiveRuns != nil {
		if *req.MaxActiveRuns < 1 {
			return badRequest("max_active_runs: want at least 1, got %d", *req.MaxActiveRuns)
		}
		breq.MaxActiveRuns = *req.MaxActiveRuns
	}
	if breq.Params != nil {
		dag.NormalizeNumbers(breq.Params)
	}
	bf, err := s.backend.Backfill(c.Request().Context(), info.DAG.ID, breq)
	if err != nil {
		return err
	}
	if req.DryRun {
		return c.JSON(http.StatusOK, backfillView(bf))
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/backfills/"+url.PathEscape(bf.ID))
	return c.JSON(http.StatusCreated, backfillView(bf))
}

func (s *Server) listBackfills(c echo.Context) error {
	dagID := c.QueryParam("dag")
	bfs, err := s.backend.Store().Backfills(dagID)
	if err != nil {
		return err
	}
	if dagID != "" && len(bfs) == 0 {
		if _, ok := s.backend.DAG(dagID); !ok {
			return s.dagNotFound(dagID)
		}
	}
	if bfs, err = pageOf(c, bfs); err != nil {
		return err
	}
	out := make([]BackfillSummary, len(bfs))
	for i, bf := range bfs {
		out[i] = backfillSummary(bf)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getBackfill(c echo.Context) error {
	bf, err := s.lookupBackfill(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, backfillView(bf))
}

// lookupBackfill returns the backfill the request's {id} names, or a 404
// error.
func (s *Server) lookupBackfill(c echo.Context) (*store.Backfill, error) {
	id, err := pathParam(c, "id")
	if err != nil {
		return nil, err
	}
	bf, err := s.backend.Store().GetBackfill(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("backfill %q not found", id)
	}
	return bf, err
}

func (s *Server) cancelBackfill(c echo.Context) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	bf, err := s.backend.CancelBackfill(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, backfillView(bf))
}

// rangeBound reads the from or to of a backfill: an RFC 3339 time, or a
// date in loc. A date stands for its whole day: from is the day's first
// instant, to its last (the next day's start minus 1 ns), so that a range
// of dates includes both ends whatever time of day the schedule ticks.
func rangeBound(field, s string, loc *time.Location, end bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, badRequest("%s: required; want a date such as 2026-01-31 (in the DAG's timezone, %s) or an RFC 3339 time", field, loc)
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, s, loc)
	if err != nil {
		return time.Time{}, badRequest("%s: want a date such as 2026-01-31 (in the DAG's timezone, %s) or an RFC 3339 time such as 2026-01-31T03:00:00Z, got %q", field, loc, s)
	}
	if !end {
		return d, nil
	}
	y, m, day := d.Date()
	return time.Date(y, m, day+1, 0, 0, 0, 0, loc).Add(-time.Nanosecond), nil
}

// requester is who asks for a backfill, for requested_by: the signed-in
// user or token when auth is on; otherwise what the client says in
// X-Kiln-User (the CLI sends the local user's name).
func requester(c echo.Context) string {
	if p := principal(c); p != nil && p.Name != "" {
		return p.Name
	}
	r := c.Request()
	who := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(r.Header.Get(UserHeader)))
	if who == "" {
		return defaultRequester
	}
	if len(who) > maxRequesterLen {
		who = strings.ToValidUTF8(who[:maxRequesterLen], "")
	}
	return who
}

func backfillSummary(bf *store.Backfill) BackfillSummary {
	c := bf.Counts()
	v := BackfillSummary{
		ID:            bf.ID,
		DAGID:         bf.DAGID,
		From:          bf.From.UTC(),
		To:            bf.To.UTC(),
		Reprocess:     bf.Reprocess,
		Reverse:       bf.Reverse,
		MaxActiveRuns: bf.MaxActiveRuns,
		Params:        bf.Params,
		RequestedBy:   bf.RequestedBy,
		State:         bf.State,
		CreatedAt:     bf.CreatedAt.UTC(),
		EndDate:       utc(bf.EndDate),
		Counts: BackfillCounts{
			Total: c.Total, Pending: c.Pending, Queued: c.Queued, Running: c.Running,
			Success: c.Success, Failed: c.Failed, Skipped: c.Skipped,
		},
	}
	for _, d := range bf.Dates {
		ld := d.LogicalDate.UTC()
		if v.FirstDate == nil || ld.Before(*v.FirstDate) {
			v.FirstDate = &ld
		}
		if v.LastDate == nil || ld.After(*v.LastDate) {
			v.LastDate = &ld
		}
	}
	if v.Params == nil {
		v.Params = map[string]any{}
	}
	return v
}

func backfillView(bf *store.Backfill) Backfill {
	v := Backfill{BackfillSummary: backfillSummary(bf), Dates: make([]BackfillDate, len(bf.Dates))}
	for i, d := range bf.Dates {
		bd := BackfillDate{LogicalDate: d.LogicalDate.UTC(), Action: d.Action, Reason: d.Reason}
		if d.RunID != "" {
			id := d.RunID
			bd.RunID = &id
		}
		if d.Started && d.State != "" {
			st := d.State
			bd.State = &st
		}
		v.Dates[i] = bd
	}
	return v
}
