package dag

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// taskKeys are the keys a task may set; all but taskOnlyKeys may also be
// given under `defaults`, of the DAG or of a group.
var taskKeys = []string{"id", "description", "plugin", "with", "depends_on", "retries", "retry_delay",
	"retry_exponential_backoff", "max_retry_delay", "timeout", "queue", "pool", "pool_slots", "priority",
	"trigger_rule", "depends_on_past", "when", "env", "mode", "poke_interval", "sensor_timeout", "soft_fail",
	"on_failure", "on_success", "on_retry", "artifacts", "inputs", "cache",
	"outlets", "map", "max_map_length"}

// taskOnlyKeys name a task or its place in the graph, which no default
// can, or the datasets it updates: as a default, every task of a run
// would update them.
var taskOnlyKeys = []string{"id", "depends_on", "inputs", "outlets", "map"}

var sensorKeys = []string{"mode", "poke_interval", "sensor_timeout", "soft_fail"}

// rawTask is a task's fields with defaults merged, before the graph is known.
type rawTask struct {
	node   *node
	fields map[string]pair
	task   *Task
	// artifactNames are the names its `artifacts` declares, sorted (see
	// decoder.artifacts).
	artifactNames []string
	// cacheInherited is set when its `cache`, if any, comes from defaults.
	cacheInherited bool
}

// defaults decodes the `defaults` of the DAG or of a group, what naming it.
func (d *decoder) defaults(p pair, what string) map[string]pair {
	if !d.mapping(p.val, what) {
		return nil
	}
	defaults := d.fields(p.val, taskKeys, what)
	for _, k := range taskOnlyKeys {
		if dp, ok := defaults[k]; ok {
			d.errAt(dp.key, "%s cannot be given under %s", k, what)
			delete(defaults, k)
		}
	}
	return defaults
}

// tasks decodes the tasks; dagSecrets are the secrets the DAG's env
// refers to, which every task's environment gets.
func (d *decoder) tasks(g *DAG, f map[string]pair, dagSecrets map[string]bool) {
	var defaults map[string]pair
	if p, ok := f["defaults"]; ok {
		defaults = d.defaults(p, "defaults")
	}
	groups, memberOf := d.groups(f)
	p, ok := f["tasks"]
	if !ok {
		d.errAt(&node{line: 1, col: 1}, "no tasks: a DAG needs a `tasks` list")
		return
	}
	if p.val.kind != seqNode || len(p.val.items) == 0 {
		d.errAt(p.val, "tasks must be a non-empty list of tasks, got %s", p.val.describe())
		return
	}
	g.byID = make(map[string]*Task, len(p.val.items))
	g.order = make(map[string]int, len(p.val.items))
	raws := make([]*rawTask, 0, len(p.val.items))
	idNodes := make(map[string]*node, len(p.val.items))
	for _, it := range p.val.items {
		if !d.mapping(it, "a task") {
			continue
		}
		fields := d.fields(it, taskKeys, "task")
		_, ownCache := fields["cache"]
		var groupDefaults map[string]pair
		if p, ok := fields["id"]; ok {
			id, _ := p.val.str()
			if rg := memberOf[id]; rg != nil {
				groupDefaults = rg.defaults
			}
		}
		for _, defs := range [...]map[string]pair{groupDefaults, defaults} {
			for k, v := range defs {
				if _, set := fields[k]; !set {
					fields[k] = v
				}
			}
		}
		rt := &rawTask{node: it, fields: fields, task: d.taskScalars(it, fields), cacheInherited: !ownCache}
		rt.artifactNames = d.artifacts(rt.task, fields)
		if rt.task.ID == "" {
			continue
		}
		if first, dup := idNodes[rt.task.ID]; dup {
			d.errAt(fields["id"].val, "duplicate task id %q (first defined at line %d)", rt.task.ID, first.line)
			continue
		}
		idNodes[rt.task.ID] = fields["id"].val
		g.byID[rt.task.ID] = rt.task
		g.order[rt.task.ID] = len(g.Tasks)
		g.Tasks = append(g.Tasks, rt.task)
		raws = append(raws, rt)
	}
	d.groupTasks(g, groups)
	gr := d.graph(g, raws)
	d.groupMappings(g, gr, groups)
	params := d.declared
	for _, rt := range raws {
		t := rt.task
		sc := &scope{params: params, task: t.ID, upstream: func(up string) bool { return gr.upstreamOf(up, t.ID) },
			reads: map[OutputRef]bool{}, inputs: d.inputs(rt, raws, gr), paramsRead: map[string]bool{}}
		d.taskMapping(g, rt, sc)
		secrets := dagSecrets
		if _, ok := rt.fields["env"]; ok {
			secrets = maps.Clone(dagSecrets) // its env may add secrets of its own
		}
		d.taskTemplates(rt, sc, secrets)
		d.cache(t, rt.fields, sc, rt.cacheInherited)
		t.Secrets = slices.Sorted(maps.Keys(secrets))
		t.Reads = sortedReads(sc.reads)
		t.ParamsRead = slices.Sorted(maps.Keys(sc.paramsRead))
		csc := &scope{params: params, task: t.ID, callback: true,
			upstream: func(up string) bool { return up == t.ID || gr.upstreamOf(up, t.ID) }}
		t.Callbacks = d.callbacks(rt.fields, csc)
	}
}

