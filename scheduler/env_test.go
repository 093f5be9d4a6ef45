package scheduler

import "testing"

// TestParamsReachTheEnvironment: every param reaches the task's process as
// $KILN_PARAM_NAME, a string as it is and anything else as JSON, so a
// command can read an operator's value without it becoming shell code.
func TestParamsReachTheEnvironment(t *testing.T) {
	h := newHarness(t, `
id: p
params:
  name: {type: string, default: x}
  n: {type: integer, default: 1}
  tags: {type: array, default: []}
tasks: [{id: a, plugin: shell, with: {command: 'echo "$KILN_PARAM_NAME"'}}]
`)
	_, as := h.trigger("p", map[string]any{"name": `"; touch /tmp/pwned; echo "`, "n": 7, "tags": []any{"a", "b"}})
	want := map[string]string{
		"KILN_PARAM_NAME": `"; touch /tmp/pwned; echo "`,
		"KILN_PARAM_N":    "7",
		"KILN_PARAM_TAGS": `["a","b"]`,
	}
	for k, v := range want {
		if got := as[0].Env[k]; got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}
