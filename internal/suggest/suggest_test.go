package suggest

import "testing"

func TestClosest(t *testing.T) {
	known := []string{"hello", "ml_pipeline", "ml_pipeline_v2", "etl"}
	for _, tt := range []struct{ s, want string }{
		{"ml_pipelin", "ml_pipeline"},
		{"ml_pipeline_v3", "ml_pipeline_v2"},
		{"helo", "hello"},
		{"hlelo", "hello"}, // two letters swapped: one edit
		{"hello", ""},      // known already
		{"ETL", ""},        // three edits
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

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"join", "join", 0},
		{"jion", "join", 1}, // adjacent letters swapped
		{"ojin", "join", 1}, // at the start
		{"joni", "join", 1}, // at the end
		{"jnio", "join", 2}, // not adjacent
		{"ca", "abc", 3},    // each substring edited once
		{"extrct", "extract", 1},
		{"featres", "features", 1},
		{"kitten", "sitting", 3},
	} {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}
