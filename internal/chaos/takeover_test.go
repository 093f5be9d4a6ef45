//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// leaseTTL is the servers' --lease-ttl (the default), and maxTakeover the
// longest a change of leader may take: from a leader's death until
// another server leads, its runs recovered (healthy), the lease TTL and
// 2 s.
const (
	leaseTTL    = 6 * time.Second
	maxTakeover = leaseTTL + 2*time.Second
)

// A takeover is how a change of leader went after a fault of the leader:
// how long after the fault began the old leader had stopped and a server
// led again, healthy. A killed leader stops at once; a partitioned one
// stops committing and dispatching when its lease is no longer surely its
// own, which it logs ("lost the lease", valid_until) once it notices. The
// server that leads again may be the killed one, started again by then
// (it is after killedFor) if the lease expired after it was back; the old
// leader itself cannot answer meanwhile, dead or cut off.
type takeover struct {
	fault        Fault
	from         string
	stopped, led time.Duration
	to           string // the server that led again
	caughtUp     string // how long it took, from its log: caught_up_in=… store_in=… tries_logs_in=…
}

func (tk takeover) String() string {
	after := func(d time.Duration) string {
		if d < 0 {
			return "never"
		}
		return "after " + d.Round(10*time.Millisecond).String()
	}
	s := fmt.Sprintf("%s %s: stopped %s, a server led again %s", tk.fault, tk.from, after(tk.stopped), after(tk.led))
	if tk.to != "" {
		s += fmt.Sprintf(" (%s, %s)", tk.to, tk.caughtUp)
	}
	return s
}

// caughtUp finds, in the log of the server that took over, how long its
// catching up took after it won the lease.
var caughtUp = regexp.MustCompile(`msg="leading the cluster".*? (caught_up_in=.*)`)

// stoppedAt finds, in a server's log, when it stopped leading: the end of
// its lease's validity, which it logs once it notices ("lost the lease",
// valid_until), or when it stopped because a commit failed ("kiln cannot
// go on"), as when an append to the log timed out first.
var stoppedAt = regexp.MustCompile(`msg="lost the lease[^"]*" valid_until=(\S+)|time=(\S+) level=ERROR msg="kiln cannot go on`)

// watchTakeover follows the change of leader a fault of the leader from
// began at began, polling every 100 ms for up to 30 s, and records it.
// Each server is polled on its own, each request for at most a second: a
// partitioned server's /healthz may hang, and must not delay seeing
// another lead.
func (f *faults) watchTakeover(ctx context.Context, fault Fault, from string, began time.Time) {
	c := f.c
	tk := takeover{fault: fault, from: from, stopped: -1, led: -1}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var killed atomic.Bool
	servers := c.names(roleServer)
	led := make(chan string, len(servers))
	pctx, stopPolling := context.WithCancel(ctx)
	var polling sync.WaitGroup
	for _, server := range servers {
		polling.Go(func() {
			for pctx.Err() == nil {
				rctx, cancel := context.WithTimeout(pctx, time.Second)
				h, err := c.health(rctx, server)
				cancel()
				if err == nil && h.Scheduler.Role == "leader" && (server != from || killed.Load()) {
					led <- server
					return
				}
				sleep(pctx, 100*time.Millisecond)
			}
		})
	}
	for tk.led < 0 && ctx.Err() == nil {
		if fault == KillLeader && !killed.Load() {
			if running, _, err := c.running(ctx, from); err == nil && !running {
				killed.Store(true)
				tk.stopped = time.Since(began)
			}
		}
		select {
		case server := <-led:
			tk.led, tk.to = time.Since(began), server
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	stopPolling()
	polling.Wait()
	if fault == PartitionLeader {
		// The partitioned leader says when it stopped, once it noticed.
		_ = poll(ctx, from+" to log that it stopped leading", func() error {
			logs, err := c.logs(ctx, c.node(from).id, "all")
			if err != nil {
				return err
			}
			for _, m := range stoppedAt.FindAllStringSubmatch(logs, -1) {
				at, err := time.Parse(time.RFC3339Nano, m[1]+m[2])
				if err == nil && at.After(began) && (tk.stopped < 0 || at.Sub(began) < tk.stopped) {
					tk.stopped = at.Sub(began)
				}
			}
			if tk.stopped < 0 {
				return fmt.Errorf("%s has not logged that it stopped leading", from)
			}
			return nil
		})
	}
	if tk.to != "" {
		if logs, err := c.logs(ctx, c.node(tk.to).id, "200"); err == nil {
			if m := caughtUp.FindAllStringSubmatch(logs, -1); len(m) > 0 {
				tk.caughtUp = m[len(m)-1][1]
			}
		}
	}
	c.logf("takeover: %v", tk)
	f.mu.Lock()
	f.takeovers = append(f.takeovers, tk)
	f.mu.Unlock()
}

// checkTakeovers checks every change of leader: a server led again
// within maxTakeover, and a partitioned leader had stopped before.
func (f *faults) checkTakeovers(t reporter) {
	t.Helper()
	f.mu.Lock()
	tks := slices.Clone(f.takeovers)
	f.mu.Unlock()
	if len(tks) == 0 {
		t.Error("no change of leader was watched")
	}
	for _, tk := range tks {
		switch {
		case tk.led < 0:
			t.Errorf("%v: no server led within 30 s", tk)
		case tk.led > maxTakeover:
			t.Errorf("%v: want a server leading again within %v", tk, maxTakeover)
		case tk.stopped < 0 || tk.stopped >= tk.led:
			t.Errorf("%v: the old leader must have stopped before a server led again", tk)
		}
	}
}
