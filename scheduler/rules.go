package scheduler

import (
	"time"

	"github.com/kilnhq/kiln/dag"
	"github.com/kilnhq/kiln/store"
)

// verdict is what a trigger rule says about a task given its upstreams.
type verdict int

const (
	wait           verdict = iota // not decided: upstreams still running
	ready                         // the task may run
	skip                          // the rule can no longer be met: skipped
	upstreamFailed                // the rule can no longer be met: upstream_failed
)

// upstreamCounts tallies the states of a task's upstream instances.
type upstreamCounts struct {
	total, success, failed, skipped, done int
}

func countUpstream(states []store.TaskState) upstreamCounts {
	c := upstreamCounts{total: len(states)}
	for _, s := range states {
		switch s {
		case store.TaskSuccess:
			c.success++
		case store.TaskFailed, store.TaskUpstreamFailed:
			c.failed++ // upstream_failed counts as failed (docs/dag-format.md#trigger-rules)
		case store.TaskSkipped:
			c.skipped++
		default:
			continue
		}
		c.done++
	}
	return c
}

// evalTrigger applies a trigger rule (docs/dag-format.md#trigger-rules, Airflow's meanings) to the
// states of a task's upstream instances. A rule that can no longer be met
// is decided as soon as that is certain, not when every upstream ended.
func evalTrigger(rule dag.TriggerRule, upstream []store.TaskState) verdict {
	c := countUpstream(upstream)
	if c.total == 0 {
		return ready
	}
	allDone := c.done == c.total
	// failedOrSkip is the verdict for a rule that cannot be met: a failed
	// upstream makes it upstream_failed, otherwise skipped.
	failedOrSkip := skip
	if c.failed > 0 {
		failedOrSkip = upstreamFailed
	}
	switch rule {
	case dag.AllSuccess:
		switch {
		case c.failed > 0:
			return upstreamFailed
		case c.skipped > 0:
			return skip
		case c.success == c.total:
			return ready
		}
	case dag.AllFailed:
		switch {
		case c.success > 0 || c.skipped > 0:
			return skip
		case c.failed == c.total:
			return ready
		}
	case dag.AllDone:
		if allDone {
			return ready
		}
	case dag.AllDoneMinOneSuccess:
		if allDone {
			if c.success > 0 {
				return ready
			}
			return failedOrSkip
		}
	case dag.AllSkipped:
		switch {
		case c.success > 0 || c.failed > 0:
			return skip
		case c.skipped == c.total:
			return ready
		}
	case dag.OneSuccess:
		switch {
		case c.success > 0:
			return ready
		case allDone:
			return failedOrSkip
		}
	case dag.OneFailed:
		switch {
		case c.failed > 0:
			return ready
		case allDone:
			return skip
		}
	case dag.OneDone:
		switch {
		case c.success > 0 || c.failed > 0:
			return ready
		case allDone:
			return skip
		}
	case dag.NoneFailed:
		switch {
		case c.failed > 0:
			return upstreamFailed
		case allDone:
			return ready
		}
	case dag.NoneFailedMinOneSuccess:
		switch {
		case c.failed > 0:
			return upstreamFailed
		case allDone && c.success > 0:
			return ready
		case allDone:
			return skip
		}
	case dag.NoneSkipped:
		switch {
		case c.skipped > 0:
			return skip
		case allDone:
			return ready
		}
	case dag.Always:
		return ready
	}
	return wait
}

// maxDefaultRetryDelay caps exponential backoff when the task sets no
// max_retry_delay, as Airflow does.
const maxDefaultRetryDelay = 24 * time.Hour

// retryDelay is the wait after failed try number try (1-based): the task's
// retry_delay, doubled per earlier try with exponential backoff and capped
// by max_retry_delay (docs/dag-format.md#retries-timeouts-and-heartbeats).
func retryDelay(t *dag.Task, try int) time.Duration {
	d := t.RetryDelay
	if !t.RetryExponentialBackoff {
		return d
	}
	limit := t.MaxRetryDelay
	if limit <= 0 {
		limit = maxDefaultRetryDelay
	}
	for i := 1; i < try && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