// taskScalars decodes the keys that do not depend on other tasks.
func (d *decoder) taskScalars(n *node, f map[string]pair) *Task {
	t := &Task{
		Queue:       DefaultQueue,
		Pool:        DefaultPool,
		PoolSlots:   1,
		Priority:    DefaultPriority,
		TriggerRule: AllSuccess,
		RetryDelay:  DefaultRetryDelay,
	}
	if p, ok := f["id"]; ok {
		t.ID = d.name(p, taskIDRule, "task id")
	} else {
		d.errAt(n, "task has no id")
	}
	if p, ok := f["description"]; ok {
		t.Description, _ = d.str(p)
	}
	if p, ok := f["depends_on"]; ok {
		t.DependsOn = d.strList(p)
	}
	if p, ok := f["outlets"]; ok {
		t.Outlets = d.datasetURIs(p.val, "outlets")
	}
	if p, ok := f["retries"]; ok {
		t.Retries = d.integer(p, 0)
	}
	if p, ok := f["retry_exponential_backoff"]; ok {
		t.RetryExponentialBackoff = d.boolean(p)
	}
	if p, ok := f["depends_on_past"]; ok {
		t.DependsOnPast = d.boolean(p)
	}
	if p, ok := f["retry_delay"]; ok {
		t.RetryDelay = d.duration(p)
	}
	if p, ok := f["max_retry_delay"]; ok {
		t.MaxRetryDelay = d.duration(p)
	}
	if p, ok := f["timeout"]; ok {
		t.Timeout = d.duration(p)
	}
	if p, ok := f["queue"]; ok {
		t.Queue = d.name(p, queueRule, "queue")
	}
	if p, ok := f["pool"]; ok {
		t.Pool = d.name(p, poolRule, "pool")
	}
	if p, ok := f["pool_slots"]; ok {
		t.PoolSlots = d.integer(p, 1)
	}
	if p, ok := f["priority"]; ok {
		t.Priority = d.integer(p, -1_000_000)
	}
	if p, ok := f["trigger_rule"]; ok {
		if s, ok := d.str(p); ok {
			t.TriggerRule = TriggerRule(s)
			if !t.TriggerRule.Valid() {
				names := make([]string, len(TriggerRules))
				for i, r := range TriggerRules {
					names[i] = string(r)
				}
				d.errAt(p.val, "unknown trigger_rule %q%s", s, d.suggest(s, names))
			}
		}
	}
	d.plugin(t, n, f)
	return t
}

