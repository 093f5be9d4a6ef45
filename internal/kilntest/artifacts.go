package kilntest

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kilnhq/kiln/internal/wire"
)

// ArtifactStore returns the installation's artifact store
// (wire.ArtifactsBucket), which the scheduler opened on start, over a
// connection of the test's own: for tests that put objects in it as
// workers do, alter them, or look at what is stored.
func (k *Kiln) ArtifactStore() jetstream.ObjectStore {
	k.t.Helper()
	nc, err := nats.Connect(k.ns.ClientURL())
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		k.t.Fatal(err)
	}
	obs, err := js.ObjectStore(context.Background(), wire.ArtifactsBucket)
	if err != nil {
		k.t.Fatalf("kilntest: opening the artifact store: %v", err)
	}
	return obs
}
