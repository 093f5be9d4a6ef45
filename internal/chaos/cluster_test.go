//go:build chaos

package chaos

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// labelCluster names the cluster a container or network belongs to: a
// test process may run several, one after the other.
const labelCluster = "kiln.chaos.cluster"

// The ports the nodes listen on inside the network.
const (
	natsPort = "4222/tcp"
	apiPort  = "8080/tcp"
)

// natsURLs is how the nodes reach the NATS cluster, by host name.
const natsURLs = "nats://n1:4222,nats://n2:4222,nats://n3:4222"

// role is what a node runs.
type role string

const (
	roleNATS   role = "nats"
	roleServer role = "server"
	roleWorker role = "worker"
)

// node is one container of the cluster.
type node struct {
	name  string // n1, s2, w3: its host name on the network
	role  role
	id    string            // the container's ID
	ports map[string]string // container port ("8080/tcp") → its port on 127.0.0.1
}

// cluster is the nodes of one test on their own bridge network. Every
// node is a container of the suite's image with restart policy "no": what
// the test kills, it starts again itself.
type cluster struct {
	t      *testing.T
	report *report // t, keeping the failures to repeat after the nodes' logs
	s      *suite
	cli    *client.Client
	name   string // of the network, and the prefix of the containers' names
	token  string // an admin API token that every server's store holds
	seed   []byte // tar of the servers' /data, with that token

	turn atomic.Uint32 // callAny's first server

	mu    sync.Mutex
	nodes map[string]*node
}

// newCluster creates the network. When the test ends it dumps the nodes'
// last log lines if the test failed, and removes the nodes and the
// network.
func newCluster(t *testing.T, s *suite) *cluster {
	t.Helper()
	c := &cluster{t: t, report: &report{T: t}, s: s, cli: s.eng.Client(), nodes: map[string]*node{}}
	c.name = "kiln-chaos-" + s.runID + "-" + strings.ToLower(rand.Text()[:4])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := c.cli.NetworkCreate(ctx, c.name, client.NetworkCreateOptions{Driver: "bridge", Labels: c.labels("")}); err != nil {
		t.Fatalf("creating network %s: %v", c.name, err)
	}
	t.Cleanup(c.remove)
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs(100)
			c.report.repeat()
		}
	})
	return c
}

func (c *cluster) labels(node string) map[string]string {
	l := c.s.labels(node)
	l[labelCluster] = c.name
	return l
}

// logf logs with the time of day: the injections and the tries are
// compared by their times.
func (c *cluster) logf(format string, args ...any) {
	c.t.Helper()
	c.t.Logf("%s "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

// node returns the node of that name.
func (c *cluster) node(name string) *node {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n == nil {
		panic("chaos: no node " + name)
	}
	return n
}

// names returns the names of the nodes of a role, sorted.
func (c *cluster) names(r role) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for name, n := range c.nodes {
		if n.role == r {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// hostAddr is where the test reaches a node's port: 127.0.0.1:PORT.
func (c *cluster) hostAddr(name, port string) string {
	return "127.0.0.1:" + c.node(name).ports[port]
}

// create creates a node's container, publishing the given ports on
// 127.0.0.1. The host ports are chosen here, not by the Engine, so that
// they stay the same when the test starts the container again.
func (c *cluster) create(ctx context.Context, name string, r role, cmd []string, ports ...string) (*node, error) {
	n := &node{name: name, role: r, ports: map[string]string{}}
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, p := range ports {
		hp, err := freePort()
		if err != nil {
			return nil, err
		}
		port := network.MustParsePort(p)
		exposed[port] = struct{}{}
		bindings[port] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hp}}
		n.ports[p] = hp
	}
	init := true
	res, err := c.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: c.name + "-" + name,
		Config: &container.Config{
			Image:        c.s.image,
			Cmd:          cmd,
			Hostname:     name,
			Labels:       c.labels(name),
			ExposedPorts: exposed,
		},
		HostConfig: &container.HostConfig{
			NetworkMode:   container.NetworkMode(c.name),
			PortBindings:  bindings,
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
			Init:          &init, // reaps the shell tasks' processes a killed plugin leaves
		},
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			c.name: {Aliases: []string{name}},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating node %s: %w", name, err)
	}
	n.id = res.ID
	c.mu.Lock()
	c.nodes[name] = n
	c.mu.Unlock()
	return n, nil
}

// freePort returns a TCP port free on 127.0.0.1 now.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// start starts a node's container.
func (c *cluster) start(ctx context.Context, name string) error {
	if _, err := c.cli.ContainerStart(ctx, c.node(name).id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	return nil
}

// running reports whether a node's container runs, and its exit code if
// not.
func (c *cluster) running(ctx context.Context, name string) (bool, int, error) {
	res, err := c.cli.ContainerInspect(ctx, c.node(name).id, client.ContainerInspectOptions{})
	if err != nil {
		return false, 0, fmt.Errorf("inspecting %s: %w", name, err)
	}
	st := res.Container.State
	return st != nil && st.Running, st.ExitCode, nil
}

// connected reports whether a node is on the cluster's network.
func (c *cluster) connected(ctx context.Context, name string) (bool, error) {
	res, err := c.cli.ContainerInspect(ctx, c.node(name).id, client.ContainerInspectOptions{})
	if err != nil {
		return false, fmt.Errorf("inspecting %s: %w", name, err)
	}
	ns := res.Container.NetworkSettings
	return ns != nil && ns.Networks[c.name] != nil, nil
}

// poll calls f until it returns nil, or ctx ends: then it returns f's
// last error, saying what it waited for.
func poll(ctx context.Context, what string, f func() error) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, context.Cause(ctx), err)
		case <-tick.C:
		}
	}
}
