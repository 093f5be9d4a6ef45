//go:build chaos

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
)

// TestChaosHarness proves the suite's harness apart from HA mode: the
// image runs kiln, the three NATS containers form a JetStream cluster, a
// plain `kiln server` and three workers on it run the workload to success,
// each fault of the suite takes effect on the real containers and is
// repaired, and the reader of the replicated log reads a stream of its
// headers. When TestChaos fails, this says whether the harness works.
func TestChaosHarness(t *testing.T) {
	s := theSuite(t)
	c := newCluster(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()

	code, out, err := c.runOnce(ctx, "/kiln", "version")
	if err != nil || code != 0 {
		t.Fatalf("kiln version in a container: exit %d, %v\n%s", code, err, out)
	}
	c.logf("kiln version in a container: %s", strings.TrimSpace(out))

	began := time.Now()
	if err := c.startNATS(ctx); err != nil {
		t.Fatal(err)
	}
	c.logf("NATS cluster of 3 formed in %v", time.Since(began).Round(time.Millisecond))
	nc, err := c.natsConn()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream(nats.MaxWait(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := probeReplicas(js, 3); err != nil {
		t.Fatal(err)
	}

	began = time.Now()
	if err := c.startServer(ctx, "s1", false); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"w1", "w2", "w3"} {
		if err := c.startWorker(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	if leader, err := c.waitLeader(ctx, time.Minute); err != nil || leader != "s1" {
		t.Fatalf("the server: leader %q, %v", leader, err)
	}
	if err := c.waitWorkers(ctx, "w1, w2 and w3 alive", func(w apiWorker) bool { return true }, "w1", "w2", "w3"); err != nil {
		t.Fatal(err)
	}
	c.logf("kiln server s1 and workers w1..w3 up in %v", time.Since(began).Round(time.Millisecond))

	f := newFaults(c)
	stopSupervisor := f.supervise(ctx)
	defer stopSupervisor()

	logical := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	began = time.Now()
	if _, err := c.trigger(ctx, logical); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitRuns(ctx, 1, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	c.logf("a run of %s ended in %v", workloadDAG, time.Since(began).Round(time.Millisecond))

	t.Run("kill-leader", func(t *testing.T) {
		leader, err := c.waitLeader(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		before, err := c.startedAt(ctx, leader)
		if err != nil {
			t.Fatal(err)
		}
		in, err := f.inject(ctx, KillLeader, leader)
		if err != nil {
			t.Fatal(err)
		}
		after, err := c.startedAt(ctx, leader)
		if err != nil {
			t.Fatal(err)
		}
		if !after.After(before) || after.Before(in.Start) {
			t.Errorf("%s started at %v, then %v: not started again after the kill at %v", leader, before, after, in.Start)
		}
		if again, err := c.waitLeader(ctx, time.Minute); err != nil || again != leader {
			t.Errorf("after the kill: leader %q, %v", again, err)
		}
	})

	t.Run("partition-leader", func(t *testing.T) {
		leader, err := c.waitLeader(ctx, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		during(ctx, t, f, PartitionLeader, leader, func(ctx context.Context) error {
			if on, err := c.connected(ctx, leader); err != nil || on {
				return fmt.Errorf("%s on the network: %v, %v", leader, on, err)
			}
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			if _, err := c.health(hctx, leader); err == nil {
				return fmt.Errorf("%s still answers /healthz", leader)
			}
			return nil
		})
		if again, err := c.waitLeader(ctx, time.Minute); err != nil || again != leader {
			t.Errorf("after the partition: leader %q, %v", again, err)
		}
	})

	t.Run("stop-nats", func(t *testing.T) {
		during(ctx, t, f, StopNATS, "n2", func(ctx context.Context) error {
			if running, _, err := c.running(ctx, "n2"); err != nil || running {
				return fmt.Errorf("n2 running: %v, %v", running, err)
			}
			// Two of three still make a quorum.
			_, err := js.Publish("chaos.probe", []byte("n2 down"))
			return err
		})
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := poll(ctx, "n2 to catch up", func() error { return probeReplicas(js, 3) }); err != nil {
			t.Error(err)
		}
	})

	// The reader of the replicated log, on a stream of the same headers
	// that the test writes: two terms, the second after a payload too big
	// to matter, since only headers are read.
	t.Run("log-reader", func(t *testing.T) {
		const stream = "CHAOS_LOG_PROBE"
		if _, err := js.AddStream(&nats.StreamConfig{Name: stream, Subjects: []string{"chaos.log"}, Replicas: 3}); err != nil {
			t.Fatal(err)
		}
		for i, rec := range []struct{ term, leader string }{{"3", "s1"}, {"3", "s1"}, {"7", "s2"}, {"7", "s2"}, {"7", "s2"}} {
			msg := nats.NewMsg("chaos.log")
			msg.Header.Set("Kiln-Term", rec.term)
			msg.Header.Set("Kiln-Leader", rec.leader)
			msg.Data = make([]byte, i*100_000)
			if _, err := js.PublishMsg(msg); err != nil {
				t.Fatal(err)
			}
		}
		records, err := c.readLog(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		terms, errs := CheckLog(records)
		want := []Term{{Term: 3, Leader: "s1", FirstSeq: 1, LastSeq: 2, Records: 2}, {Term: 7, Leader: "s2", FirstSeq: 3, LastSeq: 5, Records: 3}}
		if diff := cmp.Diff(want, terms); diff != "" || len(errs) > 0 {
			t.Errorf("terms (-want +got):\n%s\nerrors: %v", diff, errs)
		}
	})

	// A worker killed while it runs a try of a run: the try is retried,
	// and the retry explained by the kill.
	t.Run("kill-worker", func(t *testing.T) {
		if _, err := c.trigger(ctx, logical.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		busy, err := c.busyWorker(ctx)
		if err != nil {
			t.Fatal(err)
		}
		in, err := f.inject(ctx, KillWorker, busy)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.waitWorkers(ctx, busy+" started again", func(w apiWorker) bool {
			return w.StartedAt != nil && w.StartedAt.After(in.Start.Add(-time.Second))
		}, busy); err != nil {
			t.Error(err)
		}
	})

	t.Run("partition-worker", func(t *testing.T) {
		in := during(ctx, t, f, PartitionWorker, "w2", func(ctx context.Context) error {
			if on, err := c.connected(ctx, "w2"); err != nil || on {
				return fmt.Errorf("w2 on the network: %v, %v", on, err)
			}
			return nil
		})
		if err := c.waitWorkers(ctx, "w2 heard from after the partition", func(w apiWorker) bool {
			return w.Name != "w2" || w.LastHeartbeat.After(in.End)
		}, "w2"); err != nil {
			t.Error(err)
		}
	})

	if err := c.settle(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.trigger(ctx, logical.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	runs, err := c.waitRuns(ctx, 3, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	stopSupervisor()
	c.checkRuns(ctx, t, runs, f.Injections())
	if restarts, unexpected := f.exits(); len(restarts)+len(unexpected) > 0 {
		t.Errorf("nodes exited unbidden: %s", strings.Join(append(restarts, unexpected...), "; "))
	}
}

// during injects a fault and, while it lasts, polls check until it holds,
// failing the test if it never does; it returns the injection, repaired.
func during(ctx context.Context, t *testing.T, f *faults, fault Fault, target string, check func(context.Context) error) Injection {
	t.Helper()
	type result struct {
		in  Injection
		err error
	}
	done := make(chan result, 1)
	go func() {
		in, err := f.inject(ctx, fault, target)
		done <- result{in, err}
	}()
	cctx, cancel := context.WithTimeout(ctx, partitionedFor/2)
	if err := poll(cctx, fmt.Sprintf("%s of %s to take effect", fault, target), func() error { return check(cctx) }); err != nil {
		t.Error(err)
	} else {
		f.c.logf("%s of %s took effect", fault, target)
	}
	cancel()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.in
}

// probeReplicas checks that the probe stream has n replicas, all current.
func probeReplicas(js nats.JetStreamContext, n int) error {
	si, err := js.StreamInfo(probeStream)
	if err != nil {
		return err
	}
	if si.Cluster == nil || si.Cluster.Leader == "" {
		return errors.New("the probe stream has no leader")
	}
	current := 1 // the leader
	for _, p := range si.Cluster.Replicas {
		if p.Current && !p.Offline {
			current++
		}
	}
	if current != n {
		return fmt.Errorf("the probe stream has %d current replicas of %d, leader %s", current, n, si.Cluster.Leader)
	}
	return nil
}

// waitWorkers waits until the named workers are alive and each passes ok.
func (c *cluster) waitWorkers(ctx context.Context, what string, ok func(apiWorker) bool, names ...string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return poll(ctx, what, func() error {
		var workers []apiWorker
		if _, err := c.callAny(ctx, http.MethodGet, "/api/v1/workers", nil, &workers); err != nil {
			return err
		}
		seen := map[string]apiWorker{}
		for _, w := range workers {
			seen[w.Name] = w
		}
		for _, name := range names {
			w, found := seen[name]
			if !found || w.State != "alive" || w.Draining || !ok(w) {
				return fmt.Errorf("worker %s: %+v", name, w)
			}
		}
		return nil
	})
}

// busyWorker waits until a worker runs a try, and returns it.
func (c *cluster) busyWorker(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var busy string
	err := poll(ctx, "a worker to run a try", func() error {
		var workers []apiWorker
		if _, err := c.callAny(ctx, http.MethodGet, "/api/v1/workers", nil, &workers); err != nil {
			return err
		}
		for _, w := range workers {
			if len(w.Running) > 0 {
				busy = w.Name
				return nil
			}
		}
		return errors.New("no worker runs a try")
	})
	return busy, err
}

// startedAt returns when a node's container last started.
func (c *cluster) startedAt(ctx context.Context, name string) (time.Time, error) {
	res, err := c.cli.ContainerInspect(ctx, c.node(name).id, client.ContainerInspectOptions{})
	if err != nil {
		return time.Time{}, fmt.Errorf("inspecting %s: %w", name, err)
	}
	at, err := time.Parse(time.RFC3339Nano, res.Container.State.StartedAt)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s started at %q: %w", name, res.Container.State.StartedAt, err)
	}
	return at, nil
}
