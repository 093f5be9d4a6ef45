package dag

import (
	"fmt"
	"testing"

	"github.com/expr-lang/expr"
)

// TestCompileProgram: compiling with a pooled configuration gives what
// expr.Compile gives, programs and errors alike.
func TestCompileProgram(t *testing.T) {
	for _, src := range []string{
		`params.region == "eu"`,
		`params.min_accuracy > 0 && ds != "2026-01-01"`,
		`int(outputs.extract.rows) > 10 || dag_id startsWith "x"`,
		`len(params.list) > 2 and logical_date.Year() >= 2026`,
		`1 + 1 == 2`,
		`"a" in ["a", "b"]`,
		`params.x ?? false`,
		`params.region ==`,
		`nope > 1`,
		`ds + 1`,
		`42`,
		`params.region == "eu" &&`,
		`upper(ds) == "X"`,
		`let x = 1; x > 0`,
	} {
		got, gotErr := compileProgram(src)
		want, wantErr := expr.Compile(src, whenOptions...)
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Errorf("%q: error %v, want %v", src, gotErr, wantErr)
			continue
		}
		if want != nil && (got == nil || got.Disassemble() != want.Disassemble()) {
			t.Errorf("%q: program differs from expr.Compile's", src)
		}
	}
}
