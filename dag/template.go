package dag

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Template is a string from a DAG file compiled as a Go text/template. A
// string without "{{" is kept as a literal and costs nothing to render.
type Template struct {
	src  string
	tmpl *template.Template // nil for a literal
}

// String returns the template's source.
func (t *Template) String() string { return t.src }

// MarshalText makes a template encode as its source.
func (t *Template) MarshalText() ([]byte, error) { return []byte(t.src), nil }

// Render executes the template. A key missing from the values (an unknown
// param, an output the upstream task did not emit) is an error.
func (t *Template) Render(data map[string]any) (string, error) {
	if t.tmpl == nil {
		return t.src, nil
	}
	var b strings.Builder
	if err := t.tmpl.Execute(&b, data); err != nil {
		return "", fmt.Errorf("template %q: %s", t.src, cleanTemplateError(err.Error()))
	}
	return b.String(), nil
}

// Values are what templates and `when` expressions see for one try (SPEC 1.3).
type Values struct {
	DAGID             string
	TaskID            string
	RunID             string
	TryNumber         int
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Params            map[string]any
	Outputs           map[string]map[string]any // task id → key → value
	Env               map[string]string
	// Callback holds .state, .error and .log_url for callback stages.
	Callback map[string]any
	// Secrets holds the values of the secrets the DAG's env refers to as
	// .secrets.NAME (SPEC 5); nil when it refers to none.
	Secrets map[string]string
}

// Data returns the template data for v, with dates in loc (the DAG's zone).
func (v Values) Data(loc *time.Location) map[string]any {
	ld := v.LogicalDate.In(loc)
	m := map[string]any{
		"dag_id":              v.DAGID,
		"task_id":             v.TaskID,
		"run_id":              v.RunID,
		"try_number":          v.TryNumber,
		"ds":                  ld.Format(time.DateOnly),
		"ds_nodash":           ld.Format("20060102"),
		"ts":                  ld.Format(time.RFC3339),
		"logical_date":        ld,
		"data_interval_start": v.DataIntervalStart.In(loc),
		"data_interval_end":   v.DataIntervalEnd.In(loc),
		"params":              orEmpty(v.Params),
		"outputs":             orEmpty(v.Outputs),
		"env":                 orEmpty(v.Env),
	}
	for k, x := range v.Callback {
		m[k] = x
	}
	if v.Secrets != nil {
		m["secrets"] = v.Secrets
	}
	return m
}

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// templateKeys are the top-level names templates may use; callbackKeys are
// added for callback stages.
var (
	templateKeys = []string{"dag_id", "task_id", "run_id", "try_number", "ds", "ds_nodash", "ts",
		"logical_date", "data_interval_start", "data_interval_end", "params", "outputs", "env"}
	callbackKeys = []string{"state", "error", "log_url"}
)

// scope is what a template may refer to where it is written.
type scope struct {
	params   map[string]bool
	upstream func(task string) bool // nil: outputs are not checked
	task     string
	callback bool
	// secrets, set for the values of `env` only, collects the names of
	// the secrets they refer to; elsewhere .secrets is refused, so that a
	// secret reaches a task only through its environment (SPEC 5).
	secrets map[string]bool
}

// secretNamePattern is what a secret's name may be: it is also part of an
// environment variable's name (KILN_SECRET_NAME) and a file's.
var secretNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkSecret checks a .secrets.NAME reference and records the name.
func (s *scope) checkSecret(chain []string) error {
	if s.secrets == nil {
		return fmt.Errorf(".secrets may only be used in `env` values: secrets reach tasks through their environment (set env: {NAME: \"{{ .secrets.NAME }}\"} and read $NAME)")
	}
	if len(chain) != 2 {
		return fmt.Errorf("name one secret: .secrets.NAME")
	}
	if !secretNamePattern.MatchString(chain[1]) {
		return fmt.Errorf("invalid secret name %q: want letters, digits and _", chain[1])
	}
	s.secrets[chain[1]] = true
	return nil
}

func (s *scope) knows(key string) bool {
	for _, k := range templateKeys {
		if k == key {
			return true
		}
	}
	if s.callback {
		for _, k := range callbackKeys {
			if k == key {
				return true
			}
		}
	}
	return false
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
	if len(chain) < 2 {
		return nil
	}
	switch chain[0] {
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

// compileTemplate parses src and checks the values it refers to. The line
// of a returned error is relative to the template's first line (1-based).
func compileTemplate(src string, sc *scope) (*Template, int, error) {
	if !strings.Contains(src, "{{") {
		return &Template{src: src}, 0, nil
	}
	trees, err := parse.Parse("", src, "", "", builtinFuncNames)
	if err != nil {
		line, msg := splitTemplateError(err.Error())
		return nil, line, fmt.Errorf("template: %s", msg)
	}
	t := template.New("").Option("missingkey=error")
	if _, err := t.AddParseTree("", trees[""]); err != nil {
		return nil, 0, fmt.Errorf("template: %v", err)
	}
	var problems []string
	walkTemplate(t.Tree.Root, true, func(chain []string) {
		if err := sc.checkRef(chain); err != nil {
			problems = append(problems, err.Error())
		}
	})
	if len(problems) > 0 {
		return nil, 0, fmt.Errorf("template: %s", strings.Join(problems, "; "))
	}
	return &Template{src: src, tmpl: t}, 0, nil
}

// builtinFuncNames are text/template's built-in functions, which is all
// the parser needs to know of them. Parsing with the parse package and
// this fixed map spares text/template's per-Parse copy of its builtins,
// a third of the cost of loading a template.
var builtinFuncNames = map[string]any{
	"and": true, "call": true, "html": true, "index": true, "slice": true, "js": true, "len": true,
	"not": true, "or": true, "print": true, "printf": true, "println": true, "urlquery": true,
	"eq": true, "ge": true, "gt": true, "le": true, "lt": true, "ne": true,
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

func cleanTemplateError(msg string) string {
	_, m := splitTemplateError(msg)
	return strings.TrimPrefix(m, "executing \"\" at ")
}

// walkTemplate calls ref for every field chain read from the root data.
// Inside range and with, dot is something else, so only $-rooted chains
// are checked there.
func walkTemplate(n parse.Node, dotIsRoot bool, ref func([]string)) {
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
			ref(n.Ident)
		}
	case *parse.VariableNode:
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			ref(n.Ident[1:])
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

func walkBranch(b *parse.BranchNode, dotIsRoot, inner bool, ref func([]string)) {
	walkTemplate(b.Pipe, dotIsRoot, ref)
	walkTemplate(b.List, inner, ref)
	walkTemplate(b.ElseList, dotIsRoot, ref)
}

// RenderValue renders every template in a tree built by the loader (the
// value of a `with` key) and returns the same tree with plain strings.
func RenderValue(v any, data map[string]any) (any, error) {
	switch v := v.(type) {
	case *Template:
		return v.Render(data)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			r, err := RenderValue(x, data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			r, err := RenderValue(x, data)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
