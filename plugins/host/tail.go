package host

import (
	"bytes"
	"strings"
	"sync"
)

const (
	tailLines   = 64  // lines a plugin's stderr tail keeps
	tailLineMax = 512 // bytes kept of one line
	crashLines  = 8   // lines a crash report quotes: a panic and its top frames
)

// tail keeps the last lines a plugin process wrote to stderr, to say why it
// crashed. It is an io.Writer fed by go-plugin's stderr reader (and its
// stdio stream), which may write a line and its newline separately.
type tail struct {
	mu    sync.Mutex
	lines []string // ring of the last tailLines lines
	next  int      // index in lines of the next line to write
	full  bool
	part  []byte // the line being written, up to tailLineMax
}

func newTail() *tail { return &tail{lines: make([]string, tailLines)} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.appendPart(p)
			break
		}
		t.appendPart(p[:i])
		t.push(string(t.part))
		t.part = t.part[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (t *tail) appendPart(p []byte) {
	if room := tailLineMax - len(t.part); room < len(p) {
		p = p[:max(room, 0)]
	}
	t.part = append(t.part, p...)
}

func (t *tail) push(line string) {
	t.lines[t.next] = line
	t.next = (t.next + 1) % len(t.lines)
	if t.next == 0 {
		t.full = true
	}
}

// snapshot returns the kept lines, oldest first, and the unfinished one.
func (t *tail) snapshot() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	if t.full {
		out = append(out, t.lines[t.next:]...)
	}
	out = append(out, t.lines[:t.next]...)
	if len(t.part) > 0 {
		out = append(out, string(t.part))
	}
	return out
}

// crashReport picks what explains a crash: a Go panic or fatal error from its
// first line on, else the last lines.
func (t *tail) crashReport() string {
	lines := t.snapshot()
	start := max(len(lines)-crashLines, 0)
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			start = i
			break
		}
	}
	lines = lines[start:min(len(lines), start+crashLines)]
	for len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) == "" {
		lines = lines[:len(lines)-1]
	}
	if len(lines) == 0 {
		return "(no output on stderr)"
	}
	return strings.Join(lines, "\n")
}
