package dag

import (
	"cmp"
	"path"
	"slices"
	"strings"
	"unicode"
)

// Artifacts and inputs (docs/dag-format.md#artifacts-and-inputs): the
// files a task leaves, and the upstream files a task reads.

// artifactNameRule governs the names of artifacts and inputs. They have
// the shape of a param's name, because an input's name is also part of
// an environment variable's ($KILN_INPUT_NAME), and an artifact's is what
// an input names after the task and a dot.
var artifactNameRule = nameRule{paramPattern, 64, "1 to 64 of A-Z a-z 0-9 _, not starting with a digit"}

// artifacts decodes the task's `artifacts` into t.Artifacts. It returns
// every name declared, sorted, also those whose path has a problem, so
// that an input naming one is not reported too; nil when `artifacts` is
// not a mapping, and no input naming the task can be checked.
func (d *decoder) artifacts(t *Task, f map[string]pair) []string {
	p, ok := f["artifacts"]
	if !ok {
		return []string{}
	}
	if p.val.kind != mapNode {
		d.errAt(p.val, "artifacts must be a mapping of names to paths, such as {model: out/model.pkl}, got %s", p.val.describe())
		return nil
	}
	names := make([]string, 0, len(p.val.pairs))
	byPath := make(map[string]string, len(p.val.pairs)) // cleaned path → name
	for _, kv := range p.val.pairs {
		name, _ := kv.key.val.(string)
		if !artifactNameRule.ok(name) {
			d.errAt(kv.key, "invalid artifact name %q: use %s", kv.key.text, artifactNameRule.what)
			continue
		}
		names = append(names, name)
		s, ok := kv.val.str()
		if !ok || kv.val.kind != scalarNode {
			d.errAt(kv.val, "artifact %s: the path must be a string, got %s", name, kv.val.describe())
			continue
		}
		clean, problem := artifactPath(s)
		if problem != "" {
			d.errAt(kv.val, "artifact %s: path %q %s", name, s, problem)
			continue
		}
		if other, dup := byPath[clean]; dup {
			d.errAt(kv.val, "artifact %s: path %q is artifact %s's already: give each file one name", name, s, other)
			continue
		}
		byPath[clean] = name
		if t.Artifacts == nil {
			t.Artifacts = make(map[string]string, len(p.val.pairs))
		}
		t.Artifacts[name] = clean
	}
	slices.Sort(names)
	return names
}

// artifactPath cleans an artifact's path, or says what is wrong with it.
// Paths are slash-separated and relative to the try's working directory,
// which they may not leave or be.
func artifactPath(s string) (clean, problem string) {
	switch {
	case s == "":
		return "", "is empty: name a file or folder in the working directory"
	case strings.Contains(s, "{{"):
		return "", "holds {{: an artifact's path is a literal, not a template, so that every try leaves it at the same place"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", "holds a control character"
	case path.IsAbs(s):
		return "", "is absolute: give it relative to the working directory of the try"
	}
	clean = path.Clean(s)
	switch {
	case clean == ".":
		return "", "is the working directory itself: name a file or folder in it"
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return "", "leads out of the working directory of the try"
	}
	return clean, ""
}

// inputs decodes the task's `inputs` into t.Inputs, checking each against
// the graph and the artifacts upstream tasks declare; raws[gr.idx[id]] is
// the task of id. It returns every input name declared, also those with a
// problem, for the check of templates that read .inputs.NAME.
func (d *decoder) inputs(rt *rawTask, raws []*rawTask, gr *graph) map[string]bool {
	t := rt.task
	names := map[string]bool{}
	p, ok := rt.fields["inputs"]
	if !ok {
		return names
	}
	if p.val.kind != mapNode {
		d.errAt(p.val, "inputs must be a mapping of names to upstream artifacts, such as {model: train.model}, got %s", p.val.describe())
		return names
	}
	envNames := make(map[string]string, len(p.val.pairs)) // $KILN_INPUT_ name → input
	for _, kv := range p.val.pairs {
		name, _ := kv.key.val.(string)
		if !artifactNameRule.ok(name) {
			d.errAt(kv.key, "invalid input name %q: use %s", kv.key.text, artifactNameRule.what)
			continue
		}
		names[name] = true
		env := inputEnv(name)
		if other, dup := envNames[env]; dup {
			d.errAt(kv.key, "inputs %s and %s would both be $%s: rename one", other, name, env)
			continue
		}
		envNames[env] = name
		if in, ok := d.inputRef(t, name, kv.val, raws, gr); ok {
			t.Inputs = append(t.Inputs, in)
		}
	}
	slices.SortFunc(t.Inputs, func(a, b InputRef) int { return cmp.Compare(a.Name, b.Name) })
	return names
}

// inputRef checks the value of input name of task t: TASK.ARTIFACT, an
// artifact that an upstream task declares.
func (d *decoder) inputRef(t *Task, name string, n *node, raws []*rawTask, gr *graph) (InputRef, bool) {
	s, ok := n.str()
	if !ok || n.kind != scalarNode {
		d.errAt(n, "input %s must be TASK.ARTIFACT, such as train.model, got %s", name, n.describe())
		return InputRef{}, false
	}
	task, artifact, _ := strings.Cut(s, ".")
	if task == "" || artifact == "" || strings.Contains(artifact, ".") {
		d.errAt(n, "input %s must be TASK.ARTIFACT, such as train.model, got %q", name, s)
		return InputRef{}, false
	}
	i, known := gr.idx[task]
	switch {
	case !known:
		d.errAt(n, "input %s: no task %q in this DAG%s", name, task, d.suggest(task, gr.ids))
		return InputRef{}, false
	case task == t.ID:
		d.errAt(n, "input %s: a task cannot read its own artifacts, only those of tasks upstream of it", name)
		return InputRef{}, false
	case !gr.upstreamOf(task, t.ID):
		d.errAt(n, "input %s: artifacts of %q are not visible to task %q: it is not upstream of it", name, task, t.ID)
		return InputRef{}, false
	}
	up := raws[i].task
	if _, mapped := raws[i].fields["map"]; (mapped || up.MapGroup != "") && (up.MapGroup == "" || up.MapGroup != t.MapGroup) {
		d.errAt(n, "input %s: task %q is mapped, and each of its instances has artifacts of its own: only a task of its mapped group may take them as inputs (pass what others need in an output)", name, task)
		return InputRef{}, false
	}
	declared := raws[i].artifactNames
	_, found := slices.BinarySearch(declared, artifact)
	switch {
	case declared == nil:
		// Its `artifacts` is not a mapping, which is reported there.
	case len(declared) == 0:
		d.errAt(n, "input %s: task %q declares no artifacts: give it artifacts: {%s: PATH}", name, task, artifact)
		return InputRef{}, false
	case !found:
		d.errAt(n, "input %s: task %q declares no artifact %q%s", name, task, artifact, d.suggest(artifact, declared))
		return InputRef{}, false
	}
	return InputRef{Name: name, Task: task, Artifact: artifact}, true
}

// inputEnv is the environment variable through which a try's process
// finds an input, as the worker sets it (wire.InputEnv): KILN_INPUT_ and
// the name in upper case, so two names that differ in case only collide.
func inputEnv(name string) string { return "KILN_INPUT_" + strings.ToUpper(name) }
