// Command zoo-plugin-crash serves one model whose Run dies after one step,
// the way a plugin with a bug would.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/zoo-ml/zoo/sdk"
)

func main() { sdk.Serve(provider{}) }

type provider struct{}

func (provider) Models(context.Context) ([]sdk.ModelInfo, error) {
	return []sdk.ModelInfo{{Name: "Crashy", Version: "0.0.1", Tasks: []string{"train", "test", "infer"}}}, nil
}

func (provider) Open(context.Context, sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	return session{}, sdk.OpenResult{}, nil
}

type session struct{}

func (session) Run(_ context.Context, _ sdk.RunRequest, emit func(sdk.Event) error) error {
	emit(sdk.Event{Start: &sdk.Start{Steps: 10, Samples: 10}})
	emit(sdk.Event{Step: &sdk.Step{Iter: 0, Samples: 1, Metrics: map[string]float64{"loss": 1}}})
	// fd 2 itself, where a runtime panic would land: go-plugin swaps
	// os.Stderr for a pipe it forwards over gRPC.
	fmt.Fprintln(os.NewFile(2, "stderr"), "crashy: out of cheese at step 1")
	os.Exit(3)
	return nil
}

func (session) Save(context.Context, string) error { return nil }
func (session) Load(context.Context, string, string) (sdk.LoadResult, error) {
	return sdk.LoadResult{}, nil
}
func (session) Close() error { return nil }
