// Command zoo-plugin-two serves two toy models, Alpha and Beta, for zoo's
// protocol and driver tests. Alpha "learns" a number: its loss is
// (w - 3)^2 and each train step moves w by lr times the gradient, so tests
// can check the driver's loop, checkpoints and resume by hand.
package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
)

func main() { sdk.Serve(provider{}) }

type provider struct{}

func (provider) Models(context.Context) ([]sdk.ModelInfo, error) {
	cfg := []sdk.ConfigKey{
		{Section: "MODEL", Name: "num_classes", Type: "int", Default: 3},
		{Section: "TRAIN", Name: "epoch", Type: "int", Default: 2},
		{Section: "TRAIN", Name: "batch_size", Type: "int", Default: 4},
		{Section: "TRAIN", Name: "learning_rate", Type: "float", Default: 0.1},
		{Section: "TRAIN", Name: "steps", Type: "int", Default: 5},
		{Section: "TRAIN", Name: "sleep_ms", Type: "int", Default: 0, Help: "sleep per step, for interrupt tests"},
		{Section: "TRAIN", Name: "nan_at", Type: "int", Default: -1, Help: "global step whose loss is NaN"},
		{Section: "VALID", Name: "batch_size", Type: "int", Default: 4},
		{Section: "TEST", Name: "batch_size", Type: "int", Default: 3},
		{Section: "TEST", Name: "videos", Type: "int", Default: 7},
		{Section: "TEST", Name: "nan_at", Type: "int", Default: -1, Help: "test step whose loss is NaN"},
		{Section: "INFER", Name: "videos", Type: "int", Default: 2},
		{Section: "INFER", Name: "bad_tensor", Type: "bool", Default: false},
	}
	return []sdk.ModelInfo{
		{Name: "Alpha", Version: "1.0.0", Description: "a toy model that learns the number 3",
			Tasks: []string{"train", "test", "infer"}, Config: cfg, Labels: []string{"zero", "one", "two"},
			WeightSets: []sdk.WeightSet{{Name: "alpha_w", URL: "http://127.0.0.1:1/alpha_w.tar.gz", Dir: "alpha_w", Use: sdk.UseWeights, Required: []string{"w"}}}},
		{Name: "Beta", Version: "0.1.0", Tasks: []string{"infer"}, Labels: []string{"a", "b"}},
	}, nil
}

func (provider) Open(_ context.Context, req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	if req.Model != "Alpha" && req.Model != "Beta" {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeNotFound, "no model %q", req.Model)
	}
	s := &session{cfg: req.Config, w: 0}
	notes := []string{fmt.Sprintf("opened %s in %s mode", req.Model, req.Mode)}
	if dir := req.Weights[sdk.UseWeights]; dir != "" {
		if _, err := s.Load(context.Background(), dir, sdk.UseWeights); err != nil {
			return nil, sdk.OpenResult{}, err
		}
		// Tests read this note to check which weights a session started from.
		notes = append(notes, fmt.Sprintf("loaded w=%g from %s", s.w, dir))
	}
	return s, sdk.OpenResult{Notes: notes, Epochs: int(s.num("TRAIN", "epoch"))}, nil
}

type session struct {
	cfg sdk.Config
	w   float64
}

func (s *session) num(section, key string) float64 {
	v, _ := s.cfg[section][key].(float64)
	return v
}

