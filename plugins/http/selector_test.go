package http

import (
	"strings"
	"testing"
)

func TestSelectorPick(t *testing.T) {
	const doc = `{
		"data": {"id": "abc", "n": 42, "big": 12345678901234567890, "ok": true, "none": null,
		         "items": [{"name": "first"}, {"name": "second", "tags": ["x", "y"]}],
		         "obj": {"b": 1, "a": "<&>"}},
		"odd key": {"a.b": "dotted"},
		"list": [1, 2, 3]
	}`
	v, err := decodeJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sel, want string
	}{
		{"$.data.id", "abc"},
		{"data.id", "abc"},
		{".data.id", "abc"},
		{"$.data.n", "42"},
		{"$.data.big", "12345678901234567890"}, // not rounded through a float
		{"$.data.ok", "true"},
		{"$.data.none", "null"},
		{"$.data.items[0].name", "first"},
		{"data.items[1].tags[1]", "y"},
		{"$.data.items[-1].name", "second"},
		{"$.list", "[1,2,3]"},
		{"$.data.obj", `{"a":"<&>","b":1}`},
		{`$["odd key"]['a.b']`, "dotted"},
		{`$['odd key']["a.b"]`, "dotted"},
		{"$.list[ 2 ]", "3"},
		{" $.data.id ", "abc"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel, err := parseSelector(tt.sel)
			if err != nil {
				t.Fatalf("parseSelector: %v", err)
			}
			got, err := sel.pick(v)
			if err != nil {
				t.Fatalf("pick: %v", err)
			}
			s, err := outputValue(got)
			if err != nil {
				t.Fatal(err)
			}
			if s != tt.want {
				t.Errorf("got %q, want %q", s, tt.want)
			}
		})
	}

	whole, _ := parseSelector("$")
	if got, err := whole.pick("x"); err != nil || got != "x" {
		t.Errorf(`"$" picked %v, %v; want the whole document`, got, err)
	}
}

func TestSelectorPickErrors(t *testing.T) {
	v, err := decodeJSON([]byte(`{"data": {"id": "abc", "items": [1, 2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sel, want string
	}{
		{"$.data.name", `$.data has no key "name"`},
		{"$.nope.id", `$ has no key "nope"`},
		{"$.data.items[2]", "index 2 is out of range: $.data.items has 2 items"},
		{"$.data.items[-3]", "index -3 is out of range"},
		{"$.data.id.x", "$.data.id is a string, not an object"},
		{"$.data[0]", "$.data is an object, not an array"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			sel, err := parseSelector(tt.sel)
			if err != nil {
				t.Fatalf("parseSelector: %v", err)
			}
			_, err = sel.pick(v)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.sel) {
				t.Errorf("error %v, want one naming %q and containing %q", err, tt.sel, tt.want)
			}
		})
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct {
		sel, want string
	}{
		{"", "empty selector"},
		{"$.", "empty key"},
		{"$..a", "empty key"},
		{"$.a[", "missing ']'"},
		{"$.a[x]", "not an array index"},
		{"$.a[*]", "not supported"},
		{"$.*", "not supported"},
		{"$.a[1:2]", "not supported"},
		{`$["a]`, "unterminated quoted key"},
		{"$a", "unexpected"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			_, err := parseSelector(tt.sel)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeJSON(t *testing.T) {
	for _, bad := range []string{"", "not json", `{"a":1} x`, `{"a":1}{}`} {
		if _, err := decodeJSON([]byte(bad)); err == nil {
			t.Errorf("decodeJSON(%q) succeeded, want an error", bad)
		}
	}
	if _, err := decodeJSON([]byte("{\"a\": 1}\n")); err != nil {
		t.Errorf("trailing newline: %v", err)
	}
}
