package scheduler

import (
	"context"
	"errors"
	"testing"
)

// TestPoolNamesThatBreakPaths: pools are refused names that are a path
// step of their own or an empty subject token.
func TestPoolNamesThatBreakPaths(t *testing.T) {
	h := newHarness(t)
	for _, name := range []string{".", "..", ".gpu", "gpu.", "gpu..big", "a/b", ""} {
		if err := h.s.SetPool(context.Background(), name, 1); !errors.Is(err, ErrInvalid) {
			t.Errorf("pool %q: %v, want invalid", name, err)
		}
	}
	for _, name := range []string{"gpu", "gpu.big", "a-b_c"} {
		if err := h.s.SetPool(context.Background(), name, 1); err != nil {
			t.Errorf("pool %q: %v", name, err)
		}
	}
}
