package host

import (
	"fmt"
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string
	}{
		{"nothing", nil, "(no output on stderr)"},
		{"last lines", []string{"a\nb", "\n", "c"}, "a\nb\nc"},
		{"panic and its frames, not what follows",
			[]string{`{"@level":"info"}` + "\n", "panic: boom\n\ngoroutine 1 [running]:\nmain.f()\n\tf.go:1\n"},
			"panic: boom\n\ngoroutine 1 [running]:\nmain.f()\n\tf.go:1"},
		{"long line cut", []string{strings.Repeat("x", 2000) + "\n"}, strings.Repeat("x", tailLineMax)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTail()
			for _, w := range tt.writes {
				tl.Write([]byte(w))
			}
			if got := tl.crashReport(); got != tt.want {
				t.Errorf("crashReport() = %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("ring keeps the last lines", func(t *testing.T) {
		tl := newTail()
		for i := range 1000 {
			fmt.Fprintf(tl, "line %d\n", i)
		}
		lines := tl.snapshot()
		if len(lines) != tailLines || lines[0] != fmt.Sprintf("line %d", 1000-tailLines) || lines[len(lines)-1] != "line 999" {
			t.Errorf("snapshot = %d lines, %q .. %q", len(lines), lines[0], lines[len(lines)-1])
		}
		if got, want := tl.crashReport(), "line 992"; !strings.HasPrefix(got, want) {
			t.Errorf("crashReport() = %q, want the last %d lines", got, crashLines)
		}
	})
}
