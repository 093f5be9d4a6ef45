package rundiff

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestValues(t *testing.T) {
	a := map[string]any{"same": 1, "num": 1.0, "gone": "x", "changed": []any{"a"}}
	b := map[string]any{"same": 1, "num": 1, "new": true, "changed": []any{"b"}}
	want := []Value{
		{Key: "changed", A: []any{"a"}, B: []any{"b"}},
		{Key: "gone", A: "x"},
		{Key: "new", B: true},
	}
	if diff := cmp.Diff(want, values(a, b)); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if got := values(nil, nil); got != nil {
		t.Errorf("values of nothing = %v", got)
	}
}

func TestFlattenAndDurations(t *testing.T) {
	got := flatten(map[string]map[string]any{"extract": {"rows": "10"}})
	if diff := cmp.Diff(map[string]any{"extract.rows": "10"}, got); diff != "" {
		t.Errorf("flatten (-want +got):\n%s", diff)
	}
	one, onePlus, three := 1.0, 1.9, 3.0
	for _, tc := range []struct {
		a, b *float64
		want bool
	}{{&one, &onePlus, true}, {&one, &three, false}, {nil, &one, false}, {nil, nil, true}} {
		if got := closeDurations(tc.a, tc.b); got != tc.want {
			t.Errorf("closeDurations(%v, %v) = %v", tc.a, tc.b, got)
		}
	}
}
