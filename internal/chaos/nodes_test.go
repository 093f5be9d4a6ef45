//go:build chaos

package chaos

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/nats-io/nats.go"
)

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
		cmd = append(cmd, "--ha", "--name", name, "--advertise", "http://"+name+":8080", "--lease-ttl", leaseTTL.String())
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