// plugin resolves the task's plugin and the sensor keys that depend on it.
func (d *decoder) plugin(t *Task, n *node, f map[string]pair) {
	p, ok := f["plugin"]
	if !ok {
		d.errAt(n, "task %q has no plugin: set `plugin` (for example plugin: shell)", t.ID)
		return
	}
	name, ok := d.str(p)
	if !ok {
		return
	}
	t.Plugin = name
	spec, known := d.catalog.Plugin(name)
	if !known {
		d.errAt(p.val, "%s", unknownPlugin(d.catalog, name))
	}
	if known && spec.Sensor {
		t.Sensor = &SensorConfig{Mode: ModeReschedule, PokeInterval: DefaultPokeInterval, Timeout: DefaultSensorTimeout}
	}
	for _, k := range sensorKeys {
		sp, set := f[k]
		if !set {
			continue
		}
		if t.Sensor == nil {
			if known {
				d.errAt(sp.key, "%s applies to sensor tasks only, and plugin %q is not a sensor", k, name)
			}
			continue
		}
		switch k {
		case "mode":
			if s, ok := d.str(sp); ok {
				t.Sensor.Mode = SensorMode(s)
				if t.Sensor.Mode != ModePoke && t.Sensor.Mode != ModeReschedule {
					d.errAt(sp.val, "mode must be poke or reschedule, got %q", s)
				}
			}
		case "poke_interval":
			t.Sensor.PokeInterval = d.duration(sp)
		case "sensor_timeout":
			t.Sensor.Timeout = d.duration(sp)
		case "soft_fail":
			t.Sensor.SoftFail = d.boolean(sp)
		}
	}
}

// taskTemplates compiles the task's `with`, `env` and `when` and checks
// `with` against the plugin's schema.
func (d *decoder) taskTemplates(rt *rawTask, sc *scope, secrets map[string]bool) {
	t, f := rt.task, rt.fields
	with, ok := f["with"]
	if ok && !d.mapping(with.val, "with") {
		ok = false
	}
	if ok {
		t.With, _ = d.compileValue(with.val, sc).(map[string]any)
		if t.Plugin == "shell" {
			d.checkShellQuoting(with.val)
		}
	}
	d.checkSchema(t.Plugin, with, rt.node, ok)
	if p, ok := f["env"]; ok {
		t.Env = d.env(p, sc, secrets)
	}
	if p, ok := f["when"]; ok {
		if src, ok := d.str(p); ok {
			wsc := sc
			if t.Map != nil && t.MapGroup == "" {
				cp := *sc
				cp.item, cp.noItem = false, noItemWhen
				wsc = &cp
			}
			c, col, err := compileWhen(src, wsc)
			if err != nil {
				d.errInExpr(p, col, err)
			}
			t.When = c
		}
	}
}

// errInExpr reports an error in the expression of p (a `when` or `map`)
// at its column col in the expression (1-based; 0 for the value's start).
func (d *decoder) errInExpr(p pair, col int, err error) {
	at := *p.val
	if col > 0 && !p.val.block {
		at.col += col - 1
		if p.val.quoted {
			at.col++
		}
	}
	d.errAt(&at, "%v", err)
}

