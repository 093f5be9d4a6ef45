package host

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestCheckFacts: a plugin's facts are kept when their keys and values are
// well formed, and at most maxFacts of them, so that a plugin cannot fill
// the store through its results.
func TestCheckFacts(t *testing.T) {
	many := map[string]string{}
	for i := range maxFacts + 5 {
		many[fmt.Sprintf("k%02d", i)] = "v"
	}
	tests := []struct {
		name string
		in   map[string]string
		want int
	}{
		{"none", nil, 0},
		{"good", map[string]string{"python_version": "3.11.2", "env_key": "ab12"}, 2},
		{"bad keys", map[string]string{"Upper": "x", "with space": "x", "": "x", strings.Repeat("k", 65): "x"}, 0},
		{"long value", map[string]string{"big": strings.Repeat("x", maxFactValue+1)}, 0},
		{"invalid UTF-8", map[string]string{"bytes": "\xff"}, 0},
		{"too many", many, maxFacts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := checkFacts(tt.in)
			if len(got) != tt.want {
				t.Errorf("kept %d facts, want %d: %v", len(got), tt.want, got)
			}
			for k, v := range got {
				if tt.in[k] != v {
					t.Errorf("fact %s = %q, want %q", k, v, tt.in[k])
				}
			}
		})
	}
	if diff := cmp.Diff(map[string]string{"a": "1"}, checkFacts(map[string]string{"a": "1", "B": "2"})); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
