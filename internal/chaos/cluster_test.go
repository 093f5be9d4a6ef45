//go:build chaos

package chaos

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
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
	t     *testing.T
	s     *suite
	cli   *client.Client
	name  string // of the network, and the prefix of the containers' names
	token string // an admin API token that every server's store holds
	seed  []byte // tar of the servers' /data, with that token

	mu    sync.Mutex
	nodes map[string]*node
}

// newCluster creates the network. When the test ends it dumps the nodes'
// last log lines if the test failed, and removes the nodes and the
// network.
func newCluster(t *testing.T, s *suite) *cluster {
	t.Helper()
	c := &cluster{t: t, s: s, cli: s.eng.Client(), nodes: map[string]*node{}}
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

// startNATS starts n1..n3, a JetStream cluster, and waits until it has a
// meta leader: until a stream of three replicas can be made.
func (c *cluster) startNATS(ctx context.Context) error {
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		cmd := []string{"/nats-server", "-js", "-sd", "/data", "--server_name", name,
			"--cluster_name", "kiln", "--cluster", "nats://0.0.0.0:6222",
			"--routes", "nats://n1:6222,nats://n2:6222,nats://n3:6222", "-p", "4222"}
		if _, err := c.create(ctx, name, roleNATS, cmd, natsPort); err != nil {
			return err
		}
		if err := c.start(ctx, name); err != nil {
			return err
		}
	}
	return c.waitNATSQuorum(ctx)
}

// probeStream is the stream of three replicas that proves the NATS
// cluster formed.
const probeStream = "CHAOS_PROBE"

// waitNATSQuorum waits until the cluster makes and answers a stream of
// three replicas, and publishes to it.
func (c *cluster) waitNATSQuorum(ctx context.Context) error {
	nc, err := c.natsConn()
	if err != nil {
		return err
	}
	defer nc.Close()
	return poll(ctx, "the NATS cluster to make a stream of 3 replicas", func() error {
		js, err := nc.JetStream()
		if err != nil {
			return err
		}
		if _, err := js.AddStream(&nats.StreamConfig{Name: probeStream, Subjects: []string{"chaos.probe"}, Replicas: 3}); err != nil && !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
			return err
		}
		_, err = js.Publish("chaos.probe", []byte("formed"))
		return err
	})
}

// natsConn connects the test to the NATS cluster through the published
// ports, and only through them: the servers' own addresses on the
// network are not for the test.
func (c *cluster) natsConn() (*nats.Conn, error) {
	var urls []string
	for _, name := range c.names(roleNATS) {
		urls = append(urls, "nats://"+c.hostAddr(name, natsPort))
	}
	nc, err := nats.Connect(strings.Join(urls, ","),
		nats.Name("kiln-chaos-test"),
		nats.IgnoreDiscoveredServers(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", urls, err)
	}
	return nc, nil
}

// seedStore makes the servers' store: a token for the test, made with
// `kiln tokens create --data` as an operator would before a first start
// (a server that serves beyond loopback needs one). Each server's /data
// gets a copy of it.
func (c *cluster) seedStore(ctx context.Context) error {
	dir := c.t.TempDir()
	cmd := exec.CommandContext(ctx, filepath.Join(c.s.binDir, "kiln"), "tokens", "create", "--name", "chaos", "--role", "admin", "--data", dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("kiln tokens create: %w\n%s", err, stderr.Bytes())
	}
	c.token = strings.TrimSpace(string(out))
	c.seed, err = tarDir(dir)
	return err
}

// tarDir returns a tar of the files under dir, named relative to it.
func tarDir(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		if hdr.Name, err = filepath.Rel(dir, path); err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("archiving %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// heartbeatTimeout is the servers' --heartbeat-timeout: short, so that a
// killed worker's tries are failed, and retried, within the test.
const heartbeatTimeout = 10 * time.Second

// startServer starts a Kiln server named name, with the seeded store
// copied into its /data before it starts. With ha, it is one of the
// servers of HA mode (the CLI contract the suite is written against);
// without, the one scheduler of a plain `kiln server`.
func (c *cluster) startServer(ctx context.Context, name string, ha bool) error {
	if c.seed == nil {
		if err := c.seedStore(ctx); err != nil {
			return err
		}
	}
	cmd := []string{"/kiln", "server"}
	if ha {
		cmd = append(cmd, "--ha", "--name", name, "--advertise", "http://"+name+":8080")
	}
	cmd = append(cmd, "--addr", "0.0.0.0:8080", "--nats", natsURLs, "--data", "/data", "--dags", "/dags",
		"--heartbeat-timeout", heartbeatTimeout.String())
	n, err := c.create(ctx, name, roleServer, cmd, apiPort)
	if err != nil {
		return err
	}
	if _, err := c.cli.CopyToContainer(ctx, n.id, client.CopyToContainerOptions{DestinationPath: "/data", Content: bytes.NewReader(c.seed)}); err != nil {
		return fmt.Errorf("copying the store into %s: %w", name, err)
	}
	return c.start(ctx, name)
}

// startWorker starts a worker named name with 4 slots.
func (c *cluster) startWorker(ctx context.Context, name string) error {
	cmd := []string{"/kiln", "worker", "--nats", natsURLs, "--name", name, "--slots", "4"}
	if _, err := c.create(ctx, name, roleWorker, cmd); err != nil {
		return err
	}
	return c.start(ctx, name)
}

// runOnce runs a one-off container of the image, off any network, and
// returns its exit code and output.
func (c *cluster) runOnce(ctx context.Context, cmd ...string) (int64, string, error) {
	res, err := c.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: c.s.image, Cmd: cmd, Labels: c.labels("once")},
		HostConfig: &container.HostConfig{NetworkMode: "none"},
	})
	if err != nil {
		return 0, "", err
	}
	defer c.cli.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	wait := c.cli.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := c.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		return 0, "", err
	}
	var code int64
	select {
	case r := <-wait.Result:
		code = r.StatusCode
	case err := <-wait.Error:
		return 0, "", err
	}
	out, err := c.logs(ctx, res.ID, "all")
	return code, out, err
}

