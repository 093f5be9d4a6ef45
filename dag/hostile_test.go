package dag_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kilnhq/kiln/dag"
)

// fill writes head, then as many units (unit(0), unit(1), ...) as fit with
// tail in size bytes, then tail.
func fill(size int, head string, unit func(i int) string, tail string) string {
	var b strings.Builder
	b.WriteString(head)
	for i := 0; ; i++ {
		u := unit(i)
		if b.Len()+len(u)+len(tail) > size {
			break
		}
		b.WriteString(u)
	}
	b.WriteString(tail)
	return b.String()
}

// hostileShapes are files whose cost grew faster than their size before
// the loader bounded it: keys looked up by a scan of their mapping, merges
// copied without limit, every unknown name compared with every task id,
// and every problem located by a scan. Each returns a file of size bytes.
var hostileShapes = []struct {
	name string
	gen  func(size int) string
}{
	{"one mapping of many keys", func(size int) string {
		return fill(size, "id: x\ntasks: [{id: a, plugin: shell, with: {command: x}}]\nenv:\n",
			func(i int) string { return fmt.Sprintf("  K%d: v\n", i) }, "")
	}},
	{"a mapping merged into many", func(size int) string {
		return fill(size, "id: x\ntasks: [{id: a, plugin: shell, with: {command: x}}]\nx-a: &a {",
			func(i int) string { return fmt.Sprintf("k%d: 1, ", i) },
			"}\nx-b: ["+strings.Repeat("{<<: *a}, ", 300)+"]\n")
	}},
	{"many tasks needing unknown tasks of long names", func(size int) string {
		return fill(size, "id: x\ntasks:\n", func(i int) string {
			return fmt.Sprintf("- {id: %s%d, plugin: shell, with: {command: x}, depends_on: [%s%d]}\n",
				strings.Repeat("a", 190), i, strings.Repeat("b", 190), i)
		}, "")
	}},
	{"a plugin given many unknown keys", func(size int) string {
		return fill(size, "id: x\ntasks:\n- id: a\n  plugin: shell\n  with:\n    command: x\n",
			func(i int) string { return fmt.Sprintf("    zz%d: 1\n", i) }, "")
	}},
	{"many valid tasks", func(size int) string {
		return fill(size, "id: x\ntasks:\n", func(i int) string {
			return fmt.Sprintf("- {id: t%d, plugin: shell, with: {command: x}}\n", i)
		}, "")
	}},
	{"many inputs naming misspelt artifacts of a task with as many", func(size int) string {
		artifacts := fill(size/2, "id: x\ntasks:\n- id: a\n  plugin: shell\n  with: {command: x}\n  artifacts:\n",
			func(i int) string { return fmt.Sprintf("    artifact_%d: out/%d\n", i, i) }, "")
		return fill(size, artifacts+"- id: b\n  plugin: shell\n  with: {command: x}\n  depends_on: [a]\n  inputs:\n",
			func(i int) string { return fmt.Sprintf("    in_%d: a.artifcat_%d\n", i, i) }, "")
	}},
	{"many nests 60 levels deep", func(size int) string {
		return fill(size, "id: x\ntasks: [", func(int) string {
			return strings.Repeat("[", 60) + strings.Repeat("]", 60) + ", "
		}, "]\n")
	}},
}

// TestManyProblemsStayCheap: a file naming many unknown tasks reports the
// first 100 problems and a note, in a time that does not grow with the
// square of the file. Before, each unknown name of 200 characters was
// compared with every task id, letter by letter, for a suggestion: 28 s
// for this file of 128 KiB on a busy machine, half an hour for 1 MiB.
func TestManyProblemsStayCheap(t *testing.T) {
	src := hostileShapes[2].gen(128 << 10)
	start := time.Now()
	_, err := dag.Parse("p.yaml", []byte(src), builtin)
	took := time.Since(start)
	errs, _ := err.(dag.ErrorList)
	if len(errs) != 101 || errs[100].Msg != "too many problems: the first 100 found are reported" {
		t.Fatalf("got %d problems, want 100 and a note; the last: %v", len(errs), errs[len(errs)-1])
	}
	if want := fmt.Sprintf("depends_on: no task %q in this DAG", strings.Repeat("b", 190)+"0"); !strings.HasPrefix(errs[0].Msg, want) {
		t.Errorf("first problem %q, want %q", errs[0].Msg, want)
	}
	if took > 20*time.Second {
		t.Errorf("Parse took %v, want well under a second", took)
	}
}

// BenchmarkParseHostile parses each hostile shape at the largest size a
// DAG file may have (docs/performance.md gives the figures).
func BenchmarkParseHostile(b *testing.B) {
	for _, s := range hostileShapes {
		src := []byte(s.gen(1 << 20))
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				_, _ = dag.Parse("p.yaml", src, builtin)
			}
		})
	}
}
