package scheduler

import (
	"fmt"
	"time"
)

// folderHealth is what the loads of the DAGs folder, one every ReloadEvery
// (watchFolder), tell /healthz: whether the last one failed as a whole (an
// unreadable folder) and when the last one ended without error. Problems
// in files are import errors, not a matter of health: a load goes on past
// them, and past any file that overruns its deadline
// (docs/dag-format.md#files-and-folders).
type folderHealth struct {
	loaded time.Time // when the last load ended without error
	err    error     // the error of the last load, nil if it did not fail
}

// stuckAfter is how long the loads may go without one ending before they
// count as stuck: many reload periods, and room for a few files to
// overrun their deadline.
func stuckAfter(reloadEvery time.Duration) time.Duration {
	return max(10*reloadEvery, time.Minute)
}

// check reports, at now, a reload that fails or is stuck.
func (h folderHealth) check(now time.Time, reloadEvery time.Duration) error {
	if h.err != nil {
		return fmt.Errorf("DAGs folder: the last reload failed: %w", h.err)
	}
	if since := now.Sub(h.loaded); !h.loaded.IsZero() && since > stuckAfter(reloadEvery) {
		return fmt.Errorf("DAGs folder: no reload has ended for %s, one is due every %s", since.Round(time.Second), reloadEvery)
	}
	return nil
}

// folderLoaded notes for Health a load of the DAGs folder that ended at
// at, or failed with err.
func (s *Scheduler) folderLoaded(at time.Time, err error) {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	if err != nil {
		s.folder.err = err
		return
	}
	s.folder = folderHealth{loaded: at}
}
