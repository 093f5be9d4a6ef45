package dag

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// nodeKind tells scalars, mappings and sequences apart.
type nodeKind uint8

const (
	scalarNode nodeKind = iota
	mapNode
	seqNode
)

// node is a YAML node reduced to what the loader needs: its value, its
// children and the position it was written at. Aliases share the node of
// their anchor, so an error in an anchored block points at the anchor.
type node struct {
	kind   nodeKind
	line   int
	col    int
	val    any    // scalars: string, int64, uint64, float64, bool or nil
	text   string // scalars: the value as written (without quotes)
	block  bool   // a literal or folded block scalar: its text starts on the next line
	quoted bool   // a single- or double-quoted scalar
	pairs  []pair // mappings, in file order
	items  []*node
}

type pair struct {
	key *node
	val *node
}

func (n *node) isNull() bool { return n.kind == scalarNode && n.val == nil }

// str reports a non-null scalar's text; YAML numbers and booleans are
// accepted where a string is expected, as written.
func (n *node) str() (string, bool) {
	if n.kind != scalarNode || n.val == nil {
		return "", false
	}
	return n.text, true
}

// describe names the node's type for error messages.
func (n *node) describe() string {
	switch n.kind {
	case mapNode:
		return "a mapping"
	case seqNode:
		return "a list"
	}
	switch n.val.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case int64, uint64:
		return "an integer"
	case float64:
		return "a number"
	}
	return "a string"
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 64

// parseYAML parses one YAML document into a node tree. A syntax error is
// returned as an *Error without the file name set.
func parseYAML(src []byte) (*node, error) {
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, syntaxError(err)
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	switch len(docs) {
	case 0:
		return nil, &Error{Line: 1, Col: 1, Msg: "empty file: a DAG file holds one YAML mapping with at least `tasks`"}
	case 1:
	default:
		p := docs[1].Body.GetToken().Position
		return nil, &Error{Line: p.Line, Col: p.Column, Msg: "more than one YAML document: a DAG file holds exactly one DAG"}
	}
	c := converter{anchors: map[string]*node{}}
	n := c.convert(docs[0].Body, 0)
	if c.err != nil {
		return nil, c.err
	}
	return n, nil
}

func syntaxError(err error) error {
	var se parserError
	if errors.As(err, &se) && se.GetToken() != nil {
		p := se.GetToken().Position
		return &Error{Line: p.Line, Col: p.Column, Msg: "YAML syntax: " + se.GetMessage()}
	}
	return &Error{Line: 1, Col: 1, Msg: "YAML syntax: " + err.Error()}
}

// parserError is the shape of goccy/go-yaml's positioned errors.
type parserError = interface {
	error
	GetMessage() string
	GetToken() *token.Token
}

type converter struct {
	anchors map[string]*node
	err     *Error
}

func (c *converter) fail(t *token.Token, format string, args ...any) *node {
	if c.err == nil {
		c.err = &Error{Line: t.Position.Line, Col: t.Position.Column, Msg: fmt.Sprintf(format, args...)}
	}
	return &node{line: t.Position.Line, col: t.Position.Column}
}

func (c *converter) convert(n ast.Node, depth int) *node {
	tk := n.GetToken()
	if depth > maxDepth {
		return c.fail(tk, "YAML nested more than %d levels deep", maxDepth)
	}
	pos := func(t *token.Token) (int, int) { return t.Position.Line, t.Position.Column }
	switch n := n.(type) {
	case *ast.MappingNode:
		out := &node{kind: mapNode}
		out.line, out.col = pos(tk)
		if len(n.Values) > 0 && !n.IsFlowStyle {
			out.line, out.col = pos(n.Values[0].Key.GetToken())
		}
		// Explicit keys first, so that they override merged ones.
		var merges []*ast.MappingValueNode
		for _, mv := range n.Values {
			if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
				merges = append(merges, mv)
				continue
			}
			c.addPair(out, mv, depth)
		}
		for _, mv := range merges {
			c.merge(out, mv, depth)
		}
		return out
	case *ast.MappingValueNode:
		out := &node{kind: mapNode}
		out.line, out.col = pos(n.Key.GetToken())
		if _, ok := n.Key.(*ast.MergeKeyNode); ok {
			c.merge(out, n, depth)
		} else {
			c.addPair(out, n, depth)
		}
		return out
	case *ast.SequenceNode:
		out := &node{kind: seqNode}
		out.line, out.col = pos(tk)
		for _, v := range n.Values {
			out.items = append(out.items, c.convert(v, depth+1))
		}
		return out
	case *ast.AnchorNode:
		v := c.convert(n.Value, depth+1)
		c.anchors[n.Name.GetToken().Value] = v
		return v
	case *ast.AliasNode:
		name := n.Value.GetToken().Value
		v, ok := c.anchors[name]
		if !ok {
			return c.fail(tk, "unknown alias *%s", name)
		}
		return v
	case *ast.TagNode:
		v := c.convert(n.Value, depth+1)
		if tk.Value == "!!str" && v.kind == scalarNode {
			cp := *v
			cp.val = v.text
			return &cp
		}
		return v
	case *ast.LiteralNode:
		l, col := pos(tk)
		return &node{line: l, col: col, val: n.Value.Value, text: n.Value.Value, block: true}
	case *ast.StringNode:
		return c.scalar(tk, n.Value)
	case *ast.IntegerNode:
		return c.scalar(tk, n.Value)
	case *ast.FloatNode:
		return c.scalar(tk, n.Value)
	case *ast.BoolNode:
		return c.scalar(tk, n.Value)
	case *ast.NullNode:
		return c.scalar(tk, nil)
	case *ast.InfinityNode:
		return c.scalar(tk, n.Value)
	case *ast.NanNode:
		return c.scalar(tk, n.GetValue())
	}
	return c.fail(tk, "unsupported YAML construct %s", n.Type())
}

func (c *converter) scalar(tk *token.Token, v any) *node {
	out := &node{line: tk.Position.Line, col: tk.Position.Column, val: v, text: tk.Value,
		quoted: tk.Type == token.SingleQuoteType || tk.Type == token.DoubleQuoteType}
	switch x := v.(type) {
	case int:
		out.val = int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			out.val = int64(x)
		}
	case string:
		out.text = x
	case nil:
		out.text = ""
	case float64:
		if tk.Value == "" {
			out.text = strconv.FormatFloat(x, 'g', -1, 64)
		}
	}
	return out
}

func (c *converter) addPair(m *node, mv *ast.MappingValueNode, depth int) {
	m.pairs = append(m.pairs, pair{key: c.convert(mv.Key, depth+1), val: c.convert(mv.Value, depth+1)})
}

// merge applies a `<<` merge key: the pairs of the merged mappings that m
// does not set itself are appended to m.
func (c *converter) merge(m *node, mv *ast.MappingValueNode, depth int) {
	v := c.convert(mv.Value, depth+1)
	srcs := []*node{v}
	if v.kind == seqNode {
		srcs = v.items
	}
	for _, src := range srcs {
		if src.kind != mapNode {
			c.fail(mv.Key.GetToken(), "<< merges mappings only, got %s", src.describe())
			return
		}
		for _, p := range src.pairs {
			if lookup(m, p.key.text) == nil {
				m.pairs = append(m.pairs, p)
			}
		}
	}
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *node, key string) *node {
	for _, p := range m.pairs {
		if p.key.text == key {
			return p.val
		}
	}
	return nil
}
