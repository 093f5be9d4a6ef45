// Package natstest starts real NATS servers with JetStream for tests.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A Cluster is n NATS servers with JetStream routed into one cluster on
// loopback.
type Cluster struct {
	Servers []*server.Server
	// URLs are the servers' client URLs, in order.
	URLs []string
}

// URL returns the client URLs joined by commas, as --nats takes them.
func (c *Cluster) URL() string { return strings.Join(c.URLs, ",") }

// StartCluster starts n servers and returns once JetStream has a meta
// leader and a client knows all n servers. They stop when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	routes := make([]*url.URL, n)
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		routes[i] = &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])}
	}
	c := &Cluster{}
	for i := range n {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
			Cluster: server.ClusterOpts{Name: "kiln-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  routes,
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("server n%d is not ready", i)
		}
		c.Servers = append(c.Servers, s)
		c.URLs = append(c.URLs, s.ClientURL())
	}
	nc := c.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := js.AccountInfo(ctx)
		cancel()
		if err == nil && len(nc.Servers()) == n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JetStream cluster of %d: %v (servers known: %v)", n, err, nc.Servers())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Connect returns a client of the cluster, closed when the test ends.
func (c *Cluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}
