// Command zoo-plugin-hang completes the handshake and then never answers
// Describe, as a deadlocked plugin would: the host must give up with a
// clear error after its call timeout.
package main

import (
	"context"

	"github.com/zoo-ml/zoo/sdk"
)

func main() { sdk.Serve(provider{}) }

type provider struct{}

func (provider) Models(ctx context.Context) ([]sdk.ModelInfo, error) {
	select {} // ignores ctx on purpose: a hung plugin does
}

func (provider) Open(context.Context, sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	select {}
}