// checkSchema validates a `with` mapping (or its absence) against the
// plugin's parameter schema, reporting each problem at its value.
func (d *decoder) checkSchema(plugin string, with pair, owner *node, present bool) {
	spec, ok := d.catalog.Plugin(plugin)
	if !ok || spec.Schema == nil {
		return
	}
	var v any = map[string]any{}
	at := owner
	if present {
		var ok bool
		if v, ok = d.value(with.val); !ok {
			return
		}
		at = with.val
	}
	err := spec.Schema.Validate(v)
	if err == nil {
		return
	}
	problems := schemaProblems(spec.Schema, err)
	if len(problems) > maxErrors-len(d.errs) {
		// Only some will be reported: pick them in an order of their own,
		// as the schema library finds them in the order of a Go map.
		slices.SortFunc(problems, func(a, b schemaProblem) int {
			return cmp.Or(slices.Compare(a.path, b.path), strings.Compare(a.key, b.key), strings.Compare(a.msg, b.msg))
		})
	}
	for _, pr := range problems {
		if d.full() {
			d.more = true // finding where the rest are would cost time
			break
		}
		n := at
		if present {
			n = nodeAt(with.val, pr.path)
			if k := findKey(n, pr.key); k != nil {
				n = k
			}
		}
		msg := pr.msg
		if pr.known != nil {
			msg += d.suggest(pr.key, pr.known)
		}
		d.errAt(n, "plugin %s: %s: %s", plugin, joinPath("with", pr.path), msg)
	}
}

// compileValue copies a `with` value, compiling every string as a template.
func (d *decoder) compileValue(n *node, sc *scope) any {
	if !d.charge(n) {
		return nil
	}
	switch n.kind {
	case mapNode:
		m := make(map[string]any, len(n.pairs))
		for _, p := range n.pairs {
			m[p.key.text] = d.compileValue(p.val, sc)
		}
		return m
	case seqNode:
		s := make([]any, len(n.items))
		for i, it := range n.items {
			s[i] = d.compileValue(it, sc)
		}
		return s
	}
	if s, ok := n.val.(string); ok {
		if t := d.template(n, s, sc); t != nil {
			return t
		}
		return nil
	}
	return n.val
}

var callbackStageKeys = []string{"plugin", "with"}

// callbacks decodes on_failure, on_success and on_retry.
func (d *decoder) callbacks(f map[string]pair, sc *scope) Callbacks {
	var cb Callbacks
	for _, c := range [...]struct {
		key string
		dst *[]*Callback
	}{{"on_failure", &cb.OnFailure}, {"on_success", &cb.OnSuccess}, {"on_retry", &cb.OnRetry}} {
		key, dst := c.key, c.dst
		p, ok := f[key]
		if !ok {
			continue
		}
		if p.val.kind != seqNode {
			d.errAt(p.val, "%s must be a list of stages, such as [{plugin: notify, with: {url: ...}}], got %s", key, p.val.describe())
			continue
		}
		for _, it := range p.val.items {
			if !d.mapping(it, key+" entries") {
				continue
			}
			cf := d.fields(it, callbackStageKeys, key+" stage")
			c := &Callback{}
			pp, ok := cf["plugin"]
			if !ok {
				d.errAt(it, "%s stage has no plugin", key)
				continue
			}
			if c.Plugin, ok = d.str(pp); !ok {
				continue
			}
			if _, known := d.catalog.Plugin(c.Plugin); !known {
				d.errAt(pp.val, "%s", unknownPlugin(d.catalog, c.Plugin))
				continue
			}
			with, present := cf["with"]
			if present && !d.mapping(with.val, "with") {
				continue
			}
			if present {
				c.With, _ = d.compileValue(with.val, sc).(map[string]any)
			}
			d.checkSchema(c.Plugin, with, it, present)
			*dst = append(*dst, c)
		}
	}
	return cb
}

var paramKeys = []string{"type", "default", "enum", "minimum", "maximum", "description"}

// params decodes the `params` mapping. scheduled says whether the DAG runs
// on a schedule, where every param needs a default.
func (d *decoder) params(p pair, scheduled bool) []*Param {
	if !d.mapping(p.val, "params") {
		return nil
	}
	var out []*Param
	envNames := map[string]string{} // KILN_PARAM_ name → param
	for _, kv := range p.val.pairs {
		name, _ := kv.key.val.(string)
		if !paramPattern.MatchString(name) {
			d.errAt(kv.key, "invalid param name %q: use letters, digits and _, not starting with a digit", kv.key.text)
			continue
		}
		env := ParamEnvName(name)
		if other, dup := envNames[env]; dup {
			d.errAt(kv.key, "params %s and %s would both be $%s: rename one", other, name, env)
			continue
		}
		envNames[env] = name
		d.declared[name] = true
		if kv.val.kind != mapNode {
			d.errAt(kv.val, "param %s must be a mapping such as {type: string, default: eu}, got %s", name, kv.val.describe())
			continue
		}
		if pr := d.param(name, kv.val, scheduled); pr != nil {
			out = append(out, pr)
		}
	}
	return out
}

