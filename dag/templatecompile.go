package dag

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template/parse"
)

// Compiling templates at load: parsing them and checking what they refer
// to where they are written.

// templateKeys are the top-level names templates may use; callbackKeys are
// added for callback stages.
var (
	templateKeys = []string{"dag_id", "task_id", "run_id", "try_number", "ds", "ds_nodash", "ts",
		"logical_date", "data_interval_start", "data_interval_end", "params", "outputs", "inputs", "env",
		"triggering_events", "item", "map_index"}
	callbackKeys = []string{"state", "error", "log_url"}
)

// scope is what a template may refer to where it is written.
type scope struct {
	params   map[string]bool
	upstream func(task string) bool // nil: outputs are not checked
	task     string
	callback bool
	// item is set where .item and .map_index are known: the templates of a
	// mapped task (docs/dag-format.md#mapping). Elsewhere noItem, if set,
	// says why they are not, instead of noItemUnmapped.
	item   bool
	noItem string
	// secrets, set for the values of `env` only, collects the names of
	// the secrets they refer to; elsewhere .secrets is refused, so that a
	// secret reaches a task only through its environment (docs/dag-format.md#secrets).
	secrets map[string]bool
	// reads, when not nil, collects the upstream outputs referred to, for
	// the task's Reads.
	reads map[OutputRef]bool
	// inputs are the names of the task's inputs; nil where there is no
	// task's (the DAG's env, callbacks) and .inputs is refused.
	inputs map[string]bool
	// paramsRead, when not nil, collects the params referred to, for the
	// task's ParamsRead; .params as a whole counts as every param.
	paramsRead map[string]bool
}

// noteParams records a read of .params (chain without "params").
func (s *scope) noteParams(chain []string) {
	if s.paramsRead == nil {
		return
	}
	if len(chain) == 0 {
		for p := range s.params {
			s.paramsRead[p] = true
		}
		return
	}
	s.paramsRead[chain[0]] = true
}

// noteRead records a read of .outputs, .outputs.TASK or .outputs.TASK.KEY
// (chain without "outputs").
func (s *scope) noteRead(chain []string) {
	if s.reads == nil {
		return
	}
	var r OutputRef
	if len(chain) > 0 {
		r.Task = chain[0]
	}
	if len(chain) > 1 {
		r.Key = chain[1]
	}
	s.reads[r] = true
}

// checkSecret checks a .secrets.NAME reference and records the name.
func (s *scope) checkSecret(chain []string) error {
	if s.secrets == nil {
		return fmt.Errorf(".secrets may only be used in `env` values: secrets reach tasks through their environment (set env: {NAME: \"{{ .secrets.NAME }}\"} and read $NAME)")
	}
	if len(chain) != 2 {
		return fmt.Errorf("name one secret: .secrets.NAME")
	}
	// A secret's name is also part of an environment variable's
	// (KILN_SECRET_NAME), so it follows the same rule.
	if !envNamePattern.MatchString(chain[1]) {
		return fmt.Errorf("invalid secret name %q: want letters, digits and _", chain[1])
	}
	s.secrets[chain[1]] = true
	return nil
}

// checkItem checks a use of item or map_index.
func (s *scope) checkItem(name string) error {
	switch {
	case s.item:
		return nil
	case s.noItem != "":
		return fmt.Errorf("%s %s", name, s.noItem)
	}
	return fmt.Errorf("%s %s", name, noItemUnmapped)
}

func (s *scope) knows(key string) bool {
	return slices.Contains(templateKeys, key) || s.callback && slices.Contains(callbackKeys, key)
}

