package main

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/kilnhq/kiln/ui"
)

// eventFallback is how often a command that waits for a run or a backfill
// re-reads it although no event said it changed: a stream that died
// without the command noticing (a proxy keeping a dead connection open)
// delays it by at most this much.
var eventFallback = 15 * time.Second

// eventRetry is how long a waiting command waits before it opens the event
// stream again after losing it; the wait doubles up to eventFallback.
var eventRetry = time.Second

// watchEvents follows the server's event stream (GET /api/v1/events, see
// docs/operations.md) with the given filter, and returns a channel that
// receives a value whenever what the caller waits for may have changed: the
// stream opened, so changes made before it may have been missed; an event
// that concerns arrived (nil concerns accepts every event); or the stream
// lost changes. Values do not pile up: a receiver that was busy gets one
// for all that happened meanwhile. A stream that breaks is opened again
// until stop is called, which returns once the stream is closed.
func (c *apiClient) watchEvents(ctx context.Context, filter url.Values, concerns func(ui.Event) bool) (changed <-chan struct{}, stop func()) {
	ch := make(chan struct{}, 1)
	notify := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	first, most := eventRetry, eventFallback
	go func() {
		defer close(done)
		retry := first
		for {
			if resp, err := c.send(ctx, http.MethodGet, apiPath("events"), filter, nil); err == nil {
				// The server takes its place in the feed before it
				// answers: anything later comes as an event.
				notify()
				retry = first
				ui.ReadEvents(resp.Body, func(e ui.Event) error {
					if e.Kind == ui.EventLost || concerns == nil || concerns(e) {
						notify()
					}
					return nil
				})
				resp.Body.Close()
			}
			t := time.NewTimer(retry)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			retry = min(2*retry, most)
		}
	}()
	return ch, func() {
		cancel()
		<-done
	}
}
