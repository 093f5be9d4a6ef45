package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// A selector picks one value out of a JSON document by a path of object
// keys and array indexes, in the dotted subset of JSONPath: `$.data.id`,
// `data.items[0].name`, `$["odd key"][-1]` (a negative index counts from
// the end), `$` (the whole document). Wildcards, slices and filters are
// not supported: an output is one value.
type selector struct {
	src   string
	steps []step
}

// step is one key or index of a selector's path.
type step struct {
	key     string
	index   int
	isIndex bool
}

func (s step) String() string {
	if s.isIndex {
		return "[" + strconv.Itoa(s.index) + "]"
	}
	if s.key == "" || strings.ContainsAny(s.key, `.[]"' `) {
		return "[" + strconv.Quote(s.key) + "]"
	}
	return "." + s.key
}

// pathString writes steps the way a selector spells them.
func pathString(steps []step) string {
	var b strings.Builder
	b.WriteString("$")
	for _, s := range steps {
		b.WriteString(s.String())
	}
	return b.String()
}

func parseSelector(src string) (selector, error) {
	sel := selector{src: src}
	s := strings.TrimSpace(src)
	if s == "" {
		return sel, errors.New("empty selector")
	}
	bad := func(format string, args ...any) (selector, error) {
		return sel, fmt.Errorf("selector %q: %s", src, fmt.Sprintf(format, args...))
	}
	switch {
	case s[0] == '$':
		s = s[1:]
	case s[0] != '.' && s[0] != '[':
		s = "." + s // `data.id` reads as `$.data.id`
	}
	for s != "" {
		switch s[0] {
		case '.':
			s = s[1:]
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			key := s[:end]
			if key == "" {
				return bad("empty key after '.'")
			}
			if key == "*" {
				return bad("wildcards are not supported")
			}
			sel.steps = append(sel.steps, step{key: key})
			s = s[end:]
		case '[':
			end := strings.IndexByte(s, ']')
			if q := s[1:min(2, len(s))]; q == `"` || q == "'" {
				// A quoted key may hold ']': find its closing quote first.
				closeQ := strings.IndexByte(s[2:], q[0])
				if closeQ < 0 || !strings.HasPrefix(s[2+closeQ+1:], "]") {
					return bad("unterminated quoted key")
				}
				sel.steps = append(sel.steps, step{key: s[2 : 2+closeQ]})
				s = s[2+closeQ+2:]
				continue
			}
			if end < 0 {
				return bad("missing ']'")
			}
			in := strings.TrimSpace(s[1:end])
			if in == "*" || strings.Contains(in, ":") || strings.HasPrefix(in, "?") {
				return bad("wildcards, slices and filters are not supported")
			}
			i, err := strconv.Atoi(in)
			if err != nil {
				return bad("%q is not an array index", in)
			}
			sel.steps = append(sel.steps, step{index: i, isIndex: true})
			s = s[end+1:]
		default:
			return bad("unexpected %q", s[0])
		}
	}
	return sel, nil
}

// pick returns the value the selector names in doc, a document decoded by
// decodeJSON.
func (sel selector) pick(doc any) (any, error) {
	v := doc
	for i, st := range sel.steps {
		at := pathString(sel.steps[:i])
		if st.isIndex {
			a, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("selector %q: %s is %s, not an array", sel.src, at, kind(v))
			}
			idx := st.index
			if idx < 0 {
				idx += len(a)
			}
			if idx < 0 || idx >= len(a) {
				return nil, fmt.Errorf("selector %q: index %d is out of range: %s has %d items", sel.src, st.index, at, len(a))
			}
			v = a[idx]
			continue
		}
		m, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("selector %q: %s is %s, not an object", sel.src, at, kind(v))
		}
		if v, ok = m[st.key]; !ok {
			return nil, fmt.Errorf("selector %q: %s has no key %q", sel.src, at, st.key)
		}
	}
	return v, nil
}

// kind names the JSON type of v, for error messages.
func kind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}

// decodeJSON decodes a whole JSON document, keeping numbers as they were
// written.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid data after the top-level value")
	}
	return v, nil
}

// outputValue turns a picked value into an output: a string as it is,
// anything else as compact JSON.
func outputValue(v any) (string, error) {
	if s, ok := v.(string); ok {
		return s, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}
