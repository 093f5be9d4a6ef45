package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"hello", "ml_pipeline", "ml_pipeline_v2", "etl"}
	for _, tt := range []struct{ s, want string }{
		{"ml_pipelin", "ml_pipeline"},
		{"ml_pipeline_v3", "ml_pipeline_v2"},
		{"helo", "hello"},
		{"hello", ""}, // known already
		{"ETL", ""},   // three edits
		{"x", ""},
		{"", ""},
	} {
		if got := Closest(tt.s, known); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.s, got, tt.want)
		}
	}
	if got := DidYouMean("helo", known); got != ` (did you mean "hello"?)` {
		t.Errorf("DidYouMean = %q", got)
	}
}
