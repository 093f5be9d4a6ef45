package secrets

import (
	"slices"
	"strings"
)

// MinMasked is the shortest secret value masked: masking a value of one or
// two characters would garble every text while hiding nothing.
const MinMasked = 3

// Masked is what a secret's value becomes.
const Masked = "***"

// Mask replaces the values of secrets with *** in text and in decoded JSON
// values (docs/dag-format.md#secrets). A nil Mask masks nothing.
type Mask struct {
	values []string // longest first, so the longest match wins
}

// NewMask returns a mask for the values, or nil when none is long enough
// to be masked.
func NewMask(values []string) *Mask {
	m := &Mask{}
	for _, v := range values {
		if len(v) >= MinMasked {
			m.values = append(m.values, v)
		}
	}
	if len(m.values) == 0 {
		return nil
	}
	slices.SortFunc(m.values, func(a, b string) int { return len(b) - len(a) })
	return m
}

// Values returns the values masked, longest first.
func (m *Mask) Values() []string {
	if m == nil {
		return nil
	}
	return m.values
}

// String masks the secrets in s.
func (m *Mask) String(s string) string {
	if m == nil {
		return s
	}
	for _, v := range m.values {
		s = strings.ReplaceAll(s, v, Masked)
	}
	return s
}

// Value masks the secrets in every string of a decoded JSON value, map
// keys included; it returns a copy, or v itself when nothing is masked.
func (m *Mask) Value(v any) any {
	if m == nil {
		return v
	}
	switch v := v.(type) {
	case string:
		return m.String(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[m.String(k)] = m.Value(x)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = m.Value(x)
		}
		return out
	}
	return v
}
