package ui

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/scheduler"
	"github.com/kilnhq/kiln/store"
)

// AllDAGs in place of a DAG id lists the runs of every DAG
// (GET /api/v1/dags/~/runs), as in Airflow's API. No DAG id contains "~".
const AllDAGs = "~"

// Paging of run listings.
const (
	defaultRunLimit = 50
	maxRunLimit     = 1000
)

var (
	runStates = []store.RunState{store.RunQueued, store.RunRunning, store.RunSuccess, store.RunFailed}
	runTypes  = []string{store.RunTypeScheduled, store.RunTypeManual, store.RunTypeBackfill, store.RunTypeDataset}
)

func (s *Server) listRuns(c echo.Context) error {
	dagID, err := pathParam(c, "dag")
	if err != nil {
		return err
	}
	q := store.RunQuery{
		DAGID:      dagID,
		State:      store.RunState(c.QueryParam("state")),
		RunType:    c.QueryParam("run_type"),
		BackfillID: c.QueryParam("backfill_id"),
	}
	if q.State != "" && !slices.Contains(runStates, q.State) {
		return badRequest("state: want one of queued, running, success, failed; got %q", q.State)
	}
	if q.RunType != "" && !slices.Contains(runTypes, q.RunType) {
		return badRequest("run_type: want one of scheduled, manual, backfill; got %q", q.RunType)
	}
	if q.Limit, err = queryInt(c, "limit", defaultRunLimit, 1, maxRunLimit); err != nil {
		return err
	}
	if q.Offset, err = queryInt(c, "offset", 0, 0, math.MaxInt32); err != nil {
		return err
	}
	if dagID == AllDAGs {
		q.DAGID = ""
	}
	st := s.backend.Store()
	runs, total, err := st.ListRuns(q)
	if err != nil {
		return err
	}
	if dagID != AllDAGs && total == 0 {
		// A DAG no longer loaded still shows the runs it had.
		if _, ok := s.backend.DAG(dagID); !ok {
			if n, err := st.CountRuns(dagID); err != nil {
				return err
			} else if n == 0 {
				return s.dagNotFound(dagID)
			}
		}
	}
	out := make([]Run, len(runs))
	for i, r := range runs {
		if out[i], err = s.runView(r); err != nil {
			return err
		}
	}
	c.Response().Header().Set("X-Total-Count", strconv.Itoa(total))
	return c.JSON(http.StatusOK, out)
}

func (s *Server) triggerRun(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	// TriggerRunRequest's fields, with the time as a string so that a bad
	// one is reported by name.
	var req struct {
		LogicalDate    *string        `json:"logical_date"`
		Params         map[string]any `json:"params"`
		LatestInterval bool           `json:"latest_interval"`
		NoCache        bool           `json:"no_cache"`
	}
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	treq := scheduler.TriggerRequest{Params: req.Params, LatestInterval: req.LatestInterval, NoCache: req.NoCache}
	if req.LogicalDate != nil {
		t, err := time.Parse(time.RFC3339, *req.LogicalDate)
		if err != nil {
			return badRequest("logical_date: want an RFC 3339 time such as 2026-01-31T03:00:00Z, got %q", *req.LogicalDate)
		}
		t = t.UTC()
		treq.LogicalDate = &t
	}
	if treq.Params != nil {
		dag.NormalizeNumbers(treq.Params)
	}
	run, err := s.backend.Trigger(c.Request().Context(), info.DAG.ID, treq)
	if err != nil {
		return err
	}
	view, err := s.runView(run)
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation,
		fmt.Sprintf("/api/v1/dags/%s/runs/%s", url.PathEscape(run.DAGID), url.PathEscape(run.RunID)))
	return c.JSON(http.StatusCreated, view)
}

func (s *Server) getRun(c echo.Context) error {
	var run *store.Run
	var err error
	if c.Param("dag") == AllDAGs {
		run, err = s.findRun(c)
	} else {
		run, err = s.lookupRun(c)
	}
	if err != nil {
		return err
	}
	view, err := s.runView(run)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, view)
}

// FailedTry says a task instance in state st ended its latest try failed:
// the run page and `kiln runs show` show the end of that try's log.
func FailedTry(st store.TaskState) bool {
	return st == store.TaskFailed || st == store.TaskUpForRetry
}

