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
	// History: 0, the first release; 1 added ModelInfo.default_config_json
	// and OpenResponse.labels; 2 added WeightSet.tensors, RunRequest.start_step
	// and SaveResponse's train position (exact resume); 3 added
	// OpenResponse.epochs (the host no longer reads TRAIN.epoch, nor sends
	// use_gpu as config: the device travels only as OpenRequest.device); 4
	// added the optional Decode call (a file through the infer reader, the
	// frames it sampled); 5 added OpenRequest.host_version (zoo's version,
	// which a data-parallel job's ranks compare). See docs/plugins.md for
	// the rule.
	ProtocolMinor = 5

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

// minorFeatures lists what each minor version added, for telling a user
// what an older plugin lacks. A host must work without every one of them.
var minorFeatures = []struct {
	minor   uint32
	feature string
}{
	{1, "a built-in default job (ModelInfo.default_config_json)"},
	{1, "per-session class names (OpenResponse.labels)"},
	{2, "weight sets checked by dtype and shape (WeightSet.tensors)"},
	{2, "resuming an interrupted epoch at its exact step (RunRequest.start_step, SaveResponse's train position)"},
	{3, "an epoch count from the plugin (OpenResponse.epochs)"},
	{4, "decoding a file without running the model (Decode), for `zoo serve`"},
	{5, "zoo's version in Open (OpenRequest.host_version), compared by a data-parallel job's ranks"},
}

// FeaturesAfter lists the protocol features a plugin reporting minor lacks:
// empty for a plugin as new as this package or newer.
func FeaturesAfter(minor uint32) []string {
	var out []string
	for _, f := range minorFeatures {
		if f.minor > minor {
			out = append(out, f.feature)
		}
	}
	return out
}
