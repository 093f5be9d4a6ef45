//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The chaos run's shape: chaosRuns runs of the workload, one every
// triggerEvery, while faults are injected one at a time, pauseBetween
// apart, for at most chaosFor; then every run must end within endWithin.
const (
	chaosRuns    = 50
	triggerEvery = 2500 * time.Millisecond
	chaosFor     = 3 * time.Minute
	pauseBetween = 4 * time.Second
	endWithin    = 2 * time.Minute
)

// faultCycle is the order of the faults, over and over.
var faultCycle = []Fault{KillLeader, PartitionWorker, StopNATS, KillWorker, PartitionLeader}

// TestChaos runs Kiln's HA mode under faults: three NATS servers, two
// Kiln servers (--ha) and three workers, each a container on one bridge
// network. While 50 runs of the workload are triggered, it kills and
// partitions the leader, stops NATS servers, and kills and partitions
// workers, one fault at a time; a server that exits is started again, as
// a supervisor would. Then every run must have succeeded, every retry must
// be explained by a fault (Injection.Explains), no try recorded twice,
// the replicated log KILN_LOG must show one leader per term, the terms
// never going back, and after each fault of the leader another server
// must have led within the lease TTL + 2 s, a partitioned leader having
// stopped itself first. (This file sorts after harness_test.go, so that make
// chaos proves the harness first.)
func TestChaos(t *testing.T) {
	s := theSuite(t)
	requireHA(t, s)
	c := newCluster(t, s)
	r := c.report // t, the failures said again after the nodes' logs
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	began := time.Now()
	if err := c.startNATS(ctx); err != nil {
		r.Fatal(err)
	}
	c.logf("NATS cluster of 3 formed in %v", time.Since(began).Round(time.Millisecond))
	for _, name := range []string{"s1", "s2"} {
		if err := c.startServer(ctx, name, true); err != nil {
			r.Fatal(err)
		}
	}
	for _, name := range []string{"w1", "w2", "w3"} {
		if err := c.startWorker(ctx, name); err != nil {
			r.Fatal(err)
		}
	}
	leader, err := c.waitLeader(ctx, 2*time.Minute)
	if err != nil {
		r.Fatal(err)
	}
	if err := c.waitHealthy(ctx, time.Minute); err != nil {
		r.Fatal(err)
	}
	if err := c.waitWorkers(ctx, "w1, w2 and w3 alive", func(apiWorker) bool { return true }, "w1", "w2", "w3"); err != nil {
		r.Fatal(err)
	}
	c.logf("cluster up in %v, %s leads", time.Since(began).Round(time.Millisecond), leader)

	f := newFaults(c)
	stopSupervisor := f.supervise(ctx)
	defer stopSupervisor()

	// Each run has its own logical date, so that a trigger sent again
	// after a lost answer cannot make a second run.
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var (
		mu       sync.Mutex
		acked    []time.Time // the logical dates of the runs a server acknowledged
		triggers = make(chan error, 1)
	)
	go func() {
		triggers <- c.triggerRuns(ctx, base, func(logical time.Time) {
			mu.Lock()
			acked = append(acked, logical)
			mu.Unlock()
		})
	}()

	injected := map[Fault]int{}
	deadline := time.Now().Add(chaosFor)
	triggered := false
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case err := <-triggers:
			if err != nil {
				r.Error(err)
			}
			triggered = true
		default:
		}
		if triggered && len(injected) == len(faultCycle) && c.allEnded(ctx, chaosRuns) {
			break
		}
		fault := faultCycle[i%len(faultCycle)]
		target, err := f.target(ctx, fault)
		if err != nil {
			r.Errorf("choosing the target of %s: %v", fault, err)
			break
		}
		if _, err := f.inject(ctx, fault, target); err != nil {
			r.Error(err)
			break
		}
		injected[fault]++
		if err := c.settle(ctx); err != nil {
			r.Errorf("after %s %s: %v", fault, target, err)
			break
		}
		sleep(ctx, pauseBetween)
	}
	if !triggered {
		if err := <-triggers; err != nil {
			r.Error(err)
		}
	}
	for _, fault := range faultCycle {
		if injected[fault] == 0 {
			r.Errorf("%s was never injected within %v", fault, chaosFor)
		}
	}
	c.logf("faults injected: %v", injected)

	runs, err := c.waitRuns(ctx, chaosRuns, endWithin)
	if err != nil {
		r.Error(err)
	}
	stopSupervisor()
	mu.Lock()
	checkAcked(r, acked, runs)
	mu.Unlock()
	c.checkRuns(ctx, r, runs, f.Injections())
	c.checkLog(ctx, r)
	f.watching.Wait()
	f.checkTakeovers(r)
	restarts, unexpected := f.exits()
	if len(restarts) > 0 {
		c.logf("servers the supervisor started again: %s", strings.Join(restarts, "; "))
	}
	if len(unexpected) > 0 {
		r.Errorf("nodes exited unbidden: %s", strings.Join(unexpected, "; "))
	}
}

// requireHA fails the test when the kiln built has no HA mode yet.
func requireHA(t *testing.T, s *suite) {
	t.Helper()
	out, err := exec.Command(filepath.Join(s.binDir, "kiln"), "server", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("kiln server --help: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--ha") {
		t.Fatal("kiln server has no --ha flag: HA mode, which TestChaos tests, is not in this tree (TestChaosHarness tests the harness without it)")
	}
}

// triggerRuns triggers chaosRuns runs of the workload, one every
// triggerEvery, at the logical dates base, base+1s, …, calling acked for
// each run a server acknowledged.
func (c *cluster) triggerRuns(ctx context.Context, base time.Time, acked func(time.Time)) error {
	tick := time.NewTicker(triggerEvery)
	defer tick.Stop()
	for i := range chaosRuns {
		logical := base.Add(time.Duration(i) * time.Second)
		tctx, cancel := context.WithTimeout(ctx, time.Minute)
		server, err := c.trigger(tctx, logical)
		cancel()
		if err != nil {
			return fmt.Errorf("triggering run %d of %d: %w", i+1, chaosRuns, err)
		}
		acked(logical)
		c.logf("triggered run %d of %d (%s) through %s", i+1, chaosRuns, logical.Format(time.RFC3339), server)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// allEnded reports whether the workload has n runs, all ended.
func (c *cluster) allEnded(ctx context.Context, n int) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	runs, err := c.runs(ctx)
	if err != nil || len(runs) < n {
		return false
	}
	for _, r := range runs {
		if r.State != "success" && r.State != "failed" {
			return false
		}
	}
	return true
}

// waitHealthy waits until every server's /healthz answers 200.
func (c *cluster) waitHealthy(ctx context.Context, d time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return poll(ctx, "every server to be healthy", func() error {
		for _, server := range c.names(roleServer) {
			if _, err := c.health(ctx, server); err != nil {
				return err
			}
		}
		return nil
	})
}

// checkAcked checks that every run a server acknowledged is listed: an
// acknowledged run that a change of leader lost is a failure.
func checkAcked(t reporter, acked []time.Time, runs []apiRun) {
	t.Helper()
	listed := map[string]bool{}
	for _, r := range runs {
		listed[r.LogicalDate.UTC().Format(time.RFC3339Nano)] = true
	}
	for _, logical := range acked {
		if !listed[logical.UTC().Format(time.RFC3339Nano)] {
			t.Errorf("the run of logical date %s was acknowledged, and is not listed", logical.Format(time.RFC3339))
		}
	}
	if len(runs) != len(acked) {
		t.Errorf("%d runs listed, %d acknowledged", len(runs), len(acked))
	}
}
