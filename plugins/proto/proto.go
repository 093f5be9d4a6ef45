// Package proto is the Stage protocol between a Kiln worker (the host) and
// its stage plugins. The gRPC service is defined in stage.proto, with its
// generated Go code in package stagepb; this package adds what both sides of
// hashicorp/go-plugin must agree on: the handshake, the protocol version and
// the name the plugin is dispensed under.
package proto

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/kilnhq/kiln/plugins/proto/stagepb"
)

// ProtocolVersion is the version of the Stage protocol this package speaks.
// Bump it, and keep serving the old one in VersionedPlugins, on any change
// that old plugins or hosts cannot read.
const ProtocolVersion = 1

// PluginName is the name the Stage service is dispensed under.
const PluginName = "stage"

// Handshake is the go-plugin handshake of every Kiln stage plugin. The magic
// cookie only keeps a plugin binary from doing anything when a person runs it
// directly; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "KILN_STAGE_PLUGIN",
	MagicCookieValue: "6f1c0d2e-kiln-stage-plugin",
}

// PluginSets returns the plugin sets, keyed by protocol version, for
// go-plugin's VersionedPlugins. A plugin passes its implementation; the host
// passes nil.
func PluginSets(impl stagepb.StageServer) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		ProtocolVersion: {PluginName: &GRPCPlugin{Impl: impl}},
	}
}

// GRPCPlugin connects the Stage service to go-plugin: on the plugin side it
// registers Impl with the gRPC server, on the host side it returns a
// stagepb.StageClient.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl stagepb.StageServer // nil on the host side
}

// GRPCServer registers the plugin's implementation.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	stagepb.RegisterStageServer(s, p.Impl)
	return nil
}

// GRPCClient returns a stagepb.StageClient over the plugin's connection.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return stagepb.NewStageClient(c), nil
}
