package scheduler

import (
	"context"
	"time"
)

// Sync returns once a turn of the loop that began after the call has
// committed. Every turn ends with the cron and schedule passes (endTurn),
// so what the inputs taken before the call made due has been done by then:
// tests wait on it before asserting that something did not happen.
func (s *Scheduler) Sync(ctx context.Context) error {
	_, err := s.do(ctx, func(time.Time) (any, error) { return nil, nil })
	return err
}

// ArtifactStored reports whether the loop's view of the artifact store
// holds the object sha with the given size.
func (s *Scheduler) ArtifactStored(sha string, size int64) bool { return s.stored.has(sha, size) }

// PluginBuildKnown reports whether the live workers of queue agree on a
// build of plugin, which a cache key needs.
func (s *Scheduler) PluginBuildKnown(queue, plugin string) bool {
	_, ok := s.registry.build(queue, plugin, s.clock.Now())
	return ok
}

// PluginSHA256 is the executable hash of the build of plugin the live
// workers of queue agree on, or "".
func (s *Scheduler) PluginSHA256(queue, plugin string) string {
	b, _ := s.registry.build(queue, plugin, s.clock.Now())
	return b.SHA256
}

// WorkersAt lists the workers with their states as they would be at now.
func (s *Scheduler) WorkersAt(now time.Time) []WorkerStatus { return s.registry.list(now) }
