package dag

import (
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kilnhq/kiln/internal/suggest"
)

// decoder turns a node tree into a DAG, collecting every problem it finds
// instead of stopping at the first.
type decoder struct {
	file    string
	catalog Catalog
	errs    ErrorList
	warns   ErrorList
	budget  int // nodes left to expand, against alias bombs
	root    *node
	// freeText are the params whose value may be any string (shellsafe.go).
	freeText map[string]bool

	// more is set when a problem was left out, the list being full.
	more bool
	// suggestSteps counts the steps of edit distance spent on suggestions.
	suggestSteps int
	// declared holds the name of every param the file declares, also of
	// those whose declaration has a problem: templates that use them are
	// not reported as using an unknown param.
	declared map[string]bool
}

// maxErrors bounds the problems reported for one file. Beyond a hundred,
// nobody reads them, and finding where each is and what to suggest would
// make the time to check a file grow with the square of its size.
const maxErrors = 100

func (d *decoder) errAt(n *node, format string, args ...any) {
	if d.full() {
		d.more = true
		return
	}
	d.errs = append(d.errs, &Error{File: d.file, Line: n.line, Col: n.col, Msg: fmt.Sprintf(format, args...)})
}

// warnAt records a problem that does not stop the DAG from loading.
func (d *decoder) warnAt(n *node, format string, args ...any) {
	d.warns = append(d.warns, &Error{File: d.file, Line: n.line, Col: n.col, Msg: "warning: " + fmt.Sprintf(format, args...)})
}

// full reports whether the file has all the problems it may report.
func (d *decoder) full() bool { return len(d.errs) >= maxErrors }

