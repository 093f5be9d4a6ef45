package wire

import "github.com/nats-io/nats.go"

// MaxReplicas is the most servers Kiln asks JetStream to keep each of its
// messages on: three, which survive the loss of one.
const MaxReplicas = 3

// Replicas is how many copies of its streams and buckets Kiln keeps on the
// NATS deployment nc is connected to: one on a single server, and on a
// cluster as many as it has servers, up to MaxReplicas
// (docs/operations.md#nats-clusters).
func Replicas(nc *nats.Conn) int {
	if nc.ConnectedClusterName() == "" {
		return 1
	}
	return max(1, min(MaxReplicas, len(nc.Servers())))
}
