package worker

import (
	"bytes"

	"github.com/kilnhq/kiln/internal/secrets"
)

// masked is what a secret's value becomes in a log.
var masked = []byte(secrets.Masked)

// masker replaces the values of a try's secrets with *** in its log
// (docs/dag-format.md#secrets). A log arrives in pieces, so it holds back the end of a piece
// when that end could begin a secret that the next piece completes.
type masker struct {
	mask    *secrets.Mask
	secrets [][]byte // mask's values, longest first
	first   [256]bool
	held    []byte
}

// newMasker returns a masker for the values, or nil when none is long
// enough to be masked.
func newMasker(values []string) *masker {
	mask := secrets.NewMask(values)
	if mask == nil {
		return nil
	}
	m := &masker{mask: mask}
	for _, v := range mask.Values() {
		m.secrets = append(m.secrets, []byte(v))
		m.first[v[0]] = true
	}
	return m
}

// write masks p, after what was held back, and passes the result to emit.
func (m *masker) write(p []byte, emit func([]byte)) {
	data := p
	if len(m.held) > 0 {
		data = append(m.held, p...)
		m.held = nil
	}
	start := 0 // data[start:i] is clear text not yet emitted
	for i := 0; i < len(data); {
		if !m.first[data[i]] {
			i++
			continue
		}
		if n := m.matchAt(data[i:]); n > 0 {
			emit(data[start:i])
			emit(masked)
			i += n
			start = i
			continue
		}
		if m.mayStart(data[i:]) {
			emit(data[start:i])
			m.held = append([]byte(nil), data[i:]...)
			return
		}
		i++
	}
	emit(data[start:])
}

// matchAt returns the length of the secret data starts with, or 0.
func (m *masker) matchAt(data []byte) int {
	for _, s := range m.secrets {
		if bytes.HasPrefix(data, s) {
			return len(s)
		}
	}
	return 0
}

// mayStart reports whether data, the end of what arrived, is the start of
// a secret cut short.
func (m *masker) mayStart(data []byte) bool {
	for _, s := range m.secrets {
		if len(data) < len(s) && bytes.HasPrefix(s, data) {
			return true
		}
	}
	return false
}

// flush emits what was held back. It is the start of a secret at the very
// end of the log (or before a note of Kiln's), which is masked too unless
// it is too short to give anything away.
func (m *masker) flush(emit func([]byte)) {
	if len(m.held) == 0 {
		return
	}
	if len(m.held) >= secrets.MinMasked {
		emit(masked)
	} else {
		emit(m.held)
	}
	m.held = nil
}

// maskString masks the secrets in s, such as a try's error message.
func (m *masker) maskString(s string) string {
	if m == nil {
		return s
	}
	return m.mask.String(s)
}

// maskValue masks the secrets in every string of a decoded JSON value —
// the outputs a task wrote — keys included, before they leave the worker.
func (m *masker) maskValue(v any) any {
	if m == nil {
		return v
	}
	return m.mask.Value(v)
}
