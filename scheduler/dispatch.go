package scheduler

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/internal/secrets"
	"github.com/kilnhq/kiln/internal/wire"
	"github.com/kilnhq/kiln/plugins/dagsensor"
	"github.com/kilnhq/kiln/store"
)

// schedule admits queued runs, advances running ones and dispatches the
// task instances that are ready.
func (s *Scheduler) schedule(now time.Time) {
	// With backfills active this goes twice: once to start runs, once to
	// see the runs that ended in this turn and start the next ones at once.
	for range 2 {
		s.driveBackfills(now)
		s.admit(now)
		for _, ar := range s.active {
			s.advance(ar, now)
		}
		if len(s.backfills) == 0 {
			break
		}
	}
	s.dispatch(now)
	// A task ended inside dispatch (a dag_sensor poked here, a template
	// error): its downstream may be ready now, not at the next wake-up.
	for i := 0; s.t.endedInDispatch && i < 8; i++ {
		s.t.endedInDispatch = false
		for _, ar := range s.active {
			s.advance(ar, now)
		}
		s.dispatch(now)
	}
	// Still more: a chain of cached tasks, each ending at its dispatch.
	// The next turn goes on at once, after this one's commit.
	s.t.more = s.t.endedInDispatch
}

type candidate struct {
	ar *activeRun
	t  *dag.Task
	ti *store.TaskInstance
}

// dispatch queues scheduled task instances while pools and max_active_tasks
// allow, higher priority first, then older runs, then file order.
func (s *Scheduler) dispatch(now time.Time) {
	poolUsed := map[string]int{}
	dagUsed := map[string]int{}
	backfillQueued := 0
	var cands []candidate
	for _, ar := range s.active {
		if ar.run.State != store.RunRunning {
			continue
		}
		for _, t := range ar.dag.Tasks {
			ti := ar.tis[t.ID]
			if !expanded(ti) {
				cands = consider(ar, t, ti, cands, poolUsed, dagUsed, &backfillQueued)
				continue
			}
			if ti.State.Finished() {
				continue // settled: none of its instances waits or runs
			}
			for _, in := range ar.instances(t.ID) {
				cands = consider(ar, t, in, cands, poolUsed, dagUsed, &backfillQueued)
			}
		}
	}
	if len(cands) == 0 {
		return
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if ab, bb := isBackfill(a.ar.run), isBackfill(b.ar.run); ab != bb {
			return bb // backfills never go before scheduled and manual runs
		}
		if a.ti.Priority != b.ti.Priority {
			return a.ti.Priority > b.ti.Priority
		}
		if !a.ar.run.LogicalDate.Equal(b.ar.run.LogicalDate) {
			return a.ar.run.LogicalDate.Before(b.ar.run.LogicalDate)
		}
		return compareInstances(a.ar.dag, a, b) < 0
	})
	past := map[tiKey]bool{}
	for _, c := range cands {
		if dagUsed[c.ti.DAGID] >= c.ar.dag.MaxActiveTasks {
			continue
		}
		if poolUsed[c.ti.Pool]+c.ti.PoolSlots > s.poolSize(c.ti.Pool) {
			continue
		}
		if isBackfill(c.ar.run) && backfillQueued >= backfillQueuedCap {
			continue
		}
		if c.t.DependsOnPast && !c.ar.run.IgnoreDependsOnPast && !s.pastDone(c.ar, c.t, past) {
			continue
		}
		if isBackfill(c.ar.run) {
			backfillQueued++
		}
		poolUsed[c.ti.Pool] += c.ti.PoolSlots
		dagUsed[c.ti.DAGID]++
		s.queue(c.ar, c.t, c.ti, now)
	}
}

// consider counts a queued or running instance against its pool and DAG,
// and adds a scheduled one to the candidates.
func consider(ar *activeRun, t *dag.Task, ti *store.TaskInstance, cands []candidate, poolUsed, dagUsed map[string]int, backfillQueued *int) []candidate {
	switch ti.State {
	case store.TaskQueued, store.TaskRunning:
		poolUsed[ti.Pool] += ti.PoolSlots
		dagUsed[ti.DAGID]++
		if ti.State == store.TaskQueued && isBackfill(ar.run) {
			*backfillQueued++
		}
	case store.TaskScheduled:
		cands = append(cands, candidate{ar, t, ti})
	}
	return cands
}

func (s *Scheduler) poolSize(name string) int {
	if n, ok := s.pools[name]; ok {
		return n
	}
	if name == store.DefaultPool {
		return store.DefaultPoolSlots
	}
	return 0 // an unknown pool has no slots until `kiln pools set` creates it
}

