package sdk

import (
	"github.com/hashicorp/go-plugin"
)

const (
	// ProtocolVersion is the protocol's major version, checked in the
	// handshake. Bump it only for a change an older peer would misread.
	ProtocolVersion = 1
	// ProtocolMinor counts backwards-compatible additions within the major
	// version. A plugin reports the minor it was built with in Describe.
	ProtocolMinor = 0

	// MaxMessageBytes bounds one gRPC message each way. gRPC's default 4 MB
	// is smaller than a single 8x3x224x224 float32 clip (4.8 MB); 256 MiB
	// holds a batch of 48 such clips with room for the framing.
	MaxMessageBytes = 256 << 20

	// pluginKey names zoo's service in go-plugin's plugin set.
	pluginKey = "zoo"
)

// Handshake is shared by host and plugins. The cookie only guards against
// running a plugin by hand; it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "ZOO_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "7f1c2a9e-zoo-model-plugin",
}