func (s *session) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	switch req.Phase {
	case sdk.PhaseTrain, sdk.PhaseValid:
		steps := int64(s.num("TRAIN", "steps"))
		bs := int64(s.num("TRAIN", "batch_size"))
		lr := s.num("TRAIN", "learning_rate")
		if err := emit(sdk.Event{Start: &sdk.Start{Steps: steps, Samples: steps * bs}}); err != nil {
			return err
		}
		for i := int64(0); i < steps; i++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			if ms := s.num("TRAIN", "sleep_ms"); ms > 0 {
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			loss := (s.w - 3) * (s.w - 3)
			if req.Phase == sdk.PhaseTrain {
				if req.GlobalStep+i == int64(s.num("TRAIN", "nan_at")) {
					loss = math.NaN()
				}
				s.w -= lr * 2 * (s.w - 3)
			}
			acc := 1 / (1 + loss)
			m := map[string]float64{"loss": loss, "top1": acc, "top5": 1, "lr": lr}
			if err := emit(sdk.Event{Step: &sdk.Step{Iter: i, Samples: bs, Metrics: m}}); err != nil {
				return err
			}
		}
		return nil
	case sdk.PhaseTest:
		n := int64(s.num("TEST", "videos"))
		bs := int64(s.num("TEST", "batch_size"))
		steps := (n + bs - 1) / bs
		if err := emit(sdk.Event{Start: &sdk.Start{Steps: steps, Samples: n}}); err != nil {
			return err
		}
		for i := int64(0); i < steps; i++ {
			b := min(bs, n-i*bs)
			// Batch i has loss i and top1 1 for even i: the driver's
			// batch-weighted means are checkable by hand.
			m := map[string]float64{"loss": float64(i), "top1": float64(1 - i%2), "top5": 1}
			if i == int64(s.num("TEST", "nan_at")) {
				m["loss"] = math.NaN()
			}
			if err := emit(sdk.Event{Step: &sdk.Step{Iter: i, Samples: b, Metrics: m}}); err != nil {
				return err
			}
		}
		return emit(sdk.Event{Warning: &sdk.Warning{Message: "skipped a broken video", Path: "broken.mp4"}})
	case sdk.PhaseInfer:
		n := int(s.num("INFER", "videos"))
		if err := emit(sdk.Event{Start: &sdk.Start{Steps: int64(n), Samples: int64(n)}}); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			scores := sdk.Tensor{Shape: []int64{3}, Data: []float32{0.2, 0.5, 0.3}}
			if i%2 == 1 {
				scores.Data = []float32{0.6, 0.1, 0.3}
			}
			if s.cfg["INFER"]["bad_tensor"] == true {
				scores.Shape = []int64{4}
			}
			p := &sdk.Prediction{ID: "video" + strconv.Itoa(i), Scores: scores, Label: -1}
			if err := emit(sdk.Event{Prediction: p}); err != nil {
				return err
			}
		}
		return nil
	}
	return sdk.Errorf(sdk.CodeInvalidArgument, "unknown phase %q", req.Phase)
}

func (s *session) Infer(_ context.Context, in sdk.Tensor) (sdk.Tensor, error) {
	var sum float64
	for _, v := range in.Data {
		sum += float64(v)
	}
	return sdk.Tensor{Shape: []int64{2}, Data: []float32{float32(sum), float32(len(in.Data))}}, nil
}

// Save writes w as a Paddle parameter file (a [1] FP32 tensor), so a
// saved directory is also a weight set the store can install.
func (s *session) Save(_ context.Context, dir string) error {
	return weights.WriteFile(filepath.Join(dir, "w"), weights.NewFloat32("w", []int64{1}, []float32{float32(s.w)}))
}

func (s *session) Load(_ context.Context, dir, _ string) (sdk.LoadResult, error) {
	t, err := weights.ReadFile(filepath.Join(dir, "w"))
	if errors.Is(err, fs.ErrNotExist) {
		return sdk.LoadResult{}, sdk.Errorf(sdk.CodeNotFound, "load %s: %v", dir, err)
	}
	if err != nil {
		return sdk.LoadResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "load %s: %v", dir, err)
	}
	v, err := t.Float32s()
	if err != nil || len(v) != 1 {
		return sdk.LoadResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "load %s: w: want one FP32 value, got %v %v", dir, t.DType, t.Dims)
	}
	s.w = float64(v[0])
	return sdk.LoadResult{Loaded: 1}, nil
}

func (s *session) Close() error { return nil }
