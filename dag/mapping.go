package dag

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// DefaultMaxMapLength bounds the list a `map` may yield when neither the
// task, its group nor the DAG sets max_map_length (docs/dag-format.md#mapping).
const DefaultMaxMapLength = 1024

// Mapping is a compiled `map` expression, of a task or of a group
// (docs/dag-format.md#mapping): it yields the list the task, or each task
// of the group, runs once per element of.
type Mapping struct {
	src  string
	prog *vm.Program
	// reads are the upstream outputs it names as outputs.TASK.KEY.
	reads []OutputRef
	// MaxLength is the longest list it may yield.
	MaxLength int
}

// String returns the expression's source.
func (m *Mapping) String() string { return m.src }

// MarshalText makes a mapping encode as its source.
func (m *Mapping) MarshalText() ([]byte, error) { return []byte(m.src), nil }

// Eval yields the list: the expression's value when it is a list, or a
// string holding a JSON array, as an output written as KEY=["a","b"] is.
// Anything else, and a list longer than MaxLength, is an error that names
// the expression.
func (m *Mapping) Eval(v Values, loc *time.Location) ([]any, error) {
	for _, r := range m.reads {
		out, _ := v.Outputs[r.Task].(map[string]any)
		if _, ok := out[r.Key]; !ok {
			what := "wrote no outputs (it did not run, or wrote nothing to $KILN_OUTPUT)"
			if len(out) > 0 {
				what = fmt.Sprintf("wrote no output %q; it wrote %s", r.Key, quotedKeys(out))
			}
			return nil, fmt.Errorf("map %q: task %q %s", m.src, r.Task, what)
		}
	}
	out, err := expr.Run(m.prog, whenEnv(v, loc))
	if err != nil {
		return nil, fmt.Errorf("map %q: %w", m.src, err)
	}
	list, err := asList(out)
	if err != nil {
		return nil, fmt.Errorf("map %q: %w", m.src, err)
	}
	if len(list) > m.MaxLength {
		return nil, fmt.Errorf("map %q yielded %d items, more than max_map_length %d: raise max_map_length on the task, its group or the DAG, or split the list", m.src, len(list), m.MaxLength)
	}
	return list, nil
}

// asList turns what a map expression yielded into a list.
func asList(v any) ([]any, error) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case nil:
		return nil, errors.New("yielded null, not a list")
	case string:
		s := strings.TrimSpace(x)
		if !strings.HasPrefix(s, "[") {
			return nil, fmt.Errorf("yielded the string %q, not a list (a string must hold a JSON array)", clipText(x, 60))
		}
		var list []any
		if err := json.Unmarshal([]byte(s), &list); err != nil {
			return nil, fmt.Errorf("yielded a string that is not a JSON array: %v", err)
		}
		return list, nil
	}
	rv := reflect.ValueOf(v)
	if k := rv.Kind(); k == reflect.Slice || k == reflect.Array {
		list := make([]any, rv.Len())
		for i := range list {
			list[i] = rv.Index(i).Interface()
		}
		return list, nil
	}
	return nil, fmt.Errorf("yielded %T, not a list", v)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// compileMapping compiles src and checks, as far as types are known at
