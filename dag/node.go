package dag

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v4"
	"go.yaml.in/yaml/v4/plugin/loaderlimits"
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
	kind  nodeKind
	block bool // a literal or folded block scalar: its text starts on the next line
	// indent is the column (1-based) where a literal block scalar's text
	// starts on each of its lines; 0 for other nodes.
	indent int
	quoted bool // a single- or double-quoted scalar
	line   int
	col    int
	val    any    // scalars: string, int64, uint64, float64, bool or nil
	text   string // scalars: the value as written (without quotes)
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

// maxDepth bounds nesting (docs/dag-format.md#files-and-folders). go-yaml
// checks it as it scans, separately for flow ([ {) and block (indentation)
// levels, so that a deeply nested file is refused before its tree is
// built; the converter checks the two combined.
const maxDepth = 64

// parseYAML parses one YAML document into a node tree with go-yaml v4,
// which gives exact positions for every node and for syntax errors, and
// converts its tree. Its error has no file name set.
func parseYAML(src []byte) (*node, *Error) {
	var tooDeep bool
	limits := loaderlimits.New(loaderlimits.DepthFunc(func(depth int, _ *loaderlimits.DepthContext) error {
		if depth > maxDepth {
			tooDeep = true
			return errors.New(nestedTooDeep)
		}
		return nil
	}))
	dec, err := yaml.NewLoader(bytes.NewReader(src), yaml.WithPlugin(limits))
	if err != nil {
		return nil, yamlError(src, err, tooDeep)
	}
	var doc yaml.Node
	if err := dec.Load(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, emptyFile()
		}
		return nil, yamlError(src, err, tooDeep)
	}
	var next yaml.Node
	switch err := dec.Load(&next); {
	case err == nil:
		return nil, &Error{Line: next.Line, Col: next.Column, Msg: "more than one YAML document: a DAG file holds exactly one DAG"}
	case !errors.Is(err, io.EOF):
		return nil, yamlError(src, err, tooDeep)
	}
	if len(doc.Content) == 0 {
		return nil, emptyFile()
	}
	c := converter{src: src, seen: map[*yaml.Node]*node{}}
	n := c.convert(doc.Content[0], 0)
	if c.err != nil {
		return nil, c.err
	}
	return n, nil
}

func emptyFile() *Error {
	return &Error{Line: 1, Col: 1, Msg: "empty file: a DAG file holds one YAML mapping with at least `tasks`"}
}

// nestedTooDeep is the problem of a file nested more than maxDepth levels.
var nestedTooDeep = fmt.Sprintf("YAML nested more than %d levels deep", maxDepth)

// yamlError positions a YAML syntax error at the mark go-yaml reports.
// Where the problem is found after the construct that causes it (a flow
// mapping never closed), the message names where that construct starts.
// tooDeep tells that go-yaml stopped at the nesting bound.
func yamlError(src []byte, err error, tooDeep bool) *Error {
	var le *yaml.LoadError
	if !errors.As(err, &le) {
		return &Error{Line: 1, Col: 1, Msg: "YAML: " + err.Error()}
	}
	if tooDeep {
		return &Error{Line: le.Mark.Line, Col: le.Mark.Column, Msg: nestedTooDeep}
	}
	e := &Error{Line: le.Mark.Line, Col: le.Mark.Column, Msg: "YAML syntax: " + le.Message}
	if e.Line == 0 {
		// Encoding errors are found before lines are counted and carry
		// only the byte offset.
		e.Line, e.Col = lineCol(src, le.Mark.Index)
	}
	if le.ContextMsg != "" && le.ContextMark.Line > 0 && le.ContextMark != le.Mark {
		e.Msg += fmt.Sprintf(" (%s started at line %d column %d)", le.ContextMsg, le.ContextMark.Line, le.ContextMark.Column)
	}
	e.Msg += colonHint(src, e.Line, e.Col)
	return e
}

