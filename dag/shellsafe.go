package dag

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/template/parse"
)

// Shell commands and params (docs/dag-format.md#params-in-shell-commands).
// A param's value comes from whoever triggers a run; inserted as it is
// into a shell command, it can run commands of its own. Templates quote it
// with shellquote, every task reads it from its environment as
// $KILN_PARAM_NAME, and `kiln dags validate` warns where a free-text param
// goes into a shell command unquoted.

// ParamEnvName is the environment variable a param's value reaches every
// task in: KILN_PARAM_ and the param's name in upper case.
func ParamEnvName(param string) string { return "KILN_PARAM_" + strings.ToUpper(param) }

// ParamText is a value as a process sees it in its environment, and as
// the CLI prints it in KEY=VALUE words: a string as it is, anything else
// as JSON.
func ParamText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// ShellQuote quotes s as one word for a POSIX shell: it is put in single
// quotes, and each single quote in s closes them, is written escaped with
// a backslash, and opens them again.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// freeTextParams are the params whose value is any string: the ones a
// shell command must quote. A number, a boolean or an enum's value is
// checked against the schema before a run starts.
func freeTextParams(ps []*Param) map[string]bool {
	m := map[string]bool{}
	for _, p := range ps {
		if (p.Type == "" || p.Type == "string") && len(p.Enum) == 0 {
			m[p.Name] = true
		}
	}
	return m
}

// unquotedParams returns the params in free that a template inserts into
// its output without piping them through shellquote, in order.
func unquotedParams(src string, free map[string]bool) []string {
	if len(free) == 0 || !strings.Contains(src, "{{") {
		return nil
	}
	tree, err := parseTemplate(src)
	if err != nil {
		return nil // reported as a template error
	}
	var out []string
	seen := map[string]bool{}
	walkOutputs(tree.Root, true, func(pipe *parse.PipeNode, dotIsRoot bool) {
		if quoted(pipe) {
			return
		}
		walkTemplate(pipe, dotIsRoot, func(chain []string, _ int) {
			if len(chain) >= 2 && chain[0] == "params" && free[chain[1]] && !seen[chain[1]] {
				seen[chain[1]] = true
				out = append(out, chain[1])
			}
		})
	})
	return out
}

// quoted reports whether a pipeline ends in shellquote.
func quoted(pipe *parse.PipeNode) bool {
	if pipe == nil || len(pipe.Cmds) == 0 {
		return false
	}
	last := pipe.Cmds[len(pipe.Cmds)-1]
	id, ok := last.Args[0].(*parse.IdentifierNode)
	return ok && id.Ident == "shellquote"
}

// walkOutputs calls out for the pipeline of every action that writes to
// the template's output; dotIsRoot tells whether dot is the template's
// data there (not inside range or with).
func walkOutputs(n parse.Node, dotIsRoot bool, out func(*parse.PipeNode, bool)) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkOutputs(c, dotIsRoot, out)
		}
	case *parse.ActionNode:
		if len(n.Pipe.Decl) == 0 { // {{ $x := ... }} writes nothing
			out(n.Pipe, dotIsRoot)
		}
	case *parse.IfNode:
		walkOutputs(n.List, dotIsRoot, out)
		walkOutputs(n.ElseList, dotIsRoot, out)
	case *parse.RangeNode:
		walkOutputs(n.List, false, out)
		walkOutputs(n.ElseList, dotIsRoot, out)
	case *parse.WithNode:
		walkOutputs(n.List, false, out)
		walkOutputs(n.ElseList, dotIsRoot, out)
	}
}

// checkShellQuoting warns where a shell stage's command inserts a
// free-text param unquoted.
func (d *decoder) checkShellQuoting(with *node) {
	val := lookup(with, "command")
	if val == nil {
		return
	}
	src, ok := val.val.(string)
	if !ok {
		return
	}
	for _, name := range unquotedParams(src, d.freeText) {
		d.warnAt(val, "param %s goes into a shell command unquoted: a value such as `x; rm -rf ~` would run as a command. Write {{ .params.%s | shellquote }}, or use \"$%s\"", name, name, ParamEnvName(name))
	}
}
