// Command zoo-plugin-empty is a well-formed plugin that serves no models.
package main

import (
	"context"

	"github.com/zoo-ml/zoo/sdk"
)

func main() { sdk.Serve(provider{}) }

type provider struct{}

func (provider) Models(context.Context) ([]sdk.ModelInfo, error) { return nil, nil }
func (provider) Open(context.Context, sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeNotFound, "no models")
}