// colonHint explains a syntax error found inside the plain (unquoted)
// value of a "key: value" line, as YAML reads the ": " in
// `command: echo time: now` as a second key: the value must be quoted.
// It returns "" for any other error.
func colonHint(src []byte, line, col int) string {
	lines := bytes.SplitN(src, []byte{'\n'}, line+1)
	if line < 1 || line > len(lines) {
		return ""
	}
	text := []rune(strings.TrimRight(string(lines[line-1]), "\r"))
	sep := strings.Index(string(text), ": ")
	if sep < 0 {
		return ""
	}
	sep = utf8.RuneCountInString(string(text)[:sep])
	if col-1 <= sep {
		return "" // the error is at the key, not inside its value
	}
	key := strings.TrimLeft(string(text[:sep]), " -")
	value := strings.TrimSpace(string(text[sep+2:]))
	if i := strings.Index(value, " #"); i >= 0 {
		value = strings.TrimSpace(value[:i])
	}
	if value == "" || strings.ContainsAny(value[:1], "\"'{[|>&*!%@`") || !strings.Contains(value, ": ") {
		return ""
	}
	quoted := "'" + strings.ReplaceAll(value, "'", "''") + "'"
	if !strings.ContainsAny(value, "\"\\") {
		quoted = `"` + value + `"`
	}
	return fmt.Sprintf(` (the value of %s holds ": ", which YAML reads as a new key: quote it, %s: %s)`, key, key, quoted)
}

// lineCol turns a byte offset in src into a 1-based line and column, the
// column counted in characters as go-yaml counts it.
func lineCol(src []byte, off int) (line, col int) {
	off = min(max(off, 0), len(src))
	start := bytes.LastIndexByte(src[:off], '\n') + 1
	return bytes.Count(src[:start], []byte("\n")) + 1, utf8.RuneCount(src[start:off]) + 1
}

type converter struct {
	src    []byte
	seen   map[*yaml.Node]*node // anchored nodes, so aliases share them
	err    *Error
	merged int // pairs copied by << merges
}

func (c *converter) fail(n *yaml.Node, format string, args ...any) *node {
	if c.err == nil {
		c.err = &Error{Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
	}
	return &node{line: n.Line, col: n.Column}
}

func (c *converter) convert(n *yaml.Node, depth int) *node {
	if depth > maxDepth {
		return c.fail(n, "%s", nestedTooDeep)
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return c.fail(n, "unknown alias *%s", n.Value)
		}
		n = n.Alias
	}
	if out, ok := c.seen[n]; ok {
		if out == nil {
			return c.fail(n, "alias *%s refers to the node that contains it", n.Anchor)
		}
		return out
	}
	out := &node{line: n.Line, col: n.Column}
	if n.Anchor != "" {
		c.seen[n] = nil // in progress: an alias to it from inside is a cycle
		defer func() { c.seen[n] = out }()
	}
	switch n.Kind {
	case yaml.MappingNode:
		out.kind = mapNode
		c.mapping(out, n, depth)
	case yaml.SequenceNode:
		out.kind = seqNode
		out.items = make([]*node, len(n.Content))
		for i, it := range n.Content {
			out.items[i] = c.convert(it, depth+1)
		}
	case yaml.ScalarNode:
		c.scalar(out, n)
	default:
		return c.fail(n, "unsupported YAML node")
	}
	return out
}

// mapping converts a mapping's pairs. Explicit keys override keys merged
// in with `<<`, whatever their order, and a key given twice is an error.
func (c *converter) mapping(out *node, n *yaml.Node, depth int) {
	if len(n.Content)%2 != 0 {
		c.fail(n, "malformed mapping")
		return
	}
	var merges []*yaml.Node
	out.pairs = make([]pair, 0, len(n.Content)/2)
	keys := keySet{m: out}
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		key := c.convert(k, depth+1)
		if key.kind == scalarNode {
			if prev := keys.get(key.text); prev != nil {
				c.fail(k, "mapping key %q already defined at line %d", key.text, prev.line)
				return
			}
		}
		keys.add(pair{key: key, val: c.convert(v, depth+1)})
	}
	for _, m := range merges {
		src := c.convert(m, depth+1)
		srcs := []*node{src}
		if src.kind == seqNode {
			srcs = src.items
		}
		for _, s := range srcs {
			if s.kind != mapNode {
				c.fail(m, "<< merges mappings only, got %s", s.describe())
				return
			}
			// Merges copy pairs, so that aliases merged into many
			// mappings could multiply a file's size: bound the copies.
			if c.merged += len(s.pairs); c.merged > nodeBudget {
				c.fail(m, "<< merges more than %d keys in all", nodeBudget)
				return
			}
			for _, p := range s.pairs {
				if keys.get(p.key.text) == nil {
					keys.add(p)
				}
			}
		}
	}
}

