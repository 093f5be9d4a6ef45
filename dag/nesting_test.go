package dag_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
)

// TestDeepNestingRefusedEarly: nesting far beyond the 64 levels allowed is
// refused where it passes the bound, before a tree of it is built, in
// little time and memory whatever the depth. The old loader built the whole
// tree first: 40,000 levels took 2.5 GB, 100,000 levels 15 GB and 76 s.
func TestDeepNestingRefusedEarly(t *testing.T) {
	blockMappings := func(levels int) string {
		var b strings.Builder
		b.WriteString("id: x\nx-deep:\n")
		for i := range levels {
			fmt.Fprintf(&b, "%sk%d:\n", strings.Repeat(" ", i+1), i)
		}
		return b.String()
	}
	tests := []struct {
		name      string
		src       string
		line, col int
	}{
		// The 65th [ is at column 8+64.
		{"40,000 levels of [", "id: x\ntasks: " + strings.Repeat("[", 40_000) + strings.Repeat("]", 40_000), 2, 72},
		{"100,000 levels of [", "id: x\ntasks: " + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000), 2, 72},
		{"100,000 levels of [ never closed", "id: x\ntasks: " + strings.Repeat("[", 100_000), 2, 72},
		{"100,000 levels of {", "id: x\ntasks: " + strings.Repeat("{a: ", 100_000) + strings.Repeat("}", 100_000), 2, 264},
		// The 65th block sequence starts at column 1+2*64.
		{"100,000 levels of block sequences", "id: x\ntasks:\n" + strings.Repeat("- ", 100_000) + "x\n", 3, 129},
		// Indentation costs a level per space, so 1 MiB holds about 1,400
		// levels of block mappings; level 65 is key k63 on line 66.
		{"1,400 levels of block mappings", blockMappings(1_400), 66, 68},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := []byte(tt.src)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := dag.Parse("deep.yaml", src, builtin)
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			want := fmt.Sprintf("deep.yaml:%d:%d: YAML nested more than 64 levels deep", tt.line, tt.col)
			if err == nil || err.Error() != want {
				t.Fatalf("Parse = %v, want %s", err, want)
			}
			// The limits are generous for a slow machine under the race
			// detector; the old loader was off by a thousand times.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Errorf("Parse allocated %d MiB for a %d KiB file, want under 16 MiB", alloc>>20, len(src)>>10)
			}
			if took > 5*time.Second {
				t.Errorf("Parse took %v, want well under a second", took)
			}
			t.Logf("%d KiB refused in %v, %d KiB allocated", len(src)>>10, took, (after.TotalAlloc-before.TotalAlloc)>>10)
		})
	}
}
