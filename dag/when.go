package dag

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/vm"
)

// Condition is a compiled `when` expression (docs/dag-format.md#when).
type Condition struct {
	src  string
	prog *vm.Program
}

// String returns the expression's source.
func (c *Condition) String() string { return c.src }

// MarshalText makes a condition encode as its source.
func (c *Condition) MarshalText() ([]byte, error) { return []byte(c.src), nil }

// Eval runs the condition over the values of a try.
func (c *Condition) Eval(v Values, loc *time.Location) (bool, error) {
	out, err := expr.Run(c.prog, whenEnv(v, loc))
	if err != nil {
		return false, fmt.Errorf("when %q: %w", c.src, err)
	}
	return out.(bool), nil
}

// whenVars are the values `when` and `map` expressions see. A struct, not
// a map, so that a field of type any (item) is checked as one, whatever
// the value it holds when the expression is compiled.
type whenVars struct {
	Params      map[string]any `expr:"params"`
	Outputs     map[string]any `expr:"outputs"`
	DS          string         `expr:"ds"`
	LogicalDate time.Time      `expr:"logical_date"`
	DAGID       string         `expr:"dag_id"`
	RunID       string         `expr:"run_id"`
	// A list, never nil, as templates see it (docs/dag-format.md#datasets).
	TriggeringEvents []map[string]any `expr:"triggering_events"`
	// Item and MapIndex are a mapped instance's (docs/dag-format.md#mapping).
	Item     any `expr:"item"`
	MapIndex int `expr:"map_index"`
}

func whenEnv(v Values, loc *time.Location) whenVars {
	ld := v.LogicalDate.In(loc)
	return whenVars{
		Params:           orEmpty(v.Params),
		Outputs:          orEmpty(v.Outputs),
		DS:               ld.Format(time.DateOnly),
		LogicalDate:      ld,
		DAGID:            v.DAGID,
		RunID:            v.RunID,
		TriggeringEvents: append([]map[string]any{}, v.TriggeringEvents...),
		Item:             v.Item,
		MapIndex:         v.MapIndex,
	}
}

// whenEnv0 is the environment conditions are type-checked against: the
// same for every condition, so a compiled program depends on its source
// alone.
var whenEnv0 = whenEnv(Values{}, time.UTC)

// whenPrograms caches compiled conditions by source. The same condition
// (params.region == "eu") is often written on many tasks and in many
// files, and compiling one costs as much as the rest of its task. Programs
// are safe for concurrent use.
var whenPrograms = newCompileCache[*vm.Program](1024)

// whenOptions are the options conditions are compiled with.
var whenOptions = []expr.Option{expr.Env(whenEnv0), expr.AsBool()}

// whenConfigs holds expr configurations for compiling conditions.
// expr.Compile builds one for every expression, copying expr's table of
// builtins and reflecting over the environment: two thirds of the cost of
// compiling a condition, for a result that depends on whenOptions alone. A
// configuration caches types while it checks an expression, so each is
// used by one compilation at a time.
var whenConfigs = sync.Pool{New: func() any {
	cfg := conf.CreateNew()
	for _, opt := range whenOptions {
		opt(cfg)
	}
	for name := range cfg.Disabled {
		delete(cfg.Builtins, name)
	}
	cfg.Check()
	return cfg
}}

// compileProgram is expr.Compile(src, whenOptions...) with a configuration
// from whenConfigs: the steps of expr.Compile after it builds one.
// TestCompileProgram holds the two to the same programs and errors.
func compileProgram(src string) (*vm.Program, error) {
	cfg := whenConfigs.Get().(*conf.Config)
	defer whenConfigs.Put(cfg)
	tree, err := checker.ParseCheck(src, cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Optimize {
		if err := optimizer.Optimize(&tree.Node, cfg); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Bind(tree.Source)
			}
			return nil, err
		}
	}
	return compiler.Compile(tree, cfg)
}

// compileWhen compiles src as a boolean expression and checks that the
// params and outputs it names exist where it is written. The column of a
// returned error is relative to the expression (1-based, 0 if unknown).
func compileWhen(src string, sc *scope) (*Condition, int, error) {
	prog, ok := whenPrograms.get(src)
	if !ok {
		// src may share memory with a larger string, which the
		// cache would keep alive through its key and the program's source.
		own := strings.Clone(src)
		var err error
		if prog, err = compileProgram(own); err != nil {
			var fe *file.Error
			if errors.As(err, &fe) {
				return nil, fe.Column + 1, fmt.Errorf("when: %s", fe.Message)
			}
			return nil, 0, fmt.Errorf("when: %v", err)
		}
		whenPrograms.put(own, prog)
	}
	// What the expression may refer to depends on where it is written, so
	// references are checked on every use, cached or not.
	v := &refVisitor{sc: sc, reads: map[ast.Node][]string{}}
	root := prog.Node()
	ast.Walk(&root, v)
	if v.err != nil {
		return nil, 0, fmt.Errorf("when: %w", v.err)
	}
	v.noteReads()
	return &Condition{src: src, prog: prog}, 0, nil
}

// refVisitor checks params.NAME and outputs.TASK references, and notes
// the outputs read: outputs.TASK.KEY as that key, outputs.TASK alone as
// every output of TASK, outputs alone as every output. ast.Walk visits a
// node after its children, so a read noted for outputs.TASK is narrowed
// when the member access around it names a key.
type refVisitor struct {
	sc    *scope
	err   error
	reads map[ast.Node][]string // pending reads by the node that makes them
}

func (r *refVisitor) Visit(n *ast.Node) {
	if r.err != nil {
		return
	}
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		switch x.Value {
		case "outputs":
			r.reads[x] = nil
		case "item", "map_index":
			r.err = r.sc.checkItem(x.Value)
		}
	case *ast.MemberNode:
		prop, ok := x.Property.(*ast.StringNode)
		if !ok {
			return
		}
		if chain, ok := r.reads[x.Node]; ok && len(chain) < 2 {
			delete(r.reads, x.Node)
			r.reads[x] = append(chain[:len(chain):len(chain)], prop.Value)
		}
		id, ok := x.Node.(*ast.IdentifierNode)
		if ok && (id.Value == "params" || id.Value == "outputs") {
			r.err = r.sc.checkRef([]string{id.Value, prop.Value})
		}
	}
}

// noteReads hands the reads found to the scope.
func (r *refVisitor) noteReads() {
	for _, chain := range r.reads {
		r.sc.noteRead(chain)
	}
}
