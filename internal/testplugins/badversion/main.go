// Command zoo-plugin-badversion completes go-plugin's handshake with zoo's
// cookie but protocol version 99, as a plugin from a future zoo would.
package main

import (
	"github.com/hashicorp/go-plugin"

	"github.com/zoo-ml/zoo/sdk"
)

func main() {
	hs := sdk.Handshake
	hs.ProtocolVersion = 99
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         plugin.PluginSet{},
		GRPCServer:      plugin.DefaultGRPCServer,
	})
}
