package wire_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/embednats"
	"github.com/kilnhq/kiln/internal/natstest"
	"github.com/kilnhq/kiln/internal/wire"
)

// TestReplicasOnACluster: on a cluster of three, Kiln's streams and buckets
// are kept on three servers — a stream made with one copy, as on a single
// server before, is brought to three; on a single server they have one.
func TestReplicasOnACluster(t *testing.T) {
	nc := natstest.StartCluster(t, 3).Connect(t)
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
