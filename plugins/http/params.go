package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kilnhq/kiln/plugins/sdk"
)

// defaultTimeout bounds a request whose task sets no `timeout`.
const defaultTimeout = 30 * time.Second

// params are the task's `with` parameters (schema.json).
type params struct {
	URL          string            `json:"url"`
	Method       string            `json:"method"`
	Headers      map[string]string `json:"headers"`
	Body         json.RawMessage   `json:"body"`
	ExpectStatus []int             `json:"expect_status"`
	Timeout      string            `json:"timeout"`
	Outputs      map[string]string `json:"outputs"`
}

// request is a task's request, checked and with its defaults filled in.
type request struct {
	url     string
	method  string
	header  http.Header
	body    []byte // nil: no body
	expect  []int  // empty: any 2xx
	timeout time.Duration
	outputs []output // in key order
}

// output is one entry of `outputs`.
type output struct {
	key string
	sel selector
}

// decodeRequest decodes and checks the task's parameters. Its errors say
// "invalid parameters", as sdk.Task.Decode's do.
func decodeRequest(t *sdk.Task) (*request, error) {
	var p params
	if err := t.Decode(&p); err != nil {
		return nil, err
	}
	r, err := p.request()
	if err != nil {
		return nil, fmt.Errorf("invalid parameters: %w", err)
	}
	return r, nil
}

func (p *params) request() (*request, error) {
	if p.URL == "" {
		return nil, errors.New("url is required")
	}
	r := &request{
		url:     p.URL,
		method:  strings.ToUpper(p.Method),
		header:  make(http.Header),
		expect:  p.ExpectStatus,
		timeout: defaultTimeout,
	}
	if r.method == "" {
		r.method = http.MethodGet
	}
	if p.Timeout != "" {
		d, err := time.ParseDuration(p.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("timeout: %q is not a positive duration such as 30s or 2m", p.Timeout)
		}
		r.timeout = d
	}
	body, isJSON, err := decodeBody(p.Body)
	if err != nil {
		return nil, err
	}
	r.body = body
	if isJSON {
		r.header.Set("Content-Type", "application/json")
	}
	for k, v := range p.Headers { // after the default, so that they win over it
		r.header.Set(k, v)
	}
	keys := make([]string, 0, len(p.Outputs))
	for k := range p.Outputs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "status" {
			return nil, errors.New(`outputs: "status" is always output and cannot be picked from the body`)
		}
		sel, err := parseSelector(p.Outputs[k])
		if err != nil {
			return nil, fmt.Errorf("outputs.%s: %w", k, err)
		}
		r.outputs = append(r.outputs, output{key: k, sel: sel})
	}
	return r, nil
}

// decodeBody returns the bytes to send for a `body` parameter, and whether
// they are JSON: a string is sent as it is, an object or array as JSON.
func decodeBody(raw json.RawMessage) ([]byte, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, false, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, false, fmt.Errorf("body: %w", err)
		}
		return []byte(s), false, nil
	case '{', '[':
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, false, fmt.Errorf("body: %w", err)
		}
		return buf.Bytes(), true, nil
	}
	return nil, false, fmt.Errorf("body: want a string, an object or an array, got %s", raw)
}

// expects reports whether code is a status the task accepts.
func (r *request) expects(code int) bool {
	if len(r.expect) == 0 {
		return code >= 200 && code <= 299
	}
	return slices.Contains(r.expect, code)
}

// wanted says which statuses the task accepts, for error messages.
func (r *request) wanted() string {
	switch len(r.expect) {
	case 0:
		return "2xx"
	case 1:
		return strconv.Itoa(r.expect[0])
	}
	s := make([]string, len(r.expect))
	for i, c := range r.expect {
		s[i] = strconv.Itoa(c)
	}
	return "one of " + strings.Join(s, ", ")
}
