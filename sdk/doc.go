// Package sdk is zoo's plugin protocol, version 1, as Go types.
//
// A plugin author implements Provider (and Session) and calls Serve from the
// plugin's main; zoo's host calls Launch and gets a Client that returns the
// same Go types. Protobuf and gRPC stay inside this package: the generated
// code lives in sdk/internal/pb and is converted at the edge (convert.go).
//
// The transport is hashicorp/go-plugin over gRPC. The handshake (Handshake)
// carries a magic cookie and the protocol's major version; the minor version
// travels in Describe so that a host can tell what an older plugin lacks.
// docs/plugins.md documents the wire protocol for plugins not written in Go.
//
// This package imports nothing of zoo's: the host, registry and every plugin
// import it, never the other way round.
package sdk