// load, that it yields a list, and that the params and outputs it names
// exist where it is written. The column of a returned error is relative
// to the expression (1-based, 0 if unknown).
func compileMapping(src string, sc *scope) (*Mapping, int, error) {
	prog, err := expr.Compile(src, expr.Env(whenEnv0))
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fe.Column + 1, fmt.Errorf("map: %s", fe.Message)
		}
		return nil, 0, fmt.Errorf("map: %v", err)
	}
	root := prog.Node()
	if t := root.Type(); t != nil {
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Interface, reflect.String:
			// A string may hold a JSON array; a literal one is checked now.
		default:
			return nil, 0, fmt.Errorf("map must yield a list, and this expression yields %s", t)
		}
	}
	if s, ok := root.(*ast.StringNode); ok {
		if _, err := asList(s.Value); err != nil {
			return nil, 0, fmt.Errorf("map must yield a list: it %v", err)
		}
	}
	// The outputs it reads are not the task's Reads: each instance's
	// manifest records its own item (store.MapRecord), not the list.
	v := &refVisitor{sc: sc, reads: map[ast.Node][]string{}}
	ast.Walk(&root, v)
	if v.err != nil {
		return nil, 0, fmt.Errorf("map: %w", v.err)
	}
	m := &Mapping{src: src, prog: prog}
	for _, chain := range v.reads {
		if len(chain) == 2 {
			m.reads = append(m.reads, OutputRef{Task: chain[0], Key: chain[1]})
		}
	}
	return m, 0, nil
}

// groupMappings compiles the `map` of each group that has one. It may
// name the outputs of the tasks upstream of the whole group.
func (d *decoder) groupMappings(g *DAG, gr *graph, groups []*rawGroup) {
	for _, rg := range groups {
		if rg.mapping == nil {
			continue
		}
		gp := rg.group
		maxLen := g.MaxMapLength
		if rg.maxMapLength != nil {
			maxLen = d.integer(*rg.maxMapLength, 1)
		}
		// It may name a task upstream of each of the group's first tasks,
		// those with no upstream in the group.
		sc := &scope{params: d.declared, task: "group " + gp.Name, noItem: noItemMap, upstream: func(up string) bool {
			if t := g.byID[up]; t == nil || t.Group == gp.Name {
				return false
			}
			for _, id := range gp.Tasks {
				if !hasUpstreamIn(g, id, gp.Name) && !gr.upstreamOf(up, id) {
					return false
				}
			}
			return true
		}}
		gp.Map = d.mapExpr(*rg.mapping, sc, maxLen)
		for _, id := range gp.Tasks {
			if t := g.byID[id]; t != nil {
				t.Map, t.MapGroup = gp.Map, gp.Name
			}
		}
	}
}

// hasUpstreamIn reports whether a task depends on another task of its group.
func hasUpstreamIn(g *DAG, id, group string) bool {
	for _, up := range g.byID[id].DependsOn {
		if g.byID[up] != nil && g.byID[up].Group == group {
			return true
		}
	}
	return false
}

// taskMapping compiles the task's own `map`, and marks the task's scope
// mapped when it is mapped, by its own or its group's.
func (d *decoder) taskMapping(g *DAG, rt *rawTask, sc *scope) {
	t := rt.task
	p, ok := rt.fields["map"]
	switch {
	case ok && t.MapGroup != "":
		d.errAt(p.key, "task %s is in group %s, which is mapped: its tasks are mapped with the group, and a task of a mapped group cannot have a map of its own", t.ID, t.MapGroup)
	case ok:
		maxLen := g.MaxMapLength
		if mp, ok := rt.fields["max_map_length"]; ok {
			maxLen = d.integer(mp, 1)
		}
		msc := *sc
		msc.noItem = noItemMap
		t.Map = d.mapExpr(p, &msc, maxLen)
	}
	sc.item = t.Map != nil
}

// Why .item and .map_index are not known.
const (
	noItemUnmapped = "is set in a mapped task only: give the task (or its group) a `map`"
	noItemWhen     = "is not known to the `when` of a mapped task, evaluated once before it expands (the tasks of a mapped group evaluate theirs per branch)"
	noItemMap      = "is not known to a `map`: it is what the map yields"
)

// mapExpr compiles a `map` value.
func (d *decoder) mapExpr(p pair, sc *scope, maxLen int) *Mapping {
	src, ok := d.str(p)
	if !ok {
		return nil
	}
	m, col, err := compileMapping(src, sc)
	if err != nil {
		d.errInExpr(p, col, err)
		return nil
	}
	m.MaxLength = maxLen
	return m
}