// logs returns a container's output, its last tail lines ("all" for
// every line), stdout and stderr together.
func (c *cluster) logs(ctx context.Context, id, tail string) (string, error) {
	rc, err := c.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: tail, Timestamps: true})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, rc); err != nil {
		return buf.String(), err
	}
	return buf.String(), nil
}

// dumpLogs writes the last lines of each node's log to the test's log.
func (c *cluster) dumpLogs(lines int) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.mu.Lock()
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range c.nodes {
			if !yield(name) {
				return
			}
		}
	})
	c.mu.Unlock()
	for _, name := range names {
		out, err := c.logs(ctx, c.node(name).id, fmt.Sprint(lines))
		if err != nil {
			out += fmt.Sprintf("(reading the log: %v)", err)
		}
		c.t.Logf("--- the last %d log lines of %s ---\n%s", lines, name, out)
	}
}

// remove removes the cluster's containers and its network.
func (c *cluster) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	removeLabelled(ctx, c.cli, labelCluster+"="+c.name, func(err error) { c.t.Errorf("cleanup: %v", err) })
}

// removeLabelled removes the containers and networks with the label
// filter label (KEY=VALUE).
func removeLabelled(ctx context.Context, cli *client.Client, label string, fail func(error)) {
	filters := make(client.Filters).Add("label", label)
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters})
	if err != nil {
		fail(fmt.Errorf("listing the containers of %s: %w", label, err))
	}
	for _, ct := range list.Items {
		if _, err := cli.ContainerRemove(ctx, ct.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
			fail(fmt.Errorf("removing container %v: %w", ct.Names, err))
		}
	}
	nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filters})
	if err != nil {
		fail(fmt.Errorf("listing the networks of %s: %w", label, err))
	}
	for _, n := range nets.Items {
		if _, err := cli.NetworkRemove(ctx, n.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			fail(fmt.Errorf("removing network %s: %w", n.Name, err))
		}
	}
}

// removeStale removes what runs of the suite that began over staleAfter
// before now left on the Engine: their containers, networks and images.
// It only logs what it cannot remove.
func removeStale(ctx context.Context, cli *client.Client, now time.Time) {
	warn := func(err error) { fmt.Fprintf(os.Stderr, "chaos: removing a stale run: %v\n", err) }
	old := func(labels map[string]string) bool {
		started, err := strconv.ParseInt(labels[labelStarted], 10, 64)
		return err == nil && now.Sub(time.Unix(started, 0)) > staleAfter
	}
	runs := map[string]bool{}
	filters := make(client.Filters).Add("label", labelRun)
	if list, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: filters}); err == nil {
		for _, ct := range list.Items {
			if old(ct.Labels) {
				runs[ct.Labels[labelRun]] = true
			}
		}
	}
	if nets, err := cli.NetworkList(ctx, client.NetworkListOptions{Filters: filters}); err == nil {
		for _, n := range nets.Items {
			if old(n.Labels) {
				runs[n.Labels[labelRun]] = true
			}
		}
	}
	for run := range runs {
		removeLabelled(ctx, cli, labelRun+"="+run, warn)
	}
	if imgs, err := cli.ImageList(ctx, client.ImageListOptions{Filters: filters}); err == nil {
		for _, img := range imgs.Items {
			if old(img.Labels) {
				if _, err := cli.ImageRemove(ctx, img.ID, client.ImageRemoveOptions{Force: true, PruneChildren: true}); err != nil {
					warn(err)
				}
			}
		}
	}
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
