package dag

import (
	"cmp"
	"slices"
	"strings"
)

// OutputRef is an upstream output a template reads: .outputs.TASK.KEY,
// or .outputs.TASK (Key empty) for all of a task's outputs.
type OutputRef struct {
	Task, Key string
}

// OutputRefs returns the upstream outputs the templates of a task's with
// and env read, sorted and each once: what a dry run cannot know before
// those tasks have run (docs/cli.md#kiln-dags-test).
func (t *Task) OutputRefs() []OutputRef {
	seen := map[OutputRef]bool{}
	add := func(chain []string, _ int) {
		if len(chain) < 2 || chain[0] != "outputs" {
			return
		}
		r := OutputRef{Task: chain[1]}
		if len(chain) > 2 {
			r.Key = chain[2]
		}
		seen[r] = true
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case *Template:
			v.refs(add)
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(t.With)
	for _, e := range t.Env {
		e.Value.refs(add)
	}
	out := make([]OutputRef, 0, len(seen))
	for r := range seen {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b OutputRef) int {
		return cmp.Or(strings.Compare(a.Task, b.Task), strings.Compare(a.Key, b.Key))
	})
	return out
}

// refs calls ref for every field chain the template reads from the root
// of its data.
func (t *Template) refs(ref func(chain []string, pos int)) {
	if t == nil || t.literal {
		return
	}
	tree := t.tree
	if tree == nil {
		var err error
		if tree, err = parseTemplate(t.src); err != nil {
			return // cannot happen: the load checked that it parses
		}
	}
	walkTemplate(tree.Root, true, ref)
}
