package dag

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Param is one typed run parameter, declared with a JSON-Schema subset.
type Param struct {
	Name        string
	Type        string // string, number, integer, boolean, array, object; empty: any
	Default     any
	HasDefault  bool
	Enum        []any
	Minimum     *float64
	Maximum     *float64
	Description string

	schema *jsonschema.Schema
}

// paramTypes are the JSON-Schema types a param may declare.
var paramTypes = []string{"string", "number", "integer", "boolean", "array", "object"}

// Validate checks a value against the param's schema.
func (p *Param) Validate(v any) error {
	if err := p.schema.Validate(v); err != nil {
		return fmt.Errorf("param %s: %s", p.Name, schemaMessage(p.schema, err))
	}
	return nil
}

// Coerce turns a command-line string (`--param K=V`) into a value of the
// declared type. Arrays and objects are written as JSON; an untyped param
// takes JSON when the string parses as JSON, else the string itself.
func (p *Param) Coerce(s string) (any, error) {
	bad := func(what string) error {
		return fmt.Errorf("param %s: %q is not %s", p.Name, s, what)
	}
	switch p.Type {
	case "string":
		return s, nil
	case "integer":
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, bad("an integer")
		}
		return n, nil
	case "number":
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, bad("a number")
		}
		return f, nil
	case "boolean":
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, bad("a boolean (true or false)")
		}
		return b, nil
	case "array", "object":
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(s))
		if err != nil {
			return nil, bad("valid JSON")
		}
		return v, nil
	}
	if v, err := jsonschema.UnmarshalJSON(strings.NewReader(s)); err == nil {
		return v, nil
	}
	return s, nil
}

// ResolveParams returns the params of a run: the given values, coerced
// strings already applied, checked against their schemas, with defaults
// filled in. An unknown name or a missing required param is an error.
func (d *DAG) ResolveParams(given map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(d.Params))
	var errs []string
	for name := range given {
		if d.Param(name) == nil {
			errs = append(errs, fmt.Sprintf("unknown param %q (declared: %s)", name, d.paramNames()))
		}
	}
	for _, p := range d.Params {
		v, ok := given[p.Name]
		switch {
		case ok:
			if err := p.Validate(v); err != nil {
				errs = append(errs, err.Error())
				continue
			}
			out[p.Name] = v
		case p.HasDefault:
			out[p.Name] = p.Default
		default:
			errs = append(errs, fmt.Sprintf("param %s is required: it has no default", p.Name))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// ParseParamArgs parses `--param K=V` arguments, coercing each value to the
// declared type of K. The result still needs ResolveParams.
func (d *DAG) ParseParamArgs(args []string) (map[string]any, error) {
	out := make(map[string]any, len(args))
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want NAME=VALUE", a)
		}
		p := d.Param(k)
		if p == nil {
			return nil, fmt.Errorf("--param %s: unknown param (declared: %s)", k, d.paramNames())
		}
		x, err := p.Coerce(v)
		if err != nil {
			return nil, fmt.Errorf("--param %s", err.Error()[len("param "):])
		}
		out[k] = x
	}
	return out, nil
}

func (d *DAG) paramNames() string {
	if len(d.Params) == 0 {
		return "none"
	}
	names := make([]string, len(d.Params))
	for i, p := range d.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// compileParamSchema builds the JSON Schema of a param. Identical schemas
// are compiled once per process: many DAGs share a handful of param shapes.
func compileParamSchema(p *Param) (*jsonschema.Schema, error) {
	doc := map[string]any{}
	if p.Type != "" {
		doc["type"] = p.Type
	}
	if p.Enum != nil {
		doc["enum"] = p.Enum
	}
	if p.Minimum != nil {
		doc["minimum"] = *p.Minimum
	}
	if p.Maximum != nil {
		doc["maximum"] = *p.Maximum
	}
	return compileSchema(doc)
}

var schemaCache sync.Map // canonical JSON → *jsonschema.Schema

// compileSchema compiles a JSON Schema document given as Go values.
func compileSchema(doc map[string]any) (*jsonschema.Schema, error) {
	key, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	if s, ok := schemaCache.Load(string(key)); ok {
		return s.(*jsonschema.Schema), nil
	}
	// Round-trip through JSON so the compiler sees JSON types only.
	norm, err := jsonschema.UnmarshalJSON(strings.NewReader(string(key)))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", norm); err != nil {
		return nil, err
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		return nil, err
	}
	schemaCache.Store(string(key), s)
	return s, nil
}

// CompileSchemaJSON compiles a JSON Schema document, for plugin catalogs.
func CompileSchemaJSON(doc []byte) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(doc)))
	if err != nil {
		return nil, fmt.Errorf("parsing schema: %w", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("schema is not a JSON object")
	}
	return compileSchema(m)
}

var printer = message.NewPrinter(language.English)

// schemaProblem is one leaf failure of a schema validation.
type schemaProblem struct {
	path []string // instance location
	key  string   // the offending key of the mapping at path, if any
	msg  string
	// known are the keys the mapping at path may have, for a suggestion
	// when key is unknown.
	known []string
}

