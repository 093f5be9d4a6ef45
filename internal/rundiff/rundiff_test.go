package rundiff

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kilnhq/kiln/store"
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

// TestMappedInstances: each instance of a mapped task is compared on its
// own, by its instance key, with its own try's manifest.
func TestMappedInstances(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "kiln.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	var b store.Batch
	for r, runID := range []string{"a", "b"} {
		ld := day.AddDate(0, 0, r)
		b.PutRun(&store.Run{DAGID: "fan", RunID: runID, RunType: store.RunTypeManual, State: store.RunSuccess,
			LogicalDate: ld, DataIntervalStart: ld, DataIntervalEnd: ld, QueuedAt: ld})
		b.PutTaskInstance(&store.TaskInstance{DAGID: "fan", RunID: runID, TaskID: "square", MapIndex: store.NoMapIndex, MapLength: 12, State: store.TaskSuccess})
		for i := range 12 {
			rows := "10"
			if runID == "b" && i == 3 {
				rows = "11"
			}
			b.PutTaskInstance(&store.TaskInstance{DAGID: "fan", RunID: runID, TaskID: "square", MapIndex: i, State: store.TaskSuccess, TryNumber: 1,
				Outputs: map[string]any{"rows": rows}})
			b.PutTry(&store.Try{DAGID: "fan", RunID: runID, TaskID: "square", MapIndex: i, Number: 1, State: store.TaskSuccess,
				Manifest: &store.Manifest{With: map[string]any{"command": fmt.Sprintf("echo %d", i)}}})
		}
	}
	if err := st.Commit(t.Context(), &b); err != nil {
		t.Fatal(err)
	}
	d, err := Compute(st, "fan", "a", "fan", "b")
	if err != nil {
		t.Fatal(err)
	}
	want := []Task{{TaskID: "square[3]", Outputs: []Value{{Key: "rows", A: "10", B: "11"}}}}
	if diff := cmp.Diff(want, d.Tasks); diff != "" || !d.Same {
		t.Errorf("tasks (-want +got):\n%s\nsame = %v, want true (only an output differs)", diff, d.Same)
	}
}