func (d *decoder) param(name string, n *node, scheduled bool) *Param {
	f := d.fields(n, paramKeys, "param "+name)
	pr := &Param{Name: name}
	ok := true
	if tp, set := f["type"]; set {
		if s, isStr := d.str(tp); isStr {
			pr.Type = s
			if !contains(paramTypes, s) {
				d.errAt(tp.val, "param %s: unknown type %q (one of string, number, integer, boolean, array, object)", name, s)
				ok = false
			}
		}
	}
	if dp, set := f["description"]; set {
		pr.Description, _ = d.str(dp)
	}
	for _, b := range [...]struct {
		key string
		dst **float64
	}{{"minimum", &pr.Minimum}, {"maximum", &pr.Maximum}} {
		key, dst := b.key, b.dst
		bp, set := f[key]
		if !set {
			continue
		}
		if pr.Type != "" && pr.Type != "number" && pr.Type != "integer" {
			d.errAt(bp.key, "param %s: %s applies to number and integer params only", name, key)
			ok = false
			continue
		}
		x, isNum := number(bp.val)
		if !isNum {
			d.errAt(bp.val, "param %s: %s must be a number, got %s", name, key, bp.val.describe())
			ok = false
			continue
		}
		*dst = &x
	}
	if pr.Minimum != nil && pr.Maximum != nil && *pr.Minimum > *pr.Maximum {
		d.errAt(f["maximum"].val, "param %s: maximum %v is below minimum %v", name, *pr.Maximum, *pr.Minimum)
		ok = false
	}
	if ep, set := f["enum"]; set {
		if ep.val.kind != seqNode || len(ep.val.items) == 0 {
			d.errAt(ep.val, "param %s: enum must be a non-empty list, got %s", name, ep.val.describe())
			ok = false
		} else if v, valid := d.value(ep.val); valid {
			pr.Enum = v.([]any)
		}
	}
	if !ok {
		return nil
	}
	schema, err := compileParamSchema(pr)
	if err != nil {
		d.errAt(n, "param %s: %v", name, err)
		return nil
	}
	pr.schema = schema
	if ep, set := f["enum"]; set && pr.Type != "" {
		for _, it := range ep.val.items {
			if v, valid := d.value(it); valid {
				if err := pr.schema.Validate(v); err != nil {
					d.errAt(it, "param %s: enum value %s does not fit the param: %s", name, it.text, schemaMessage(pr.schema, err))
				}
			}
		}
	}
	dp, set := f["default"]
	if !set {
		if scheduled {
			d.errAt(n, "param %s has no default, which scheduled runs need", name)
		}
		return pr
	}
	v, valid := d.value(dp.val)
	if !valid {
		return nil
	}
	if err := pr.schema.Validate(v); err != nil {
		d.errAt(dp.val, "param %s: default %s breaks its schema: %s", name, dp.val.text, schemaMessage(pr.schema, err))
		return nil
	}
	pr.Default, pr.HasDefault = v, true
	return pr
}

func number(n *node) (float64, bool) {
	switch v := n.val.(type) {
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// sortedReads lists a task's reads by task, then key.
func sortedReads(reads map[OutputRef]bool) []OutputRef {
	if len(reads) == 0 {
		return nil
	}
	out := slices.Collect(maps.Keys(reads))
	slices.SortFunc(out, func(a, b OutputRef) int {
		return cmp.Or(strings.Compare(a.Task, b.Task), strings.Compare(a.Key, b.Key))
	})
	return out
}