// schemaProblems flattens a validation error of a value against root to
// its leaf causes.
func schemaProblems(root *jsonschema.Schema, err error) []schemaProblem {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []schemaProblem{{msg: err.Error()}}
	}
	var out []schemaProblem
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		switch k := e.ErrorKind.(type) {
		case *kind.OneOf:
			if msg, ok := oneOfKeys(findSchema(root, e.SchemaURL), k.Subschemas); ok {
				out = append(out, schemaProblem{path: e.InstanceLocation, msg: msg})
				return
			}
		case *kind.AdditionalProperties:
			var known []string
			if sch := findSchema(root, e.SchemaURL); sch != nil {
				known = slices.Sorted(maps.Keys(sch.Properties))
			}
			for _, prop := range k.Properties {
				out = append(out, schemaProblem{path: e.InstanceLocation, key: prop, msg: fmt.Sprintf("unknown key %q", prop), known: known})
			}
			return
		case *kind.Pattern:
			// A pattern says little to people; the description of what
			// it checks says more.
			if sch := findSchema(root, e.SchemaURL); sch != nil && sch.Description != "" {
				out = append(out, schemaProblem{path: e.InstanceLocation, msg: fmt.Sprintf("%q is not valid: want %s", k.Got, lowerFirst(sch.Description))})
				return
			}
		case *kind.PropertyNames:
			// The library aliases its location buffer for this kind, so
			// the path is unreliable: the caller finds the key instead.
			out = append(out, schemaProblem{key: k.Property, msg: fmt.Sprintf("invalid key %q", k.Property)})
			return
		}
		if len(e.Causes) == 0 {
			out = append(out, schemaProblem{path: e.InstanceLocation, msg: e.ErrorKind.LocalizedString(printer)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return slices.CompactFunc(out, func(a, b schemaProblem) bool {
		return a.msg == b.msg && a.key == b.key && slices.Equal(a.path, b.path)
	})
}

// oneOfKeys words the failure of a oneOf whose alternatives each require
// one key, a common way to say "exactly one of these keys": which keys, and
// for more than one match, the keys that clash. It reports false for any
// other oneOf.
func oneOfKeys(s *jsonschema.Schema, matched []int) (string, bool) {
	if s == nil || len(s.OneOf) < 2 {
		return "", false
	}
	keys := make([]string, len(s.OneOf))
	for i, alt := range s.OneOf {
		if len(alt.Required) != 1 {
			return "", false
		}
		keys[i] = alt.Required[0]
	}
	if len(matched) == 0 {
		return "needs one of " + orList(keys), true
	}
	set := make([]string, 0, len(matched))
	for _, i := range matched {
		if i >= 0 && i < len(keys) {
			set = append(set, keys[i])
		}
	}
	return fmt.Sprintf("takes only one of %s, not %s together", orList(keys), strings.Join(set, " and ")), true
}

// orList joins words as "a, b or c".
func orList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// findSchema finds the subschema of root at location, looking through the
// keywords that hold subschemas of objects, arrays and combinations; nil if
// it is not there.
func findSchema(root *jsonschema.Schema, location string) *jsonschema.Schema {
	seen := map[*jsonschema.Schema]bool{}
	var find func(s *jsonschema.Schema) *jsonschema.Schema
	find = func(s *jsonschema.Schema) *jsonschema.Schema {
		if s == nil || seen[s] {
			return nil
		}
		seen[s] = true
		if s.Location == location {
			return s
		}
		subs := slices.Concat(s.OneOf, s.AnyOf, s.AllOf, []*jsonschema.Schema{s.Ref, s.Items2020})
		for _, p := range s.Properties {
			subs = append(subs, p)
		}
		for _, sub := range subs {
			if f := find(sub); f != nil {
				return f
			}
		}
		return nil
	}
	return find(root)
}

// schemaMessage joins the leaf problems of a validation error of a value
// against root.
func schemaMessage(root *jsonschema.Schema, err error) string {
	var parts []string
	for _, p := range schemaProblems(root, err) {
		if len(p.path) > 0 {
			parts = append(parts, strings.Join(p.path, ".")+": "+p.msg)
		} else {
			parts = append(parts, p.msg)
		}
	}
	return strings.Join(parts, "; ")
}

// NormalizeNumbers replaces the json.Numbers in a value decoded with
// UseNumber by int64 when they are integers and float64 otherwise, the
// types Param.Coerce produces, so params reach validation and runs alike
// whether they came from JSON or from `--param`.
func NormalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = NormalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = NormalizeNumbers(e)
		}
	}
	return v
}

// lowerFirst lowers the first letter of a description, for the middle of
// a sentence, unless it starts a word in capitals (SOURCE, URL).
func lowerFirst(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if next, _ := utf8.DecodeRuneInString(s[size:]); unicode.IsUpper(next) {
		return s
	}
	return string(unicode.ToLower(r)) + s[size:]
}