// pastDone reports whether the task's instance in the DAG's previous run
// (by logical date) succeeded or was skipped, or there is none
// (depends_on_past, docs/dag-format.md#depending-on-the-previous-run).
func (s *Scheduler) pastDone(ar *activeRun, t *dag.Task, memo map[tiKey]bool) bool {
	k := tiKey{ar.run.DAGID, ar.run.RunID, t.ID}
	if v, ok := memo[k]; ok {
		return v
	}
	var prev *store.Run
	for _, o := range s.active {
		if o.run.DAGID == ar.run.DAGID && o.run.LogicalDate.Before(ar.run.LogicalDate) &&
			(prev == nil || o.run.LogicalDate.After(prev.LogicalDate)) {
			prev = o.run
		}
	}
	if r, err := s.cfg.Store.PreviousRun(ar.run.DAGID, ar.run.LogicalDate); err == nil && (prev == nil || r.LogicalDate.After(prev.LogicalDate)) {
		prev = r
	}
	ok := true
	if prev != nil {
		var state store.TaskState
		if o := s.active[runKey{prev.DAGID, prev.RunID}]; o != nil && o.tis[t.ID] != nil {
			state = o.tis[t.ID].State
		} else if ti, err := s.cfg.Store.GetTaskInstance(prev.DAGID, prev.RunID, t.ID); err == nil {
			state = ti.State
		} else {
			state = store.TaskSuccess // the task did not exist then
		}
		ok = state == store.TaskSuccess || state == store.TaskSkipped
	}
	memo[k] = ok
	return ok
}

// queue starts a new try of ti: renders its templates and hands the
// assignment to the turn. A template error fails the try at once, with the
// error in the try's log (docs/dag-format.md#templates).
func (s *Scheduler) queue(ar *activeRun, t *dag.Task, ti *store.TaskInstance, now time.Time) {
	// A sensor rescheduled between pokes goes on with the same try.
	repoke := t.Sensor != nil && ti.Pokes > 0
	if !repoke {
		ti.TryNumber++
		ti.StartDate = nil
		if t.Sensor != nil {
			ti.FirstPoke = timePtr(now.UTC())
		}
	}
	ti.State = store.TaskQueued
	ti.QueuedAt = timePtr(now.UTC())
	ti.EndDate, ti.Worker, ti.Error = nil, "", ""
	s.putTI(ti)
	k := tryKeyOf(ti)
	tr := s.tryOf(k)
	if tr == nil {
		tr = &store.Try{DAGID: ti.DAGID, RunID: ti.RunID, TaskID: ti.TaskID, MapIndex: ti.MapIndex, Number: ti.TryNumber, QueuedAt: now.UTC()}
	}
	tr.State = store.TaskQueued
	s.track(tr, false)
	s.putTry(tr)
	if t.Sensor != nil {
		if !now.Before(sensorDeadline(t, ti)) {
			s.sensorTimedOut(ar, t, ti, now)
			return
		}
		ti.Pokes++
		if t.Plugin == dagsensor.Name {
			s.pokeDAGSensor(ar, t, ti, now)
			return
		}
	}
	a, v, err := s.render(ar, t, ti, now)
	if err != nil {
		msg := fmt.Sprintf("rendering the task: %v", err)
		s.noteIdle(k, msg)
		s.tryFailed(ar, ti, msg, nil, now)
		return
	}
	if t.Sensor != nil {
		a.Sensor = &wire.Sensor{
			Reschedule:   t.Sensor.Mode == dag.ModeReschedule,
			PokeInterval: t.Sensor.PokeInterval,
			Deadline:     sensorDeadline(t, ti),
		}
		a.Poke = ti.Pokes
		a.LogOffset = s.logs.size(k)
	}
	tr.Manifest = s.manifest(ar, t, v, a)
	if t.Cache != nil {
		hit, err := s.consultCache(ar, t, ti, tr, v, a, now)
		if err != nil {
			msg := fmt.Sprintf("rendering the task: %v", err)
			s.noteIdle(k, msg)
			s.tryFailed(ar, ti, msg, nil, now)
			return
		}
		if hit {
			return
		}
	}
	s.t.assign = append(s.t.assign, a)
}

// values are what the templates, `when` and `map` of task t's instance
// ti see for one try. A mapped task's outputs are the list of its
// instances' (each instance of a mapped group sees its own branch's);
// an instance of a mapped task sees its item and index.
func (s *Scheduler) values(ar *activeRun, t *dag.Task, ti *store.TaskInstance, try int) dag.Values {
	outputs := map[string]any{}
	for _, up := range ar.dag.Tasks {
		uti := ar.tis[up.ID]
		switch {
		case up == t:
			// Its own: only its downstream read them.
		case ti.MapIndex >= 0 && t.MapGroup != "" && up.MapGroup == t.MapGroup:
			if in := ar.tis[store.InstanceKey(up.ID, ti.MapIndex)]; in != nil && in.Outputs != nil {
				outputs[up.ID] = in.Outputs
			}
		case expanded(uti):
			outputs[up.ID] = ar.outputList(up.ID)
		case uti != nil && uti.Outputs != nil:
			outputs[up.ID] = uti.Outputs
		}
	}
	return dag.Values{
		Mapped: ti.MapIndex >= 0, Item: ti.Item, MapIndex: ti.MapIndex,
		DAGID: ar.run.DAGID, TaskID: t.ID, RunID: ar.run.RunID, TryNumber: try,
		LogicalDate:       ar.run.LogicalDate,
		DataIntervalStart: ar.run.DataIntervalStart,
		DataIntervalEnd:   ar.run.DataIntervalEnd,
		Params:            ar.run.Params,
		Outputs:           outputs,
		Env:               map[string]string{},
		TriggeringEvents:  triggeringEvents(ar.run.TriggeringEvents),
	}
}

