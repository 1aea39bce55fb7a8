package main

// Parity is the example's model that trains: a logistic regression with
// one weight and a bias on one feature (+1 for a line of odd length, -1 for
// even), which learns what Echo is told. It shows the training contract of
// docs/plugins.md: the epochs come from TRAIN.epoch (the host loops), each
// train Run is one epoch of batches reporting loss, top1, top5 and lr,
// Save/Load write and read the parameters, sdk.StepResumer resumes an
// interrupted epoch at its step, and test/infer receive the weights in
// OpenRequest.Weights.

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/zoo-ml/zoo/sdk"
)

// parityConfig is every key Parity accepts, with its defaults: sdk.SchemaOf
// turns it into ModelInfo.Config, and Config.Decode fills it.
type parityConfig struct {
	Train struct {
		Epoch        int     `mapstructure:"epoch" help:"epochs to train (--epoch)"`
		BatchSize    int     `mapstructure:"batch_size" help:"lines per step (--batch_size)"`
		LearningRate float64 `mapstructure:"learning_rate" help:"step size (--learning_rate)"`
		Filelist     string  `mapstructure:"filelist" help:"\"text label\" lines; empty: built-in lines"`
	} `mapstructure:"TRAIN"`
	Test struct {
		Filelist string `mapstructure:"filelist" help:"\"text label\" lines; empty: built-in lines"`
	} `mapstructure:"TEST"`
	Infer struct {
		Filelist string `mapstructure:"filelist" help:"lines of text; empty: built-in lines"`
	} `mapstructure:"INFER"`
}

func parityDefaults() parityConfig {
	var c parityConfig
	c.Train.Epoch, c.Train.BatchSize, c.Train.LearningRate = 3, 2, 0.5
	return c
}

func parityInfo() (sdk.ModelInfo, error) {
	keys, err := sdk.SchemaOf(parityDefaults())
	if err != nil {
		return sdk.ModelInfo{}, err
	}
	return sdk.ModelInfo{
		Name:        "Parity",
		Version:     "0.1.0",
		Description: "learns the parity of a line's length (an SDK example that trains)",
		Tasks:       []string{sdk.ModeTrain, sdk.ModeTest, sdk.ModeInfer},
		Config:      keys,
		Labels:      labels,
	}, nil
}

// paritySession holds the parameters: p(odd) = sigmoid(w*x + b).
type paritySession struct {
	cfg  parityConfig
	mode string
	W, B float64
}

func openParity(req sdk.OpenRequest) (sdk.Session, sdk.OpenResult, error) {
	cfg := parityDefaults()
	if err := req.Config.Decode(&cfg); err != nil {
		return nil, sdk.OpenResult{}, err
	}
	if cfg.Train.BatchSize < 1 {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "TRAIN.batch_size %d: must be at least 1", cfg.Train.BatchSize)
	}
	s := &paritySession{cfg: cfg, mode: req.Mode}
	// Weights arrive at Open: --pretrain for train, --weights (or the
	// newest checkpoint) for test and infer. --resume arrives as Load.
	for _, use := range []string{sdk.UsePretrain, sdk.UseWeights} {
		if dir := req.Weights[use]; dir != "" {
			if _, err := s.Load(context.Background(), dir, use); err != nil {
				return nil, sdk.OpenResult{}, err
			}
		}
	}
	return s, sdk.OpenResult{Notes: []string{fmt.Sprintf("Parity: w=%.4f b=%.4f", s.W, s.B)}}, nil
}

func feature(text string) float64 {
	if len(text)%2 == 1 {
		return 1
	}
	return -1
}

func (s *paritySession) pOdd(text string) float64 {
	return 1 / (1 + math.Exp(-(s.W*feature(text) + s.B)))
}

func (s *paritySession) list(phase string) string {
	switch phase {
	case sdk.PhaseTrain, sdk.PhaseValid:
		return s.cfg.Train.Filelist
	case sdk.PhaseTest:
		return s.cfg.Test.Filelist
	}
	return s.cfg.Infer.Filelist
}

