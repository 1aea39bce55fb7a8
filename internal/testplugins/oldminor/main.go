// Command zoo-plugin-oldminor serves one model, Oldie, reporting protocol
// minor 0 as a plugin built before minor 1 would: no default job, no
// per-session labels. The host must still list and run it.
package main

import (
	"context"
	"fmt"

	"github.com/zoo-ml/zoo/sdk"
)

func main() { sdk.ServeAt(provider{}, 0) }

type provider struct{}

func (provider) Models(context.Context) ([]sdk.ModelInfo, error) {
	return []sdk.ModelInfo{{
		Name: "Oldie", Version: "0.0.1", Description: "a model from a plugin of protocol 1.0",
		Tasks:  []string{sdk.ModeInfer},
		Config: []sdk.ConfigKey{{Section: "INFER", Name: "samples", Type: "int", Default: 2}},
		Labels: []string{"no", "yes"},
	}}, nil
}

func (provider) Open(_ context.Context, req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	n, _ := req.Config["INFER"]["samples"].(float64)
	return &session{n: int(n)}, sdk.OpenResult{Notes: []string{"oldie opened"}}, nil
}

type session struct{ n int }

func (s *session) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: int64(s.n), Samples: int64(s.n)}}); err != nil {
		return err
	}
	for i := 0; i < s.n; i++ {
		p := &sdk.Prediction{ID: fmt.Sprint("sample", i), Scores: sdk.Tensor{Shape: []int64{2}, Data: []float32{0.25, 0.75}}, Label: -1}
		if err := emit(sdk.Event{Prediction: p}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *session) Save(context.Context, string) error { return nil }
func (s *session) Load(context.Context, string, string) (sdk.LoadResult, error) {
	return sdk.LoadResult{}, nil
}
func (s *session) Close() error { return nil }
