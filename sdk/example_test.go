package sdk_test

import (
	"context"
	"fmt"

	"github.com/zoo-ml/zoo/sdk"
)

// constant is a model that predicts the same scores for every sample.
type constant struct{}

func (constant) Models(context.Context) ([]sdk.ModelInfo, error) {
	return []sdk.ModelInfo{{
		Name: "Constant", Version: "1.0.0", Tasks: []string{sdk.ModeInfer},
		Config: []sdk.ConfigKey{{Section: "INFER", Name: "samples", Type: "int", Default: 3}},
		Labels: []string{"no", "yes"},
	}}, nil
}

func (constant) Open(_ context.Context, req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	if req.Model != "Constant" {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeNotFound, "no model %q", req.Model)
	}
	n, _ := req.Config["INFER"]["samples"].(float64) // JSON numbers decode as float64
	return &constantSession{n: int(n)}, sdk.OpenResult{}, nil
}

type constantSession struct{ n int }

func (s *constantSession) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: int64(s.n), Samples: int64(s.n)}}); err != nil {
		return err
	}
	for i := 0; i < s.n; i++ {
		if err := ctx.Err(); err != nil {
			return err // stop between steps when the host cancels
		}
		p := &sdk.Prediction{ID: fmt.Sprint("sample", i), Label: -1,
			Scores: sdk.Tensor{Shape: []int64{2}, Data: []float32{0.3, 0.7}}}
		if err := emit(sdk.Event{Prediction: p}); err != nil {
			return err
		}
	}
	return nil
}

func (s *constantSession) Save(context.Context, string) error { return nil }
func (s *constantSession) Load(context.Context, string, string) (sdk.LoadResult, error) {
	return sdk.LoadResult{}, nil
}
func (s *constantSession) Close() error { return nil }

// A plugin is a main package that implements Provider and Session and
// calls Serve; examples/zoo-plugin-echo is a complete one with its own
// go.mod. Serve never returns, so this example is compiled, not run.
func Example() {
	var _ sdk.Provider = constant{}
	if false {
		sdk.Serve(constant{})
	}
}

// A Session can be exercised without any process or gRPC: call Open and
// Run directly, as a plugin's unit tests do.
func Example_session() {
	s, _, err := constant{}.Open(context.Background(), sdk.OpenRequest{
		Model: "Constant", Mode: sdk.ModeInfer, Config: sdk.Config{"INFER": {"samples": 2.0}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	s.Run(context.Background(), sdk.RunRequest{Phase: sdk.PhaseInfer}, func(e sdk.Event) error {
		if e.Prediction != nil {
			fmt.Println(e.Prediction.ID, e.Prediction.Scores.Data)
		}
		return nil
	})
	// Output:
	// sample0 [0.3 0.7]
	// sample1 [0.3 0.7]
}

// Errors with a code tell the host a user's mistake from a plugin failure.
func ExampleErrorf() {
	err := sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.num_layers %d: use 18, 34, 50, 101 or 152", 20)
	fmt.Println(sdk.CodeOf(err) == sdk.CodeInvalidArgument, err)
	// Output: true MODEL.num_layers 20: use 18, 34, 50, 101 or 152
}

// FeaturesAfter says what a plugin built against an older minor lacks.
func ExampleFeaturesAfter() {
	fmt.Println(len(sdk.FeaturesAfter(0)) > 0, len(sdk.FeaturesAfter(sdk.ProtocolMinor)))
	// Output: true 0
}
