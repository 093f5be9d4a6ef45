package dag

import (
	"errors"
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
)

// Condition is a compiled `when` expression (SPEC 1.5).
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

func whenEnv(v Values, loc *time.Location) map[string]any {
	ld := v.LogicalDate.In(loc)
	return map[string]any{
		"params":       orEmpty(v.Params),
		"outputs":      orEmpty(v.Outputs),
		"ds":           ld.Format(time.DateOnly),
		"logical_date": ld,
		"dag_id":       v.DAGID,
		"run_id":       v.RunID,
	}
}

// compileWhen compiles src as a boolean expression and checks that the
// params and outputs it names exist where it is written. The column of a
// returned error is relative to the expression (1-based, 0 if unknown).
func compileWhen(src string, sc *scope) (*Condition, int, error) {
	prog, err := expr.Compile(src, expr.Env(whenEnv(Values{}, time.UTC)), expr.AsBool())
	if err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			return nil, fe.Column + 1, fmt.Errorf("when: %s", fe.Message)
		}
		return nil, 0, fmt.Errorf("when: %v", err)
	}
	v := &refVisitor{sc: sc}
	root := prog.Node()
	ast.Walk(&root, v)
	if v.err != nil {
		return nil, 0, fmt.Errorf("when: %w", v.err)
	}
	return &Condition{src: src, prog: prog}, 0, nil
}

// refVisitor checks params.NAME and outputs.TASK references.
type refVisitor struct {
	sc  *scope
	err error
}

func (r *refVisitor) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok || r.err != nil {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || (id.Value != "params" && id.Value != "outputs") {
		return
	}
	if prop, ok := m.Property.(*ast.StringNode); ok {
		r.err = r.sc.checkRef([]string{id.Value, prop.Value})
	}
}