var (
	envNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	paramPattern   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

var dagKeys = []string{"id", "description", "schedule", "timezone", "start_date", "end_date", "catchup",
	"max_active_runs", "max_active_tasks", "max_map_length", "paused", "tags", "params", "env", "defaults", "groups", "tasks",
	"on_failure", "on_success", "on_retry"}

// fields indexes a mapping's pairs by key, reporting keys not in known.
// Top-level keys starting with x- are extension fields, free for anchors
// and notes, as in Compose files.
func (d *decoder) fields(m *node, known []string, what string) map[string]pair {
	out := make(map[string]pair, len(m.pairs))
	for _, p := range m.pairs {
		k, ok := p.key.val.(string)
		if !ok {
			d.errAt(p.key, "%s keys are strings, got %s", what, p.key.describe())
			continue
		}
		if !contains(known, k) && !(what == "DAG" && strings.HasPrefix(k, "x-")) {
			var hint string
			switch {
			case contains(known, "with") && (k == "command" || contains(keyAliases[k], "command")):
				hint = " (a plugin's parameters go under with: — with: {command: ...})"
			case what == "DAG" && (k == "datasets" || k == "dataset"):
				hint = ": datasets that trigger the DAG go under schedule, as in schedule: {datasets: [URI, …]}, or with a cron too, schedule: {cron: EXPR, datasets: [URI, …]}"
			case what == "DAG" && k == "outlets":
				hint = ": outlets are a task's, given on the task that updates the datasets"
			case what == "schedule" && isCronSpec(p.val):
				hint = fmt.Sprintf(": a cron expression goes under cron, as in schedule: {cron: %q}", p.val.val)
			default:
				hint = d.suggest(k, known)
			}
			d.errAt(p.key, "unknown key %q in %s%s", k, what, hint)
			continue
		}
		out[k] = p
	}
	return out
}

// mapping checks that n is a mapping.
func (d *decoder) mapping(n *node, what string) bool {
	if n.kind != mapNode {
		d.errAt(n, "%s must be a mapping, got %s", what, n.describe())
		return false
	}
	return true
}

func (d *decoder) str(p pair) (string, bool) {
	s, ok := p.val.str()
	if !ok || p.val.kind != scalarNode {
		d.errAt(p.val, "%s must be a string, got %s", p.key.text, p.val.describe())
	}
	return s, ok
}

func (d *decoder) boolean(p pair) bool {
	b, ok := p.val.val.(bool)
	if !ok || p.val.kind != scalarNode {
		d.errAt(p.val, "%s must be true or false, got %s", p.key.text, p.val.describe())
	}
	return b
}

func (d *decoder) integer(p pair, minimum int) int {
	var n int64
	switch v := p.val.val.(type) {
	case int64:
		n = v
	case uint64:
		n = math.MaxInt64
	default:
		d.errAt(p.val, "%s must be an integer, got %s", p.key.text, p.val.describe())
		return minimum
	}
	if p.val.kind != scalarNode {
		d.errAt(p.val, "%s must be an integer, got %s", p.key.text, p.val.describe())
		return minimum
	}
	if n < int64(minimum) || n > math.MaxInt32 {
		d.errAt(p.val, "%s must be between %d and %d, got %d", p.key.text, minimum, math.MaxInt32, n)
		return minimum
	}
	return int(n)
}

func (d *decoder) duration(p pair) time.Duration {
	v, _ := d.parseDuration(p, time.ParseDuration, "30s or 1h30m")
	return v
}

// parseDuration decodes a duration with parse; example names two values
// it takes, for messages. ok is false when there was a problem to report.
func (d *decoder) parseDuration(p pair, parse func(string) (time.Duration, error), example string) (v time.Duration, ok bool) {
	s, ok := p.val.val.(string)
	if !ok || p.val.kind != scalarNode {
		d.errAt(p.val, "%s must be a duration such as %s, got %s", p.key.text, example, p.val.describe())
		return 0, false
	}
	v, err := parse(s)
	if err != nil {
		d.errAt(p.val, "%s: bad duration %q: want a number with a unit, such as %s", p.key.text, s, example)
		return 0, false
	}
	if v < 0 {
		d.errAt(p.val, "%s must not be negative, got %s", p.key.text, s)
		return 0, false
	}
	return v, true
}

func (d *decoder) strList(p pair) []string {
	if p.val.kind != seqNode {
		d.errAt(p.val, "%s must be a list, such as [a, b], got %s", p.key.text, p.val.describe())
		return nil
	}
	out := make([]string, 0, len(p.val.items))
	for _, it := range p.val.items {
		s, ok := it.str()
		if !ok || it.kind != scalarNode {
			d.errAt(it, "%s entries must be strings, got %s", p.key.text, it.describe())
			continue
		}
		out = append(out, s)
	}
	return out
}

// name decodes a name that rule governs (names.go).
func (d *decoder) name(p pair, rule nameRule, what string) string {
	s, ok := d.str(p)
	if ok && !rule.ok(s) {
		d.errAt(p.val, "invalid %s %q: use %s", what, s, rule.what)
	}
	return s
}

// decodeDAG decodes the root mapping of a DAG file.
func (d *decoder) decodeDAG(root *node, defaultID string) *DAG {
	if !d.mapping(root, "a DAG file") {
		return nil
	}
	f := d.fields(root, dagKeys, "DAG")
	g := &DAG{
		ID:             defaultID,
		idLine:         1,
		idCol:          1,
		Location:       time.UTC,
		MaxActiveRuns:  DefaultMaxActiveRuns,
		MaxActiveTasks: DefaultMaxActiveTasks,
		MaxMapLength:   DefaultMaxMapLength,
	}
	if p, ok := f["id"]; ok {
		g.ID = d.name(p, dagIDRule, "DAG id")
		g.idLine, g.idCol = p.val.line, p.val.col
	} else if !dagIDRule.ok(defaultID) {
		d.errAt(root, "the file name gives DAG id %q, which is not valid: set `id` (%s)", defaultID, dagIDRule.what)
	}
	if p, ok := f["description"]; ok {
		g.Description, _ = d.str(p)
	}
	if p, ok := f["timezone"]; ok {
		if s, ok := d.str(p); ok {
			loc, err := loadLocation(s)
			if err != nil {
				d.errAt(p.val, "unknown timezone %q: use an IANA name such as Europe/Berlin", s)
			} else {
				g.Location = loc
			}
		}
	}
	if p, ok := f["start_date"]; ok {
		g.StartDate = d.date(p, g.Location)
	}
	if p, ok := f["end_date"]; ok {
		g.EndDate = d.date(p, g.Location)
		if !g.StartDate.IsZero() && !g.EndDate.IsZero() && g.EndDate.Before(g.StartDate) {
			d.errAt(p.val, "end_date %s is before start_date %s", g.EndDate.Format(time.RFC3339), g.StartDate.Format(time.RFC3339))
		}
	}
	d.schedule(g, f)
	if p, ok := f["catchup"]; ok {
		g.Catchup = d.boolean(p)
	}
	if p, ok := f["paused"]; ok {
		g.Paused = d.boolean(p)
	}
	if p, ok := f["max_active_runs"]; ok {
		g.MaxActiveRuns = d.integer(p, 1)
	}
	if p, ok := f["max_active_tasks"]; ok {
		g.MaxActiveTasks = d.integer(p, 1)
	}
	if p, ok := f["max_map_length"]; ok {
		g.MaxMapLength = d.integer(p, 1)
	}
	if p, ok := f["tags"]; ok {
		g.Tags = d.strList(p)
	}
	if p, ok := f["params"]; ok {
		g.Params = d.params(p, g.Timetable != nil || g.Datasets != nil)
	}
	sc := &scope{params: d.declared}
	d.freeText = freeTextParams(g.Params)
	secrets := map[string]bool{}
	if p, ok := f["env"]; ok {
		g.Env = d.env(p, sc, secrets)
	}
	d.tasks(g, f, secrets)
	d.selfTriggering(g, f)
	for _, t := range g.Tasks {
		for _, name := range t.Secrets {
			secrets[name] = true
		}
	}
	g.Secrets = slices.Sorted(maps.Keys(secrets))
	g.Callbacks = d.callbacks(f, &scope{params: sc.params, callback: true})
	return g
}

// dateLayouts are the accepted forms of start_date and end_date; the ones
// without an offset are read in the DAG's timezone.
var dateLayouts = []string{time.DateOnly, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04:05", "2006-01-02 15:04"}

func (d *decoder) date(p pair, loc *time.Location) time.Time {
	s, ok := p.val.str()
	if !ok || p.val.kind != scalarNode {
		d.errAt(p.val, "%s must be a date (2026-01-31) or an RFC 3339 time, got %s", p.key.text, p.val.describe())
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.In(loc)
	}
	for _, layout := range dateLayouts {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t
		}
	}
	d.errAt(p.val, "%s: bad date %q: want 2026-01-31 or an RFC 3339 time such as 2026-01-31T03:00:00Z", p.key.text, s)
	return time.Time{}
}

var locations sync.Map // name → *time.Location; LoadLocation reads a file per call

func loadLocation(name string) (*time.Location, error) {
	if l, ok := locations.Load(name); ok {
		return l.(*time.Location), nil
	}
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("timezone %q is not an IANA zone name", name)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	locations.Store(name, loc)
	return loc, nil
}

// env decodes an `env` mapping; its values may refer to secrets, whose
// names are added to secrets.
func (d *decoder) env(p pair, sc *scope, secrets map[string]bool) []EnvVar {
	if !d.mapping(p.val, p.key.text) {
		return nil
	}
	esc := *sc
	esc.secrets = secrets
	sc = &esc
	out := make([]EnvVar, 0, len(p.val.pairs))
	for _, kv := range p.val.pairs {
		name, _ := kv.key.val.(string)
		if !envNamePattern.MatchString(name) {
			d.errAt(kv.key, "invalid environment variable name %q", kv.key.text)
			continue
		}
		s, ok := kv.val.str()
		if !ok || kv.val.kind != scalarNode {
			d.errAt(kv.val, "env %s must be a string, got %s", name, kv.val.describe())
			continue
		}
		if t := d.template(kv.val, s, sc); t != nil {
			out = append(out, EnvVar{Name: name, Value: t})
		}
	}
	return out
}

// template compiles a string value, reporting errors at its position.
func (d *decoder) template(n *node, src string, sc *scope) *Template {
	t, problems := compileTemplate(src, sc)
	for _, pr := range problems {
		at := *n
		switch {
		case pr.pos >= 0:
			at.line, at.col = templatePos(n, src, pr.pos)
		case n.block && pr.line > 0:
			at.line += pr.line
		}
		d.errAt(&at, "%s", pr.msg)
	}
	return t
}

// templatePos is the place in the file of byte off of the template src,
// the text of scalar n: exact in a literal block (|) and in a plain
// scalar on one line; the scalar's own place elsewhere, where quotes,
// escapes and folding move the text.
func templatePos(n *node, src string, off int) (line, col int) {
	before := src[:off]
	switch {
	case n.indent > 0:
		nl := strings.Count(before, "\n")
		return n.line + 1 + nl, n.indent + off - (strings.LastIndexByte(before, '\n') + 1)
	case !n.block && !n.quoted && !strings.Contains(src, "\n"):
		return n.line, n.col + off
	}
	return n.line, n.col
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggestBudget bounds the steps of edit distance one file's suggestions
// may cost: a large file naming many unknown tasks would otherwise compare
// each name with every task id. Past it, problems come without suggestion.
const suggestBudget = 20_000_000

// keyAliases are the names other tools (Airflow, Argo, Dagu, GitHub Actions)
// give keys that Kiln spells otherwise, too far from Kiln's to be found by
// edit distance. suggest offers the Kiln key when it is one of the known.
var keyAliases = map[string][]string{
	"cmd":               {"command"},
	"run":               {"command"},
	"script":            {"command"},
	"retry":             {"retries"},
	"max_retries":       {"retries"},
	"depends":           {"depends_on"},
	"needs":             {"depends_on"},
	"upstream":          {"depends_on"},
	"dependencies":      {"depends_on"},
	"timeout":           {"timeout", "sensor_timeout"},
	"cron":              {"schedule"},
	"schedule_interval": {"schedule", "cron"},
	"interval":          {"cron"},
	"timetable":         {"cron"},
	"tz":                {"timezone"},
	"environment":       {"env"},
	"params":            {"with"},
	"args":              {"with"},
	"type":              {"plugin"},
	"operator":          {"plugin"},
	"executor":          {"plugin"},
	"name":              {"id"},
	"memoize":           {"cache"},
}

// suggest returns ` (did you mean "x"?)` for a known key that s is a
// common alias of, or that is one edit away from s (two for names of five
// letters or more, whose typos are more often two); else "".
func (d *decoder) suggest(s string, known []string) string {
	if d.full() {
		return ""
	}
	for _, alias := range keyAliases[s] {
		if alias != s && contains(known, alias) {
			return fmt.Sprintf(" (did you mean %q?)", alias)
		}
	}
	best, bestDist := "", 3
	if len(s) < 5 {
		bestDist = 2
	}
	for _, k := range known {
		if max(len(s)-len(k), len(k)-len(s)) >= bestDist {
			continue // the distance is at least the difference in length
		}
		if d.suggestSteps += len(s) * len(k); d.suggestSteps > suggestBudget {
			return ""
		}
		if dist := suggest.Distance(s, k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// value converts a node to plain Go values (for schema checks and
// defaults), charging the decoder's budget so aliases cannot blow it up.
func (d *decoder) value(n *node) (any, bool) {
	if !d.charge(n) {
		return nil, false
	}
	switch n.kind {
	case mapNode:
		m := make(map[string]any, len(n.pairs))
		for _, p := range n.pairs {
			k, ok := p.key.val.(string)
			if !ok {
				d.errAt(p.key, "keys must be strings, got %s", p.key.describe())
				return nil, false
			}
			v, ok := d.value(p.val)
			if !ok {
				return nil, false
			}
			m[k] = v
		}
		return m, true
	case seqNode:
		s := make([]any, 0, len(n.items))
		for _, it := range n.items {
			v, ok := d.value(it)
			if !ok {
				return nil, false
			}
			s = append(s, v)
		}
		return s, true
	}
	return n.val, true
}

// charge counts one expanded node against the budget, reporting once
// when it runs out.
func (d *decoder) charge(n *node) bool {
	d.budget--
	if d.budget == -1 {
		if distinctNodes(d.root, nodeBudget+1) > nodeBudget {
			d.errAt(n, "file too large: more than %d values", nodeBudget)
		} else {
			d.errAt(n, "value too large: aliases expand to more than %d values", nodeBudget)
		}
	}
	return d.budget >= 0
}

// distinctNodes counts the nodes of the tree under n, each shared node
// (an alias's target) once, stopping at limit.
func distinctNodes(n *node, limit int) int {
	seen := map[*node]bool{}
	var walk func(*node)
	walk = func(n *node) {
		if n == nil || seen[n] || len(seen) >= limit {
			return
		}
		seen[n] = true
		for _, p := range n.pairs {
			walk(p.key)
			walk(p.val)
		}
		for _, it := range n.items {
			walk(it)
		}
	}
	walk(n)
	return len(seen)
}

// nodeBudget bounds how many nodes one file's values may expand to.
const nodeBudget = 200_000

// nodeAt finds the node at a JSON-pointer-like path below n, or the deepest
// existing ancestor when the path leads nowhere (a missing property).
func nodeAt(n *node, path []string) *node {
	for _, seg := range path {
		var next *node
		switch n.kind {
		case mapNode:
			next = lookup(n, seg)
		case seqNode:
			var i int
			if _, err := fmt.Sscanf(seg, "%d", &i); err == nil && i >= 0 && i < len(n.items) {
				next = n.items[i]
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// findKey returns the first key node named key at or below n, or nil.
func findKey(n *node, key string) *node {
	if key == "" {
		return nil
	}
	for _, p := range n.pairs {
		if p.key.text == key {
			return p.key
		}
	}
	for _, p := range n.pairs {
		if k := findKey(p.val, key); k != nil {
			return k
		}
	}
	for _, it := range n.items {
		if k := findKey(it, key); k != nil {
			return k
		}
	}
	return nil
}

func joinPath(prefix string, path []string) string {
	if len(path) == 0 {
		return prefix
	}
	return prefix + "." + strings.Join(path, ".")
}
