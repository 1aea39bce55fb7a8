// Package sdk is zoo's plugin protocol, version 1, as Go types.
//
// A plugin author implements Provider (and Session) and calls Serve from the
// plugin's main; zoo's host calls Launch and gets a Client that returns the
// same Go types. A minimal plugin:
//
//	func main() { sdk.Serve(myProvider{}) }
//
//	type myProvider struct{}
//
//	func (myProvider) Models(ctx context.Context) ([]sdk.ModelInfo, error) { ... }
//	func (myProvider) Open(ctx context.Context, req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) { ... }
//
// A Session answers Run (one pass, streamed as events), Save, Load and
// Close; Inferer is an optional extra. Report a user's mistake with Errorf
// and a Code, log with Logger (never to stdout, which carries the
// handshake). examples/zoo-plugin-echo is a complete plugin in a module of
// its own, installed with `zoo plugins install`. Protobuf and gRPC stay inside this package: the generated
// code lives in sdk/internal/pb and is converted at the edge (convert.go).
//
// The transport is hashicorp/go-plugin over gRPC. The handshake (Handshake)
// carries a magic cookie and the protocol's major version; the minor version
// travels in Describe so that a host can tell what an older plugin lacks.
// docs/plugins.md documents the wire protocol for plugins not written in Go.
//
// Process lifetime: Launch starts a plugin in a process group of its own
// and, on Linux, with a parent-death signal, so it never outlives the host;
// KillAll kills every plugin at once (a second Ctrl-C). Serve ignores
// SIGINT, SIGTERM and SIGHUP, which the host owns, exits when the host is
// gone, and runs a session's calls one at a time. docs/plugins.md, "Signals
// and process lifetime", has the contract.
//
// This package imports nothing of zoo's: the host, registry and every plugin
// import it, never the other way round.
package sdk
