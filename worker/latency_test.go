package worker

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kilnhq/kiln/internal/wire"
)

// hops runs n tries one after another, as a chain of tasks does: each is
// published when the previous one's finished event has arrived. It
// returns, per try, the time from publishing the assignment to receiving
// its started event, and to receiving its finished event.
func hops(t testing.TB, h *harness, plugin string, with map[string]any, n int) (toStarted, toFinished []time.Duration) {
	t.Helper()
	for i := range n + 5 {
		k := newTry("hop")
		pub := h.assign("default", wire.Assignment{TryKey: k, Plugin: plugin, With: with})
		st := h.wait(k, wire.EventStarted, 10*time.Second)
		fin := h.wait(k, wire.EventFinished, 10*time.Second)
		if !fin.Success {
			t.Fatalf("try failed: %s", fin.Error)
		}
		if i >= 5 { // the first ones warm up connections and plugins
			toStarted = append(toStarted, st.at.Sub(pub))
			toFinished = append(toFinished, fin.at.Sub(pub))
		}
	}
	return toStarted, toFinished
}

func quantiles(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))].Round(time.Microsecond) }
	return fmt.Sprintf("median %s  p90 %s  p99 %s  max %s", q(0.5), q(0.9), q(0.99), s[len(s)-1].Round(time.Microsecond))
}

// TestLatency measures how fast a published assignment starts, over 200
// tries of a task that does nothing: with an in-process runner, and with
// the real shell plugin running `true`. Run it with -v to see the figures;
// measure without -race.
func TestLatency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		plugin string
		with   map[string]any
		runner func(t *testing.T) Runner
	}{
		{"in-process runner", "true", nil, func(*testing.T) Runner { return &fakeRunner{} }},
		{"shell plugin", "shell", map[string]any{"command": "true"}, func(t *testing.T) Runner { return shellHost(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.start(Config{Runner: tc.runner(t)})
			started, finished := hops(t, h, tc.plugin, tc.with, 200)
			t.Logf("publish -> started:  %s", quantiles(started))
			t.Logf("publish -> finished: %s", quantiles(finished))
			slices.Sort(started)
			if med := started[len(started)/2]; med > 50*time.Millisecond {
				t.Errorf("median publish -> started %s: far off the few milliseconds expected", med)
			}
		})
	}
}

// BenchmarkPublishToStarted is the time from publishing an assignment to
// receiving its started event, with an in-process runner.
func BenchmarkPublishToStarted(b *testing.B) {
	h := newHarness(b)
	h.start(Config{Runner: &fakeRunner{}})
	hops(b, h, "true", nil, 5)
	var total time.Duration
	b.ResetTimer()
	for b.Loop() {
		k := newTry("bench")
		pub := h.assign("default", wire.Assignment{TryKey: k, Plugin: "true"})
		st := h.wait(k, wire.EventStarted, 10*time.Second)
		total += st.at.Sub(pub)
		h.wait(k, wire.EventFinished, 10*time.Second)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/start")
}