// checkRef checks a field chain such as .params.x or .outputs.extract.rows.
func (s *scope) checkRef(chain []string) error {
	if len(chain) == 0 {
		return nil
	}
	if chain[0] == "secrets" {
		return s.checkSecret(chain)
	}
	if !s.knows(chain[0]) {
		keys := templateKeys
		if s.callback {
			keys = append(keys[:len(keys):len(keys)], callbackKeys...)
		}
		return fmt.Errorf("unknown value .%s (known: .%s)", chain[0], strings.Join(keys, " ."))
	}
	if chain[0] == "item" || chain[0] == "map_index" {
		if err := s.checkItem(chain[0]); err != nil {
			return fmt.Errorf(".%w", err)
		}
	}
	if chain[0] == "params" {
		s.noteParams(chain[1:])
	}
	if chain[0] == "inputs" && s.inputs == nil {
		return fmt.Errorf(".inputs are a task's own: use them in the `with`, `env` or cache key of a task that declares `inputs`")
	}
	if len(chain) < 2 {
		return nil
	}
	switch chain[0] {
	case "inputs":
		if !s.inputs[chain[1]] {
			return fmt.Errorf("unknown input %q: declare it under the task's `inputs`", chain[1])
		}
		if len(chain) > 2 {
			return fmt.Errorf(".inputs.%s is a path, with no fields: write .inputs.%s", chain[1], chain[1])
		}
	case "params":
		if !s.params[chain[1]] {
			return fmt.Errorf("unknown param %q: declare it under `params`", chain[1])
		}
	case "outputs":
		if s.upstream != nil && !s.upstream(chain[1]) {
			return fmt.Errorf("outputs of %q are not visible to task %q: it is not upstream of it", chain[1], s.task)
		}
	}
	return nil
}

// templateTrees caches parse trees by source: the same template is often
// written in many files, and a template that only inserts values is
// parsed when rendered rather than at load. Executing a template only
// reads its tree.
var templateTrees = newCompileCache[*parse.Tree](1024)

// parseTemplate parses src, or returns its tree from the cache.
func parseTemplate(src string) (*parse.Tree, error) {
	if tree, ok := templateTrees.get(src); ok {
		return tree, nil
	}
	// src may share memory with a larger string, which the
	// cache would keep alive through its key and the tree's text.
	src = strings.Clone(src)
	trees, err := parse.Parse("", src, "", "", builtinFuncNames)
	if err != nil {
		return nil, err
	}
	templateTrees.put(src, trees[""])
	return trees[""], nil
}

// templateProblem is a problem of a template at a place in its source:
// pos is a byte offset (for a reference), or line the 1-based line (for a
// syntax error); both are -1 and 0 when unknown.
type templateProblem struct {
	pos, line int
	msg       string
}

// compileTemplate parses src and checks the values it refers to, returning
// every problem found.
func compileTemplate(src string, sc *scope) (*Template, []templateProblem) {
	if !strings.Contains(src, "{{") {
		return &Template{src: src, literal: true}, nil
	}
	t := &Template{src: src}
	var problems []templateProblem
	check := func(chain []string, pos int) {
		if len(chain) > 0 && chain[0] == "outputs" {
			sc.noteRead(chain[1:])
		}
		if err := sc.checkRef(chain); err != nil {
			problems = append(problems, templateProblem{pos: pos, msg: "template: " + err.Error()})
		}
	}
	if insertsOnly(src) {
		eachInsert(src, check)
	} else {
		tree, err := parseTemplate(src)
		if err != nil {
			line, msg := splitTemplateError(err.Error())
			return nil, []templateProblem{{pos: -1, line: line, msg: "template: " + msg}}
		}
		t.tree = tree
		walkTemplate(tree.Root, true, check)
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return t, nil
}

// insertsOnly reports whether a template only inserts values: besides
// text, it holds actions of one field chain each, such as
// {{ .params.region }}, with nothing but spaces around the chain and
// names of ASCII letters, digits and _. text/template parses every such
// template, to a tree whose only references are those chains, so checking
// it needs no parse: that is most templates, at a twentieth of the cost.
// FuzzInsertsOnly holds it to that.
func insertsOnly(src string) bool {
	for {
		_, chain, rest, ok := nextInsert(src)
		if !ok || chain == "" {
			return ok
		}
		src = rest
	}
}

// eachInsert calls ref with the field chain of each action of a template
// that insertsOnly, and the byte offset of the chain in src, in order, as
// walkTemplate would.
func eachInsert(src string, ref func(chain []string, pos int)) {
	off := 0
	for {
		at, chain, rest, _ := nextInsert(src[off:])
		if chain == "" {
			return
		}
		ref(strings.Split(chain[1:], "."), off+at)
		off = len(src) - len(rest)
	}
}

// nextInsert finds the first action in s and returns the field chain it
// inserts (".params.region"), the chain's offset in s and the text after
// it; chain is "" if s holds no action, and ok is false if the action does
// anything else.
func nextInsert(s string) (at int, chain, rest string, ok bool) {
	i := strings.Index(s, "{{")
	if i < 0 {
		return 0, "", "", true
	}
	after := strings.TrimLeft(s[i+2:], " ")
	at = len(s) - len(after)
	n := fieldChainLen(after)
	if n == 0 {
		return 0, "", "", false
	}
	chain, after = after[:n], strings.TrimLeft(after[n:], " ")
	if !strings.HasPrefix(after, "}}") {
		return 0, "", "", false
	}
	return at, chain, after[2:], true
}

// fieldChainLen returns the length of the field chain that s starts with:
// one or more ".name", each name an ASCII letter or _ followed by letters,
// digits and _. It returns 0 if s starts with none.
func fieldChainLen(s string) int {
	i := 0
	for i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && (s[j] == '_' || isASCIILetter(s[j]) || j > i+1 && '0' <= s[j] && s[j] <= '9') {
			j++
		}
		if j == i+1 {
			return 0
		}
		i = j
	}
	return i
}

func isASCIILetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// builtinFuncNames are text/template's built-in functions and Kiln's
// (templateFuncs), which is all the parser needs to know of them. Parsing with the parse package and
// this fixed map spares text/template's per-Parse copy of its builtins,
// a third of the cost of loading a template.
var builtinFuncNames = map[string]any{
	"and": true, "call": true, "html": true, "index": true, "slice": true, "js": true, "len": true,
	"not": true, "or": true, "print": true, "printf": true, "println": true, "urlquery": true,
	"eq": true, "ge": true, "gt": true, "le": true, "lt": true, "ne": true,
	"shellquote": true, "json": true,
}

var templateErrPrefix = regexp.MustCompile(`^template: :(\d+):(\d+:)? ?`)

// splitTemplateError turns "template: :3: unexpected ..." into (3, "unexpected ...").
func splitTemplateError(msg string) (int, string) {
	m := templateErrPrefix.FindStringSubmatch(msg)
	if m == nil {
		return 0, msg
	}
	line, _ := strconv.Atoi(m[1])
	return line, msg[len(m[0]):]
}

// walkTemplate calls ref for every field chain read from the root data,
// with the byte offset in the template's source where the chain starts.
// Inside range and with, dot is something else, so only $-rooted chains
// are checked there.
func walkTemplate(n parse.Node, dotIsRoot bool, ref func(chain []string, pos int)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkTemplate(c, dotIsRoot, ref)
		}
	case *parse.ActionNode:
		walkTemplate(n.Pipe, dotIsRoot, ref)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkTemplate(c, dotIsRoot, ref)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkTemplate(a, dotIsRoot, ref)
		}
	case *parse.FieldNode:
		if dotIsRoot {
			// The parser places a chain of fields (.a.b) at its second
			// field.
			pos := int(n.Pos)
			if len(n.Ident) > 1 {
				pos -= len(n.Ident[0]) + 1
			}
			ref(n.Ident, pos)
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			ref(n.Ident[1:], int(n.Pos))
		}
	case *parse.ChainNode:
		walkTemplate(n.Node, dotIsRoot, ref)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, dotIsRoot, dotIsRoot, ref)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, dotIsRoot, false, ref)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, dotIsRoot, false, ref)
	}
}

func walkBranch(b *parse.BranchNode, dotIsRoot, inner bool, ref func([]string, int)) {
	walkTemplate(b.Pipe, dotIsRoot, ref)
	walkTemplate(b.List, inner, ref)
	walkTemplate(b.ElseList, dotIsRoot, ref)
}