// triggeringEvents are a run's dataset events as templates see them,
// .triggering_events (docs/dag-format.md#datasets).
func triggeringEvents(events []store.DatasetEvent) []map[string]any {
	out := make([]map[string]any, len(events))
	for i, e := range events {
		extra := e.Extra
		if extra == nil {
			extra = map[string]any{}
		}
		out[i] = map[string]any{
			"uri": e.URI, "time": e.Time.UTC().Format(time.RFC3339Nano),
			"source_dag_id": e.SourceDAGID, "source_run_id": e.SourceRunID, "source_task_id": e.SourceTaskID,
			"extra": extra,
		}
	}
	return out
}

// render builds the assignment of the current try of ti, and returns it
// with the values its templates saw.
func (s *Scheduler) render(ar *activeRun, t *dag.Task, ti *store.TaskInstance, now time.Time) (*wire.Assignment, dag.Values, error) {
	v := s.values(ar, t, ti, ti.TryNumber)
	mask, err := s.resolveSecrets(t.Secrets, &v)
	if err != nil {
		return nil, v, err
	}
	inputs, err := resolveInputs(ar, t, ti, &v)
	if err != nil {
		return nil, v, err
	}
	loc := ar.dag.Location
	withMap, err := renderTask(ar.dag, t, &v)
	if err != nil {
		return nil, v, err
	}
	env := s.kilnEnv(t, v, loc)
	return &wire.Assignment{
		TryKey:    tryKeyOf(ti),
		Queue:     ti.Queue,
		Plugin:    t.Plugin,
		With:      withMap,
		Env:       env,
		Mask:      mask,
		Timeout:   t.Timeout,
		LogLimit:  s.cfg.LogLimit,
		Heartbeat: s.cfg.HeartbeatTimeout / 6,
		QueuedAt:  now.UTC(),
		Artifacts: t.Artifacts,
		Inputs:    inputs,
	}, v, nil
}

// renderTask renders the DAG's and the task's env into v.Env, in that
// order, then the task's with, which sees that env.
func renderTask(d *dag.DAG, t *dag.Task, v *dag.Values) (map[string]any, error) {
	data := v.Data(d.Location)
	for _, vars := range [][]dag.EnvVar{d.Env, t.Env} {
		for _, e := range vars {
			val, err := e.Value.Render(data)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v.Env[e.Name] = val // data["env"] is this map: later values see earlier ones
		}
	}
	with, err := dag.RenderValue(t.With, data)
	if err != nil {
		return nil, fmt.Errorf("with.%w", err)
	}
	withMap, _ := with.(map[string]any)
	return withMap, nil
}

// resolveSecrets looks up the named secrets, which a task's env refers to,
// and returns their values for the worker to mask in the log. They are
// read at each try, so a rotated secret needs no restart.
func (s *Scheduler) resolveSecrets(names []string, v *dag.Values) ([]string, error) {
	if len(names) == 0 {
		return nil, nil
	}
	src := s.cfg.Secrets
	if src == nil {
		src = secrets.Source{}
	}
	v.Secrets = make(map[string]string, len(names))
	mask := make([]string, 0, len(names))
	for _, name := range names {
		val, err := src.Lookup(name)
		if err != nil {
			return nil, err
		}
		v.Secrets[name] = val
		if val != "" {
			mask = append(mask, val)
		}
	}
	return mask, nil
}

// kilnEnv is a task's environment: its rendered env and the KILN_* values
// of docs/dag-format.md#environment-variables (the worker adds KILN_OUTPUT
// and the inputs). A cached task sees only the params its templates read,
// which its cache key covers (docs/artifacts.md#what-the-key-covers).
func (s *Scheduler) kilnEnv(t *dag.Task, v dag.Values, loc *time.Location) map[string]string {
	env := make(map[string]string, len(v.Env)+8)
	for k, val := range v.Env {
		env[k] = val
	}
	for name, val := range v.Params {
		if t != nil && t.Cache != nil && !slices.Contains(t.ParamsRead, name) {
			continue
		}
		env[dag.ParamEnvName(name)] = dag.ParamText(val)
	}
	ld := v.LogicalDate.In(loc)
	env["KILN_DAG_ID"] = v.DAGID
	env["KILN_TASK_ID"] = v.TaskID
	env["KILN_RUN_ID"] = v.RunID
	env["KILN_TRY_NUMBER"] = strconv.Itoa(v.TryNumber)
	env["KILN_DS"] = ld.Format(time.DateOnly)
	env["KILN_TS"] = ld.Format(time.RFC3339)
	env["KILN_DATA_INTERVAL_START"] = v.DataIntervalStart.In(loc).Format(time.RFC3339)
	env["KILN_DATA_INTERVAL_END"] = v.DataIntervalEnd.In(loc).Format(time.RFC3339)
	if v.Mapped {
		env["KILN_MAP_INDEX"] = strconv.Itoa(v.MapIndex)
	}
	return env
}
