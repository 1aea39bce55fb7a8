// Command zoo-plugin-rude is a plugin that gets the contract wrong in the
// one way ZOO_TEST_RUDE names, for cmd/zoo/authoring_test.go: each failure
// must reach the user pointing at its cause. It serves Rude (train, infer),
// which trains in a few steps unless told otherwise:
//
//	panic       Run panics (a nil map), as a plugin with a bug does
//	stdout      Run prints a line on stdout, then works
//	scores      infer sends scores that are not probabilities
//	baddefault  TRAIN.steps is declared int with the default "two"
//	alpha       the model is called Alpha, a name zoo-plugin-two serves
//	slowstart   the handshake comes after 30 s
//	sigint      Run dies of SIGINT (the signals are not ignored) and
//	            ignores cancellation
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zoo-ml/zoo/sdk"
)

var mode = os.Getenv("ZOO_TEST_RUDE")

func main() {
	if mode == "slowstart" {
		time.Sleep(30 * time.Second)
	}
	sdk.Serve(provider{})
}

type provider struct{}

func (provider) Models(context.Context) ([]sdk.ModelInfo, error) {
	name := "Rude"
	if mode == "alpha" {
		name = "Alpha"
	}
	var steps any = 3
	if mode == "baddefault" {
		steps = "two"
	}
	return []sdk.ModelInfo{{Name: name, Version: "0.0.1", Tasks: []string{sdk.ModeTrain, sdk.ModeInfer},
		Labels: []string{"no", "yes"},
		Config: []sdk.ConfigKey{
			{Section: "TRAIN", Name: "epoch", Type: "int", Default: 1},
			{Section: "TRAIN", Name: "steps", Type: "int", Default: steps},
		}}}, nil
}

func (provider) Open(context.Context, sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	if mode == "sigint" {
		// Die of the signals, as a plugin that never heard of the
		// contract does (signal.Reset does not undo sdk.Serve's Ignore).
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			sig := <-c
			fmt.Fprintf(os.Stderr, "rude: killed by %v\n", sig)
			os.Exit(130)
		}()
	}
	return session{}, sdk.OpenResult{}, nil
}

type session struct{}

var counts map[string]int // never made: the bug of the panic mode

func (session) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	if req.Phase == sdk.PhaseInfer {
		emit(sdk.Event{Start: &sdk.Start{Steps: 1, Samples: 1}})
		scores := []float32{0.25, 0.75}
		if mode == "scores" {
			scores = []float32{1.5, -0.5}
		}
		return emit(sdk.Event{Prediction: &sdk.Prediction{ID: "sample0", Label: -1,
			Scores: sdk.Tensor{Shape: []int64{2}, Data: scores}}})
	}
	const steps = 3
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: steps, Samples: steps}}); err != nil {
		return err
	}
	for i := 0; i < steps; i++ {
		switch mode {
		case "panic":
			counts["step"]++
		case "stdout":
			fmt.Println("rude: hello from stdout")
		}
		if err := emit(sdk.Event{Step: &sdk.Step{Iter: int64(i), Samples: 1, Metrics: map[string]float64{"loss": 1, "lr": 0.1}}}); err != nil {
			return err
		}
		if mode == "sigint" {
			for {
				time.Sleep(time.Second) // ignores ctx on purpose
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

func (session) Save(context.Context, string) error { return nil }
func (session) Load(context.Context, string, string) (sdk.LoadResult, error) {
	return sdk.LoadResult{}, nil
}
func (session) Close() error { return nil }
