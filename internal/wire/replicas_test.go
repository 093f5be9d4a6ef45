package wire_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/wire"
)

// startCluster starts n NATS servers with JetStream, routed into one
// cluster on loopback, and returns a client of them once JetStream has a
// meta leader. The servers stop when the test ends.
func startCluster(t *testing.T, n int) *nats.Conn {
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
	var urls []string
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
		urls = append(urls, s.ClientURL())
	}
	nc, err := nats.Connect(urls[0])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
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
			return nc
		}
		if time.Now().After(deadline) {
			t.Fatalf("no JetStream cluster of %d: %v (servers known: %v)", n, err, nc.Servers())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicasOnACluster: on a cluster of three, Kiln's streams and buckets
// are kept on three servers — a stream made with one copy, as on a single
// server before, is brought to three; on a single server they have one.
func TestReplicasOnACluster(t *testing.T) {
	nc := startCluster(t, 3)
	if got := wire.Replicas(nc); got != 3 {
		t.Fatalf("Replicas = %d on a cluster of 3", got)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// KILN_TASKS as a single server made it, before the cluster.
	one := wire.StreamConfigs()[0]
	one.Replicas = 1
	if _, err := js.CreateStream(ctx, one); err != nil {
		t.Fatal(err)
	}
	if err := wire.EnsureStreams(ctx, js, wire.Replicas(nc)); err != nil {
		t.Fatal(err)
	}
	if err := wire.EnsureBuckets(ctx, js, -1, wire.Replicas(nc)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{wire.TasksStream, wire.EventsStream, "OBJ_" + wire.ArtifactsBucket, "KV_" + wire.WorkersBucket} {
		st, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Errorf("stream %s: %d replicas configured, cluster %+v; want 3, a leader and two followers", name, info.Config.Replicas, info.Cluster)
		}
	}

	single, err := embednats.Start(embednats.Options{StoreDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Shutdown()
	snc, err := nats.Connect(single.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer snc.Close()
	if got := wire.Replicas(snc); got != 1 {
		t.Errorf("Replicas = %d on a single server", got)
	}
}
