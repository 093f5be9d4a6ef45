package worker

import (
	"context"
	"sync"
)

// slots is the worker's pool of task slots, shared by the pullers of all
// its queues. Waiters are served first come, first served, so that no
// queue's puller starves another's.
type slots struct {
	mu      sync.Mutex
	free    int
	waiters []*slotWaiter
}

type slotWaiter struct {
	max   int
	got   int
	ready chan struct{}
}

func newSlots(n int) *slots { return &slots{free: n} }

// acquire takes between 1 and max free slots, waiting for one if none is
// free. It returns how many it took, or ctx's error.
func (s *slots) acquire(ctx context.Context, max int) (int, error) {
	if max < 1 {
		max = 1
	}
	s.mu.Lock()
	if s.free > 0 && len(s.waiters) == 0 {
		n := min(s.free, max)
		s.free -= n
		s.mu.Unlock()
		return n, nil
	}
	w := &slotWaiter{max: max, ready: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()

	select {
	case <-w.ready:
		return w.got, nil
	case <-ctx.Done():
		s.mu.Lock()
		select {
		case <-w.ready: // granted meanwhile: give the slots back
			s.free += w.got
			s.grant()
		default:
			for i, o := range s.waiters {
				if o == w {
					s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
					break
				}
			}
		}
		s.mu.Unlock()
		return 0, ctx.Err()
	}
}

// release returns n slots to the pool.
func (s *slots) release(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	s.grant()
	s.mu.Unlock()
}

// grant hands free slots to waiters in order. s.mu is held.
func (s *slots) grant() {
	for s.free > 0 && len(s.waiters) > 0 {
		w := s.waiters[0]
		s.waiters = s.waiters[1:]
		w.got = min(s.free, w.max)
		s.free -= w.got
		close(w.ready)
	}
}

// available is the number of free slots, for tests and metrics.
func (s *slots) available() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.free
}