// keySet finds the keys of a mapping being converted by their text: by a
// scan while the mapping is small, through a map once it is not, so that
// a mapping of many keys takes linear time.
type keySet struct {
	m     *node
	index map[string]*node
}

// smallMapping is the size up to which a scan finds keys faster than a map.
const smallMapping = 16

func (s *keySet) get(text string) *node {
	if s.index == nil {
		if len(s.m.pairs) <= smallMapping {
			return lookupKey(s.m, text)
		}
		s.index = make(map[string]*node, 2*len(s.m.pairs))
		for _, p := range s.m.pairs {
			s.indexKey(p.key)
		}
	}
	return s.index[text]
}

func (s *keySet) add(p pair) {
	s.m.pairs = append(s.m.pairs, p)
	if s.index != nil {
		s.indexKey(p.key)
	}
}

// indexKey indexes a key unless one with its text is there, as
// lookupKey finds the first.
func (s *keySet) indexKey(k *node) {
	if _, ok := s.index[k.text]; !ok {
		s.index[k.text] = k
	}
}

// scalar resolves a scalar by its YAML 1.2 core-schema tag.
func (c *converter) scalar(out *node, n *yaml.Node) {
	out.quoted = n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0
	out.block = n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	if n.Style&yaml.LiteralStyle != 0 {
		out.indent = blockIndent(c.src, n.Line)
	}
	if err := setScalar(out, n.Value, n.ShortTag()); err != nil {
		c.fail(n, "%v", err)
	}
}

// blockIndent returns the column (1-based) of the first character of the
// first non-blank line after line (1-based) in src: where the text of a
// block scalar whose indicator is on that line starts. 0 if there is none.
func blockIndent(src []byte, line int) int {
	for l := 1; l <= line; l++ {
		i := bytes.IndexByte(src, '\n')
		if i < 0 {
			return 0
		}
		src = src[i+1:]
	}
	for len(src) > 0 {
		text, rest, _ := bytes.Cut(src, []byte{'\n'})
		if t := bytes.TrimLeft(text, " "); len(bytes.TrimSpace(t)) > 0 {
			return len(text) - len(t) + 1
		}
		src = rest
	}
	return 0
}

// setScalar sets a scalar node's text and value from the text and its
// tag. It refuses an integer out of the range of 64 bits, and an infinity
// or a NaN: run params, rendered `with` values and manifests are stored
// and sent as JSON, which has neither.
func setScalar(out *node, text, tag string) error {
	out.text, out.val = text, text
	switch tag {
	case "!!null":
		out.val, out.text = nil, ""
	case "!!bool":
		out.val = strings.EqualFold(text, "true")
	case "!!int":
		clean := strings.ReplaceAll(text, "_", "")
		if i, err := strconv.ParseInt(clean, 0, 64); err == nil {
			out.val = i
		} else if u, err := strconv.ParseUint(clean, 0, 64); err == nil {
			out.val = u
		} else {
			return fmt.Errorf("integer %s out of range", text)
		}
	case "!!float":
		f := parseFloat(text)
		if math.IsInf(f, 0) || math.IsNaN(f) {
			return fmt.Errorf("%s is not a number Kiln can keep: JSON has no infinity or NaN (quote it for the text)", text)
		}
		out.val = f
	}
	return nil
}

func parseFloat(s string) float64 {
	switch strings.ToLower(strings.TrimPrefix(s, "+")) {
	case ".inf":
		return math.Inf(1)
	case "-.inf":
		return math.Inf(-1)
	case ".nan":
		return math.NaN()
	}
	f, _ := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	return f
}

// lookupKey returns the key node of key in mapping m, or nil.
func lookupKey(m *node, key string) *node {
	for _, p := range m.pairs {
		if p.key.text == key {
			return p.key
		}
	}
	return nil
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
