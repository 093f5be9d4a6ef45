package ui

import (
	"github.com/kilnhq/kiln/internal/suggest"
	"github.com/kilnhq/kiln/scheduler"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
)

func (s *Server) listDAGs(c echo.Context) error {
	infos, err := pageOf(c, s.backend.DAGs())
	if err != nil {
		return err
	}
	out := make([]DAG, len(infos))
	for i, info := range infos {
		out[i] = dagSummary(info)
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getDAG(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, dagDetail(info))
}

func (s *Server) patchDAG(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	var req PatchDAGRequest
	if err := decodeBody(c, &req, false); err != nil {
		return err
	}
	if req.Paused == nil {
		return badRequest("paused: required (true or false)")
	}
	if err := s.backend.SetPaused(c.Request().Context(), info.DAG.ID, *req.Paused); err != nil {
		return err
	}
	if now, ok := s.backend.DAG(info.DAG.ID); ok {
		info = now
	} else {
		info.Paused = *req.Paused
	}
	return c.JSON(http.StatusOK, dagDetail(info))
}

func (s *Server) listImportErrors(c echo.Context) error {
	ies, err := pageOf(c, s.backend.ImportErrors())
	if err != nil {
		return err
	}
	out := make([]ImportError, len(ies))
	for i, ie := range ies {
		errs := []*dag.Error(ie.Errors)
		if errs == nil {
			errs = []*dag.Error{}
		}
		out[i] = ImportError{File: ie.File, Errors: errs, Stale: ie.Stale}
	}
	return c.JSON(http.StatusOK, out)
}

// lookupDAG returns the DAG the request's {dag} names, or a 404 error.
func (s *Server) lookupDAG(c echo.Context) (scheduler.DAGInfo, error) {
	id, err := pathParam(c, "dag")
	if err != nil {
		return scheduler.DAGInfo{}, err
	}
	info, ok := s.backend.DAG(id)
	if !ok || info.DAG == nil {
		return scheduler.DAGInfo{}, s.dagNotFound(id)
	}
	return info, nil
}

func dagSummary(info scheduler.DAGInfo) DAG {
	g := info.DAG
	d := DAG{
		DAGID:       g.ID,
		Description: g.Description,
		Timezone:    "UTC",
		Tags:        nonNil(g.Tags),
		Paused:      info.Paused,
		File:        info.File,
		TaskCount:   len(g.Tasks),
		Params:      paramViews(g.Params),
		Stale:       info.Stale,
	}
	if sched := g.ScheduleText(); sched != "" {
		d.Schedule = &sched
	}
	if g.Location != nil {
		d.Timezone = g.Location.String()
	}
	if iv := info.NextDataInterval; iv != nil {
		d.NextDataInterval = &Interval{Start: iv.Start.UTC(), End: iv.End.UTC()}
	}
	return d
}

func dagDetail(info scheduler.DAGInfo) DAGDetail {
	g := info.DAG
	d := DAGDetail{
		DAG:            dagSummary(info),
		StartDate:      utcOrNil(g.StartDate),
		EndDate:        utcOrNil(g.EndDate),
		Catchup:        g.Catchup,
		MaxActiveRuns:  g.MaxActiveRuns,
		MaxActiveTasks: g.MaxActiveTasks,
		Tasks:          make([]Task, len(g.Tasks)),
	}
	for i, t := range g.Tasks {
		d.Tasks[i] = Task{
			TaskID:      t.ID,
			Plugin:      t.Plugin,
			DependsOn:   nonNil(t.DependsOn),
			TriggerRule: string(t.TriggerRule),
			Retries:     t.Retries,
			Queue:       t.Queue,
			Pool:        t.Pool,
			Group:       t.Group,
		}
	}
	for _, g := range g.Groups {
		d.Groups = append(d.Groups, Group{Name: g.Name, Description: g.Description, Tasks: g.Tasks})
	}
	return d
}

func paramViews(ps []*dag.Param) []Param {
	out := make([]Param, len(ps))
	for i, p := range ps {
		out[i] = Param{
			Name:        p.Name,
			Type:        p.Type,
			Required:    !p.HasDefault,
			Default:     p.Default,
			Enum:        p.Enum,
			Minimum:     p.Minimum,
			Maximum:     p.Maximum,
			Description: p.Description,
		}
	}
	return out
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// utc returns t in UTC, or nil when it is nil or zero.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	return utcOrNil(*t)
}

func utcOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// durationS is the seconds between start and end, or nil unless both are
// known.
func durationS(start, end *time.Time) *float64 {
	if start == nil || end == nil || start.IsZero() || end.IsZero() {
		return nil
	}
	d := end.Sub(*start).Seconds()
	return &d
}

// dagNotFound is the 404 of an unknown DAG id, with the closest loaded id
// as a hint.
func (s *Server) dagNotFound(id string) error {
	infos := s.backend.DAGs()
	ids := make([]string, 0, len(infos))
	for _, info := range infos {
		if info.DAG != nil {
			ids = append(ids, info.DAG.ID)
		}
	}
	return notFound("DAG %q not found%s", id, suggest.DidYouMean(id, ids))
}