func (s *Server) clearTasks(c echo.Context) error {
	run, err := s.lookupRun(c)
	if err != nil {
		return err
	}
	var req ClearTasksRequest
	if err := decodeBody(c, &req, true); err != nil {
		return err
	}
	cleared, err := s.backend.Clear(c.Request().Context(), run.DAGID, run.RunID, scheduler.ClearRequest{
		Tasks:      req.Tasks,
		MapIndexes: req.MapIndexes,
		Downstream: req.Downstream,
		OnlyFailed: req.OnlyFailed,
		Latest:     req.Latest,
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ClearResult{Cleared: nonNil(cleared)})
}

// lookupRun returns the run the request's {dag} and {run} name, or a 404
// error.
func (s *Server) lookupRun(c echo.Context) (*store.Run, error) {
	dagID, err := pathParam(c, "dag")
	if err != nil {
		return nil, err
	}
	runID, err := pathParam(c, "run")
	if err != nil {
		return nil, err
	}
	run, err := s.backend.Store().GetRun(dagID, runID)
	if errors.Is(err, store.ErrNotFound) {
		if _, ok := s.backend.DAG(dagID); !ok {
			if n, cerr := s.backend.Store().CountRuns(dagID); cerr == nil && n == 0 {
				return nil, s.dagNotFound(dagID)
			}
		}
		return nil, notFound("run %q of DAG %q not found", runID, dagID)
	}
	return run, err
}

// findRun returns the run of any DAG whose id the request's {run} is
// (GET /api/v1/dags/~/runs/{run}): 404 when none has one, 409 when
// several DAGs do.
func (s *Server) findRun(c echo.Context) (*store.Run, error) {
	runID, err := pathParam(c, "run")
	if err != nil {
		return nil, err
	}
	runs, err := s.backend.Store().RunsWithID(runID)
	if err != nil {
		return nil, err
	}
	switch len(runs) {
	case 0:
		return nil, notFound("run %q not found in any DAG", runID)
	case 1:
		return runs[0], nil
	}
	dags := make([]string, len(runs))
	for i, r := range runs {
		dags[i] = r.DAGID
	}
	return nil, &apiError{http.StatusConflict, fmt.Sprintf("run %q is in more than one DAG (%s): name the DAG", runID, strings.Join(dags, ", "))}
}

// runView is a run with its task instances, in the DAG's task order when
// the DAG is loaded: one per task, a mapped task's being the one that
// stands for it (GET …/tasks lists its instances).
func (s *Server) runView(r *store.Run) (Run, error) {
	tis, err := s.backend.Store().TaskInstancesPerTask(r.DAGID, r.RunID)
	if err != nil {
		return Run{}, err
	}
	s.sortTaskInstances(r.DAGID, tis)
	return NewRun(r, tis), nil
}

// NewRun is run r as the API shows it, with its task instances tis in
// the order given; tis holds no instance of a mapped task.
func NewRun(r *store.Run, tis []*store.TaskInstance) Run {
	v := Run{
		DAGID:             r.DAGID,
		RunID:             r.RunID,
		State:             r.State,
		RunType:           r.RunType,
		LogicalDate:       r.LogicalDate.UTC(),
		DataIntervalStart: r.DataIntervalStart.UTC(),
		DataIntervalEnd:   r.DataIntervalEnd.UTC(),
		StartDate:         utc(r.StartDate),
		EndDate:           utc(r.EndDate),
		Params:            r.Params,
		Tasks:             make([]RunTask, len(tis)),
		BackfillID:        r.BackfillID,
		DAGVersion:        r.DAGHash,
		VersionChanges:    r.VersionChanges,
		TriggeringEvents:  r.TriggeringEvents,
	}
	if v.Params == nil {
		v.Params = map[string]any{}
	}
	for i, ti := range tis {
		v.Tasks[i] = RunTask{
			TaskID:      ti.TaskID,
			State:       ti.State,
			MapLength:   ti.MapLength,
			TryNumber:   ti.TryNumber,
			StartDate:   utc(ti.StartDate),
			EndDate:     utc(ti.EndDate),
			DurationS:   durationS(ti.StartDate, ti.EndDate),
			CacheResult: NewCacheResult(ti.CachedFrom),
			Artifacts:   ArtifactViews(ti.Artifacts),
		}
	}
	return v
}

// sortTaskInstances orders task instances as the DAG file lists their
// tasks, the instances of a mapped task after the one that stands for it
// by map index; instances of tasks the loaded DAG no longer has go last,
// by id.
func (s *Server) sortTaskInstances(dagID string, tis []*store.TaskInstance) {
	pos := func(string) int { return 0 }
	if info, ok := s.backend.DAG(dagID); ok && info.DAG != nil {
		pos = taskPositions(info.DAG)
	}
	slices.SortFunc(tis, func(a, b *store.TaskInstance) int {
		return cmp.Or(cmp.Compare(pos(a.TaskID), pos(b.TaskID)), strings.Compare(a.TaskID, b.TaskID), cmp.Compare(a.MapIndex, b.MapIndex))
	})
}

func taskPositions(g *dag.DAG) func(id string) int {
	idx := make(map[string]int, len(g.Tasks))
	for i, t := range g.Tasks {
		idx[t.ID] = i
	}
	return func(id string) int {
		if i, ok := idx[id]; ok {
			return i
		}
		return len(idx)
	}
}
