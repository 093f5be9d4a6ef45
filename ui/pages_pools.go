package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/kilnhq/kiln/store"
)

// The pools page lists the pools with how many of their slots the task
// instances running and queued in them take, and lets admins size, add
// and delete pools.
//
// Usage is counted from the store's task instances of running runs: only
// a running run has queued or running instances, and the store lists the
// active runs from an index, so the cost follows the work in flight, not
// the history. It is what the scheduler counts when it dispatches.

// poolPageRoutes registers the pools page and its forms.
func (s *Server) poolPageRoutes() {
	get, post := http.MethodGet, http.MethodPost
	s.page(get, "/pools", s.poolsPage, RoleViewer)
	s.page(post, "/pools", s.poolForm, RoleAdmin)
	s.page(post, "/pools/:name", s.poolForm, RoleAdmin)
	s.page(post, "/pools/:name/delete", s.deletePoolForm, RoleAdmin)
}

// poolRow is one pool on the pools page.
type poolRow struct {
	Name, Href string
	Slots      int
	// Running and Queued are the slots the pool's running and queued task
	// instances take; Used their sum. Waiting counts the slots of the
	// instances scheduled and waiting for room.
	Running, Queued, Used, Waiting int
	// Percent is Used of Slots, capped at 100, for the bar.
	Percent int
	Full    bool
	// Defined is false for a pool tasks name that was never created: it
	// has no slots, so its tasks wait.
	Defined     bool
	Deletable   bool
	Description string
	// Tasks names the loaded tasks that use the pool, as DAG.TASK.
	Tasks []string
}

// poolsView is the pools page.
type poolsView struct {
	Rows    []poolRow
	IsAdmin bool
}

func (s *Server) poolsPage(c echo.Context) error {
	st := s.backend.Store()
	pools, err := st.Pools()
	if err != nil {
		return err
	}
	usage, err := poolUsage(st)
	if err != nil {
		return err
	}
	users := map[string][]string{}
	for _, info := range s.backend.DAGs() {
		if info.DAG == nil {
			continue
		}
		for _, t := range info.DAG.Tasks {
			users[t.Pool] = append(users[t.Pool], info.DAG.ID+"."+t.ID)
		}
	}
	rows := make([]poolRow, 0, len(pools))
	seen := map[string]bool{}
	for _, p := range pools {
		seen[p.Name] = true
		rows = append(rows, newPoolRow(p.Name, p.Slots, true, usage[p.Name], users[p.Name]))
	}
	for name := range users {
		if !seen[name] {
			rows = append(rows, newPoolRow(name, 0, false, usage[name], users[name]))
		}
	}
	slices.SortFunc(rows, func(a, b poolRow) int { return strings.Compare(a.Name, b.Name) })
	v := poolsView{Rows: rows, IsAdmin: hasRole(c, RoleAdmin)}
	return s.render(c, http.StatusOK, "pools", pageData{Title: "Pools", Nav: "pools", Data: v})
}

// slotUse is what a pool's task instances take.
type slotUse struct{ running, queued, waiting int }

// poolUsage counts the slots the task instances of running runs take, by
// pool.
func poolUsage(st *store.Store) (map[string]slotUse, error) {
	runs, err := st.ActiveRuns()
	if err != nil {
		return nil, err
	}
	use := map[string]slotUse{}
	for _, r := range runs {
		if r.State != store.RunRunning {
			continue // a queued run has not dispatched anything
		}
		tis, err := st.TaskInstances(r.DAGID, r.RunID)
		if err != nil {
			return nil, err
		}
		for _, ti := range tis {
			if expandedTask(ti) {
				continue // its instances hold the slots
			}
			u := use[ti.Pool]
			switch ti.State {
			case store.TaskRunning:
				u.running += ti.PoolSlots
			case store.TaskQueued:
				u.queued += ti.PoolSlots
			case store.TaskScheduled:
				u.waiting += ti.PoolSlots
			default:
				continue
			}
			use[ti.Pool] = u
		}
	}
	return use, nil
}

func newPoolRow(name string, slots int, defined bool, u slotUse, tasks []string) poolRow {
	slices.Sort(tasks)
	r := poolRow{
		Name:      name,
		Href:      "/pools/" + url.PathEscape(name),
		Slots:     slots,
		Running:   u.running,
		Queued:    u.queued,
		Used:      u.running + u.queued,
		Waiting:   u.waiting,
		Defined:   defined,
		Deletable: defined && name != store.DefaultPool,
		Tasks:     tasks,
	}
	switch {
	case slots > 0:
		r.Percent = min(100, r.Used*100/slots)
	case r.Used > 0:
		r.Percent = 100
	}
	r.Full = r.Used >= slots && (slots > 0 || r.Waiting > 0)
	switch {
	case !defined:
		r.Description = "Not created: it has no slots, so its tasks wait until it is set."
	case name == store.DefaultPool:
		r.Description = fmt.Sprintf("Tasks that set no pool take their slots here; %d slots unless set.", store.DefaultPoolSlots)
	}
	switch n := len(tasks); {
	case n == 0:
		r.Description = strings.TrimSpace(r.Description + " No loaded task uses it.")
	case n == 1:
		r.Description = strings.TrimSpace(r.Description + " Used by " + tasks[0] + ".")
	default:
		r.Description = strings.TrimSpace(fmt.Sprintf("%s Used by %d tasks.", r.Description, n))
	}
	return r
}

// poolForm creates a pool or sets its slots: POST /pools with name and
// slots, or POST /pools/{name} with slots.
func (s *Server) poolForm(c echo.Context) error {
	name := c.FormValue("name")
	if c.Param("name") != "" {
		var err error
		if name, err = poolName(c); err != nil {
			return err
		}
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return badRequest("name: empty pool name")
	}
	slots, err := strconv.Atoi(strings.TrimSpace(c.FormValue("slots")))
	if err != nil || slots < 0 {
		return badRequest("slots: want 0 or more, got %q", c.FormValue("slots"))
	}
	if err := s.backend.SetPool(c.Request().Context(), name, slots); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/pools")
}

// deletePoolForm deletes a pool: POST /pools/{name}/delete.
func (s *Server) deletePoolForm(c echo.Context) error {
	name, err := poolName(c)
	if err != nil {
		return err
	}
	if err := s.backend.DeletePool(c.Request().Context(), name); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/pools")
}
