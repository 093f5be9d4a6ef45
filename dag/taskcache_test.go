package dag

import (
	"testing"
	"time"
)

// TestParseDays: a ttl takes whole days in front of a Go duration, and
// nothing that would overflow or go negative.
func TestParseDays(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * day, true},
		{"1d12h", day + 12*time.Hour, true},
		{"0d", 0, true},
		{"90m", 90 * time.Minute, true},
		{"106751d", 106751 * day, true},
		{"106752d", 0, false},
		{"106751d23h59m59s", 0, false},
		{"1.5d", 0, false},
		{"d", 0, false},
		{"+1d", 0, false},
		{"-1d", 0, false},
		{"1d-1h", 0, false},
		{"1dd", 0, false},
		{"7", 0, false},
		{"", 0, false},
	} {
		got, err := ParseDays(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDays(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
