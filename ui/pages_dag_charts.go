package ui

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// The charts tab (charts.go draws them) over the last ?runs=N runs, 25
// unless asked, as the grid.

// chartsView is the charts tab.
type chartsView struct {
	DAGID                       string
	RunDuration, TaskDuration   chart
	Landing                     chart
	TasksLeftOut, TasksWithTime int
	// Runs is how many runs the charts show; Sizes the choices.
	Runs  int
	Sizes []gridSize
}

func (s *Server) dagChartsPage(c echo.Context) error {
	info, err := s.lookupDAG(c)
	if err != nil {
		return err
	}
	n, err := queryInt(c, "runs", defaultGridRuns, 1, maxGridRuns)
	if err != nil {
		return err
	}
	g := info.DAG
	runs, tasks, _, err := s.recentRuns(g.ID, n, 0)
	if err != nil {
		return err
	}
	cr := make([]chartRun, len(runs))
	durs, landing := make([]chartValue, len(runs)), make([]chartValue, len(runs))
	for i, r := range runs {
		cr[i] = chartRun{RunID: r.RunID, Href: runHref(g.ID, r.RunID), State: string(r.State), LogicalDate: r.LogicalDate}
		durs[i], landing[i] = runDuration(r), landingTime(r)
	}
	// A series per task of the DAG as loaded, in file order.
	series := make([]taskSeries, len(g.Tasks))
	for k, t := range g.Tasks {
		series[k] = taskSeries{TaskID: t.ID, Values: make([]chartValue, len(runs))}
	}
	for i, tis := range tasks {
		for j := range tis {
			if k := g.TaskIndex(tis[j].TaskID); k >= 0 {
				series[k].Values[i] = taskDuration(&tis[j])
			}
		}
	}
	v := chartsView{
		DAGID:       g.ID,
		RunDuration: layoutBars(cr, durs, "ran"),
		Landing:     layoutBars(cr, landing, "landed"),
		Runs:        len(runs),
	}
	v.TaskDuration, v.TasksLeftOut = layoutLines(cr, series)
	v.RunDuration.ID, v.RunDuration.Label = "chart-run-duration", "Duration of each run, from its start to its end"
	v.Landing.ID, v.Landing.Label = "chart-landing", "Time from the end of each run's data interval to the run's end"
	v.TasksWithTime = len(v.TaskDuration.Lines) + v.TasksLeftOut
	v.Sizes = gridSizes(n)
	return s.renderDAGTab(c, http.StatusOK, info, "charts", v)
}
