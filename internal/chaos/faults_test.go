//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// How long each fault lasts before the suite repairs it.
const (
	killedFor      = 3 * time.Second  // a killed node, before it starts again
	natsStoppedFor = 5 * time.Second  // a stopped NATS server
	partitionedFor = 10 * time.Second // a node cut off the network
	natsStopGrace  = 2                // seconds between SIGTERM and SIGKILL when a NATS server stops
)

// faults injects faults into a cluster, one at a time, and supervises its
// nodes: a server that exits (a deposed leader does) is started again, as
// a process supervisor would; any other node that exits unbidden is
// started again too, and noted, since nothing should make it exit.
type faults struct {
	c *cluster

	mu         sync.Mutex
	held       map[string]bool // nodes the injector took down: the supervisor leaves them
	injections []Injection
	restarts   []string // servers the supervisor started again
	unexpected []string // other nodes it found exited
	takeovers  []takeover
	watching   sync.WaitGroup // watchTakeover calls
}

func newFaults(c *cluster) *faults {
	return &faults{c: c, held: map[string]bool{}}
}

// hold keeps the supervisor off a node while a fault of it lasts.
func (f *faults) hold(name string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held[name] = on
}

func (f *faults) isHeld(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held[name]
}

// Injections returns the injections so far.
func (f *faults) Injections() []Injection {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Injection(nil), f.injections...)
}

// exits returns what the supervisor found exited: servers, which it
// started again as expected, and other nodes, which should not exit.
func (f *faults) exits() (servers, unexpected []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.restarts...), append([]string(nil), f.unexpected...)
}

// supervise checks every node each second, and starts the ones that
// exited unless a fault holds them down, until ctx ends or the function it
// returns is called; that function returns once the supervisor stopped.
func (f *faults) supervise(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.superviseLoop(ctx)
	}()
	return func() { cancel(); <-done }
}

func (f *faults) superviseLoop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for _, r := range []role{roleServer, roleNATS, roleWorker} {
			for _, name := range f.c.names(r) {
				if f.isHeld(name) {
					continue
				}
				running, code, err := f.c.running(ctx, name)
				if err != nil || running {
					continue
				}
				what := fmt.Sprintf("%s exited with code %d", name, code)
				f.mu.Lock()
				if r == roleServer {
					f.restarts = append(f.restarts, what)
				} else {
					f.unexpected = append(f.unexpected, what)
				}
				f.mu.Unlock()
				f.c.logf("supervisor: %s; starting it again", what)
				if err := f.c.start(ctx, name); err != nil {
					f.c.logf("supervisor: %v", err)
				}
			}
		}
	}
}

// inject injects one fault into target and repairs it, and returns the
// injection. The repair happens even when ctx ends meanwhile.
func (f *faults) inject(ctx context.Context, fault Fault, target string) (Injection, error) {
	c := f.c
	id := c.node(target).id
	in := Injection{Fault: fault, Target: target, Start: time.Now()}
	c.logf("inject: %s %s", fault, target)
	f.hold(target, true)
	defer f.hold(target, false)
	repair := context.WithoutCancel(ctx)
	var err error
	if fault == KillLeader || fault == PartitionLeader {
		f.watching.Go(func() { f.watchTakeover(repair, fault, target, in.Start) })
	}
	switch fault {
	case KillLeader, KillWorker:
		if _, err = c.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"}); err != nil {
			break
		}
		if err = c.waitStopped(ctx, target); err != nil {
			break
		}
		sleep(ctx, killedFor)
		err = c.start(repair, target)
	case StopNATS:
		grace := natsStopGrace
		if _, err = c.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &grace}); err != nil {
			break
		}
		sleep(ctx, natsStoppedFor)
		err = c.start(repair, target)
	case PartitionLeader, PartitionWorker:
		if _, err = c.cli.NetworkDisconnect(ctx, c.name, client.NetworkDisconnectOptions{Container: id, Force: true}); err != nil {
			break
		}
		sleep(ctx, partitionedFor)
		_, err = c.cli.NetworkConnect(repair, c.name, client.NetworkConnectOptions{
			Container:      id,
			EndpointConfig: &network.EndpointSettings{Aliases: []string{target}},
		})
	default:
		err = fmt.Errorf("no such fault %q", fault)
	}
	in.End = time.Now()
	if err != nil {
		return in, fmt.Errorf("%s %s: %w", fault, target, err)
	}
	f.mu.Lock()
	f.injections = append(f.injections, in)
	f.mu.Unlock()
	c.logf("repaired: %s %s after %v", fault, target, in.End.Sub(in.Start).Round(time.Millisecond))
	return in, nil
}

// sleep waits for d, the length of a fault, or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// waitStopped waits until a node's container no longer runs.
func (c *cluster) waitStopped(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return poll(ctx, name+" to stop", func() error {
		running, _, err := c.running(ctx, name)
		if err == nil && running {
			err = fmt.Errorf("%s still runs", name)
		}
		return err
	})
}

// target picks the node a fault hits: the leader for a fault of the
// leader, else one of the role's nodes at random.
func (f *faults) target(ctx context.Context, fault Fault) (string, error) {
	pick := func(r role) string {
		names := f.c.names(r)
		return names[rand.IntN(len(names))]
	}
	switch fault {
	case KillLeader, PartitionLeader:
		return f.c.waitLeader(ctx, time.Minute)
	case StopNATS:
		return pick(roleNATS), nil
	default:
		return pick(roleWorker), nil
	}
}

// waitLeader waits up to d for exactly one server to say it leads, and
// returns it.
func (c *cluster) waitLeader(ctx context.Context, d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var leader string
	err := poll(ctx, "one leader", func() error {
		var err error
		leader, err = c.leader(ctx)
		return err
	})
	return leader, err
}

// settle waits until every node runs and is on the network and one
// server leads: the state each fault starts from.
func (c *cluster) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	err := poll(ctx, "every node to run, on the network", func() error {
		for _, r := range []role{roleNATS, roleServer, roleWorker} {
			for _, name := range c.names(r) {
				running, _, err := c.running(ctx, name)
				if err != nil {
					return err
				}
				on, err := c.connected(ctx, name)
				if err != nil {
					return err
				}
				if !running || !on {
					return fmt.Errorf("%s: running %v, on the network %v", name, running, on)
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = c.waitLeader(ctx, 90*time.Second)
	return err
}
