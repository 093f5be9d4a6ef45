// Package serve is the plugin side of the Stage protocol: a plugin's main
// calls Serve with its implementation of stagepb.StageServer, and Serve
// answers the Kiln host's go-plugin handshake and serves gRPC until the host
// lets the plugin go.
package serve

import (
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/kilnhq/kiln/plugins/proto"
	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// Shutdowner is implemented by plugins that must clean up before the plugin
// process ends, typically by killing the tasks they still run.
type Shutdowner interface {
	// Shutdown stops all work and returns when it is stopped.
	Shutdown()
}

// parentPoll is how often Serve checks that the host process is still alive.
const parentPoll = 500 * time.Millisecond

// Serve serves impl to the Kiln host that started this process and returns
// when the host shuts the plugin down. If the host process dies without doing
// so, Serve ends the process itself. Either way, when impl is a Shutdowner,
// its Shutdown runs first.
//
// Run directly rather than by a host, Serve prints a note and exits with
// status 1.
func Serve(impl stagepb.StageServer) {
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			if s, ok := impl.(Shutdowner); ok {
				s.Shutdown()
			}
		})
	}

	// go-plugin only notices a host that went away when it is told to shut
	// down, which a killed host never does: watch for being re-parented.
	ppid := os.Getppid()
	go func() {
		for range time.Tick(parentPoll) {
			if os.Getppid() != ppid {
				shutdown()
				os.Exit(1)
			}
		}
	}()

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  proto.Handshake,
		VersionedPlugins: proto.PluginSets(impl),
		GRPCServer:       plugin.DefaultGRPCServer,
		// The host reads these JSON lines from stderr and logs them at debug.
		Logger: hclog.New(&hclog.LoggerOptions{
			Level:      hclog.Info,
			Output:     os.Stderr,
			JSONFormat: true,
		}),
	})
	shutdown()
}
