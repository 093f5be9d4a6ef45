package dag

import (
	"strings"
	"testing"
)

// TestValueBudget: a file whose values, aliases expanded, pass the budget
// is refused, and the message blames aliases only when there are some.
func TestValueBudget(t *testing.T) {
	opts := Options{Plugins: MapCatalog{"shell": {Name: "shell"}}}
	big := "tasks:\n  - id: a\n    plugin: shell\n    with: {command: x, list: [" + strings.Repeat("1,", nodeBudget) + "1]}\n"
	bomb := `x-a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
x-b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
x-c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
x-d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
x-e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
tasks:
  - id: a
    plugin: shell
    with: {command: x, list: [*e, *e, *e]}
`
	for _, tc := range []struct{ name, src, want string }{
		{"many values", big, "file too large: more than 200000 values"},
		{"alias bomb", bomb, "value too large: aliases expand to more than 200000 values"},
	} {
		_, err := Parse("b.yaml", []byte(tc.src), opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if tc.name == "many values" && strings.Contains(err.Error(), "alias") {
			t.Errorf("%s: %v mentions aliases, the file has none", tc.name, err)
		}
	}
}
