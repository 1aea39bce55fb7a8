// Command zoo-plugin-hang is a plugin that stops answering. By default it
// completes the handshake and then never answers Describe, as a deadlocked
// plugin would: the host must give up with a clear error after its call
// timeout. With ZOO_TEST_HANG set it serves a model, Hang, that trains in a
// few steps and misbehaves in one place:
//
//	run     Run sends one step, then never returns and ignores cancellation
//	save    Save never returns
//	close   Close never returns
//	stdout  Run floods stdout (os.Stdout and the raw fd 1) and then works
//
// cmd/zoo/lifecycle_test.go uses them to check that zoo has a deadline or a
// second signal for every call, and reports a plugin that writes to stdout.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/zoo-ml/zoo/sdk"
)

var mode = os.Getenv("ZOO_TEST_HANG")

func main() { sdk.Serve(provider{}) }

type provider struct{}

func (provider) Models(ctx context.Context) ([]sdk.ModelInfo, error) {
	if mode == "" {
		select {} // ignores ctx on purpose: a hung plugin does
	}
	return []sdk.ModelInfo{{Name: "Hang", Version: "0.0.1", Tasks: []string{"train"},
		Config: []sdk.ConfigKey{{Section: "TRAIN", Name: "epoch", Type: "int", Default: 1}}}}, nil
}

func (provider) Open(_ context.Context, req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	if mode == "" {
		select {}
	}
	epochs, _ := req.Config["TRAIN"]["epoch"].(float64)
	return session{}, sdk.OpenResult{Epochs: int(epochs)}, nil
}

type session struct{}

const steps = 3

func (session) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: steps, Samples: steps}}); err != nil {
		return err
	}
	if mode == "stdout" {
		raw := os.NewFile(1, "stdout") // fd 1: what a non-Go plugin's print reaches
		line := strings.Repeat("x", 99) + "\n"
		for i := 0; i < 2000; i++ {
			fmt.Fprint(os.Stdout, line) // go-plugin forwards os.Stdout over gRPC
			raw.WriteString(line)
		}
	}
	for i := int64(0); i < steps; i++ {
		m := map[string]float64{"loss": 1, "top1": 0, "top5": 1, "lr": 0.1}
		if err := emit(sdk.Event{Step: &sdk.Step{Iter: i, Samples: 1, Metrics: m}}); err != nil {
			return err
		}
		if mode == "run" && req.Phase == sdk.PhaseTrain {
			fmt.Fprintln(os.Stderr, "hanging in Run")
			select {}
		}
	}
	return nil
}

func (session) Save(context.Context, string) error {
	if mode == "save" {
		select {}
	}
	return nil
}

func (session) Load(context.Context, string, string) (sdk.LoadResult, error) {
	return sdk.LoadResult{}, nil
}

func (session) Close() error {
	if mode == "close" {
		select {}
	}
	return nil
}