// Run answers one pass: a train epoch, a validation, the test or the infer
// pass. A train pass skips the first req.StartStep batches unread (a
// resumed epoch) and numbers its steps from there; the data order is
// fixed, so a resumed epoch sees the batches a whole one would.
func (s *paritySession) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	lines, warns, err := (&session{list: s.list(req.Phase)}).lines(req.Phase != sdk.PhaseInfer)
	if err != nil {
		return err
	}
	bs := 1
	if req.Phase == sdk.PhaseTrain || req.Phase == sdk.PhaseValid {
		bs = s.cfg.Train.BatchSize
	}
	steps := int64((len(lines) + bs - 1) / bs)
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: steps, Samples: int64(len(lines))}}); err != nil {
		return err
	}
	for _, w := range warns {
		if err := emit(sdk.Event{Warning: &w}); err != nil {
			return err
		}
	}
	for step := req.StartStep; step < steps; step++ {
		// Between two whole steps: the host may have cancelled (Ctrl-C).
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := lines[step*int64(bs) : min(int(step+1)*bs, len(lines))]
		if req.Phase == sdk.PhaseInfer {
			for _, l := range batch {
				p := float32(s.pOdd(l.text))
				// Scores are probabilities over the labels: in [0, 1],
				// summing to 1; the host refuses anything else.
				pr := &sdk.Prediction{ID: l.text, Scores: sdk.Tensor{Shape: []int64{2}, Data: []float32{1 - p, p}}, Label: -1}
				if err := emit(sdk.Event{Prediction: pr}); err != nil {
					return err
				}
			}
			continue
		}
		var loss, top1, gw, gb float64
		for _, l := range batch {
			p, y := s.pOdd(l.text), float64(l.label)
			loss -= y*math.Log(p) + (1-y)*math.Log(1-p)
			if (p > 0.5) == (l.label == 1) {
				top1++
			}
			gw += (p - y) * feature(l.text)
			gb += p - y
		}
		n := float64(len(batch))
		lr := s.cfg.Train.LearningRate
		if req.Phase == sdk.PhaseTrain {
			s.W -= lr * gw / n
			s.B -= lr * gb / n
		}
		// Metrics are fractions; top5 is 1 with fewer than 5 classes.
		m := map[string]float64{"loss": loss / n, "top1": top1 / n, "top5": 1, "lr": lr}
		if err := emit(sdk.Event{Step: &sdk.Step{Iter: step, Samples: int64(len(batch)), Metrics: m}}); err != nil {
			return err
		}
	}
	return nil
}

const parityFile = "parity.json"

// Save writes the parameters into the directory the host made, after each
// epoch and on Ctrl-C; the host renames it into place and adds its own
// zoo_state.json. The sdk answers with the train position (StepResumer).
func (s *paritySession) Save(_ context.Context, dir string) error {
	b, _ := json.Marshal(s)
	return os.WriteFile(filepath.Join(dir, parityFile), b, 0o644)
}

// Load reads parameters a Save wrote: at Open for --pretrain and
// --weights, and as a call of its own for --resume.
func (s *paritySession) Load(_ context.Context, dir, _ string) (sdk.LoadResult, error) {
	b, err := os.ReadFile(filepath.Join(dir, parityFile))
	if err != nil {
		return sdk.LoadResult{}, sdk.Errorf(sdk.CodeNotFound, "weights %s: %v", dir, err)
	}
	if err := json.Unmarshal(b, s); err != nil {
		return sdk.LoadResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "weights %s: %s is not Parity's: %v", dir, parityFile, err)
	}
	return sdk.LoadResult{Loaded: 2}, nil
}

func (s *paritySession) Close() error { return nil }

// ResumesAtStep: Run honours StartStep and draws nothing at random.
func (s *paritySession) ResumesAtStep() {}

var _ sdk.StepResumer = (*paritySession)(nil)
