package dag

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// Template is a string from a DAG file compiled as a Go text/template. A
// string without "{{" is kept as a literal and costs nothing to render.
type Template struct {
	src     string
	literal bool
	// tree is the parse tree of a template parsed at load. A template that
	// only inserts values, such as "--date {{ .ds }}", is checked at load
	// without a parse (see insertsOnly) and parsed when rendered, through
	// templateTrees. Not keeping the tree saves a loaded DAG more than half
	// of its memory, for about ten microseconds a render on a cache miss.
	tree *parse.Tree
}

// String returns the template's source.
func (t *Template) String() string { return t.src }

// MarshalText makes a template encode as its source.
func (t *Template) MarshalText() ([]byte, error) { return []byte(t.src), nil }

// Render executes the template. A key missing from the values (an unknown
// param, an output the upstream task did not emit) is an error.
func (t *Template) Render(data map[string]any) (string, error) {
	if t.literal {
		return t.src, nil
	}
	tree := t.tree
	if tree == nil {
		var err error
		if tree, err = parseTemplate(t.src); err != nil {
			// Cannot happen: the load checked that it parses.
			return "", fmt.Errorf("template %q: %s", t.src, cleanTemplateError(err.Error()))
		}
	}
	// Executing needs a text/template around the tree. Building one costs
	// about a microsecond; keeping one in every template cost loaded DAGs
	// a fifth more memory.
	tmpl, err := template.New("").Option("missingkey=error").Funcs(templateFuncs).AddParseTree("", tree)
	if err != nil {
		return "", fmt.Errorf("template %q: %v", t.src, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, data); err != nil {
		if msg := missingOutputs(tree, data); msg != "" {
			return "", fmt.Errorf("template %q: %s", t.src, msg)
		}
		return "", fmt.Errorf("template %q: %s", t.src, cleanTemplateError(err.Error()))
	}
	return b.String(), nil
}

// missingOutputs explains a render that failed on outputs an upstream task
// did not write: for each .outputs.TASK.KEY the template reads and data
// lacks, which task and key, and which keys that task did write. It
// returns "" when the template reads no missing output, and the render
// failed for another reason.
func missingOutputs(tree *parse.Tree, data map[string]any) string {
	outputs, _ := data["outputs"].(map[string]any)
	var problems []string
	seen := map[string]bool{}
	check := func(chain []string, _ int) {
		if len(chain) < 2 || chain[0] != "outputs" || seen[strings.Join(chain, ".")] {
			return
		}
		seen[strings.Join(chain, ".")] = true
		task := chain[1]
		out, ok := outputs[task]
		if _, isList := out.([]any); isList {
			return // a mapped task's: .outputs.TASK is a list, indexed
		}
		written, _ := out.(map[string]any)
		switch {
		case !ok || len(written) == 0:
			problems = append(problems, fmt.Sprintf(".%s: task %q wrote no outputs (it did not run, or wrote nothing to $KILN_OUTPUT)", strings.Join(chain, "."), task))
		case len(chain) > 2:
			if _, ok := written[chain[2]]; !ok {
				problems = append(problems, fmt.Sprintf(".%s: task %q wrote no output %q; it wrote %s", strings.Join(chain, "."), task, chain[2], quotedKeys(written)))
			}
		}
	}
	walkTemplate(tree.Root, true, check)
	return strings.Join(problems, "; ")
}

// quotedKeys lists a map's keys, sorted and quoted.
func quotedKeys(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, strconv.Quote(k))
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// templateFuncs are the functions templates have besides text/template's
// (docs/dag-format.md#template-functions).
var templateFuncs = template.FuncMap{
	"shellquote": func(v any) string {
		if s, ok := v.(string); ok {
			return ShellQuote(s)
		}
		return ShellQuote(fmt.Sprint(v))
	},
	"json": toJSON,
}

// toJSON encodes v as compact JSON, leaving <, > and & as they are.
func toJSON(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// Values are what templates and `when` expressions see for one try (docs/dag-format.md#template-values).
type Values struct {
	DAGID             string
	TaskID            string
	RunID             string
	TryNumber         int
	LogicalDate       time.Time
	DataIntervalStart time.Time
	DataIntervalEnd   time.Time
	Params            map[string]any
	// Outputs are the outputs of the run's tasks by task id: a map of key →
	// value, or for a mapped task the list of its instances' maps in
	// index order (docs/dag-format.md#mapping).
	Outputs map[string]any
	// Inputs holds what .inputs.NAME renders to for each of the task's
	// inputs: a placeholder the worker replaces with the path of the
	// downloaded file (docs/dag-format.md#artifacts-and-inputs).
	Inputs map[string]string
	Env    map[string]string
	// Callback holds .state, .error and .log_url for callback stages.
	Callback map[string]any
	// Secrets holds the values of the secrets the DAG's env refers to as
	// .secrets.NAME (docs/dag-format.md#secrets); nil when it refers to none.
	Secrets map[string]string
	// TriggeringEvents are the dataset events that triggered the run, as
	// .triggering_events: each a map of uri, time (RFC 3339), source_dag_id,
	// source_run_id, source_task_id (all "" for an event posted from
	// outside) and extra (a map, maybe empty) (docs/dag-format.md#datasets).
	TriggeringEvents []map[string]any
	// Mapped is set for an instance of a mapped task: Item is its element
	// of the list, MapIndex its index (docs/dag-format.md#mapping).
	Mapped   bool
	Item     any
	MapIndex int
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
		"logical_date":        TemplateTime{ld},
		"data_interval_start": TemplateTime{v.DataIntervalStart.In(loc)},
		"data_interval_end":   TemplateTime{v.DataIntervalEnd.In(loc)},
		"params":              orEmpty(v.Params),
		"outputs":             orEmpty(v.Outputs),
		"inputs":              orEmpty(v.Inputs),
		"env":                 orEmpty(v.Env),
		"triggering_events":   v.TriggeringEvents,
	}
	if v.TriggeringEvents == nil {
		m["triggering_events"] = []map[string]any{}
	}
	for k, x := range v.Callback {
		m[k] = x
	}
	if v.Secrets != nil {
		m["secrets"] = v.Secrets
	}
	if v.Mapped {
		m["item"], m["map_index"] = v.Item, v.MapIndex
	}
	return m
}

// TemplateTime is a time as templates see it: printed as it is, it reads
// RFC 3339 with the DAG's UTC offset (2026-03-01T03:00:00+01:00), one word
// for a shell; its time.Time methods (.Format, .UTC, .Unix, …) format it
// otherwise (docs/dag-format.md#template-values).
type TemplateTime struct{ time.Time }

// String formats t in RFC 3339, as .ts and $KILN_TS are.
func (t TemplateTime) String() string { return t.Format(time.RFC3339) }

// UTC returns t in UTC, printed as RFC 3339 too: {{ .logical_date.UTC }}.
func (t TemplateTime) UTC() TemplateTime { return TemplateTime{t.Time.UTC()} }

func orEmpty[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// cleanTemplateError drops text/template's prefixes, which name the
// unnamed template, from an error message.
func cleanTemplateError(msg string) string {
	_, m := splitTemplateError(msg)
	return strings.TrimPrefix(m, "executing \"\" at ")
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
