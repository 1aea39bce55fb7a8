package resnet

import (
	"fmt"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/ops"
)

// Mode selects the graph: Train uses batch statistics and dropout's mask,
// Eval (Paddle's test and infer) the running statistics and dropout's 0.5.
type Mode int

const (
	Train Mode = iota
	Eval
)

func (m Mode) String() string {
	if m == Train {
		return "train"
	}
	return "eval"
}

// Paddle's TSM constants.
const (
	DropoutProb = 0.5  // dropout before the segment mean
	BNMomentum  = 0.9  // running = 0.9*running + 0.1*batch
	BNEpsilon   = 1e-5 //
)

// Config describes a model. Zero values take Paddle TSM's defaults where
// one exists.
type Config struct {
	Depth         int  // 18, 34 (basic blocks), 50, 101, 152 (bottleneck); 0: 50
	NumClasses    int  // required
	SegNum        int  // frames per clip; 0: 8
	TemporalShift bool // true: TSM; false: TSN
	// ShiftRatio is the fraction of channels shifted each way; 0: 1/8.
	ShiftRatio float64
	// BaseWidth is the channel count of the stem and of stage 2's 3x3
	// convs (64 in every published ResNet); smaller values build narrow
	// models for demos and tests. 0: 64.
	BaseWidth int
	// BatchSize (clips per batch), Height and Width of the frames fix the
	// graph's input shape [BatchSize, SegNum, 3, Height, Width].
	BatchSize, Height, Width int
	// Dtype of parameters and activations: Float32 (default) or Float64.
	Dtype tensor.Dtype
	// NoDropout leaves out the head's dropout (TSM has it; Paddle's
	// ImageNet ResNet classifier, whose weights ResNet50_pretrained are,
	// does not).
	NoDropout bool
	// Seed seeds parameter initialisation and dropout masks.
	Seed int64

	// The conventions of weights trained outside Paddle (PyTorch TSM: MIT's
	// and mmaction2's); the zero values are Paddle's.
	//
	// ReverseShift shifts the other way: channels [0, C/8) take frame t+1
	// and [C/8, C/4) take t-1. Every op but the shift is per frame and the
	// segment mean ignores order, so a clip's frames are fed in reverse
	// order (Forward and TrainStep do it), which needs no other kernel.
	ReverseShift bool
	// InvertedDropout is PyTorch's dropout: identity at inference, kept
	// values x1/(1-p) in training (Paddle's: x(1-p) at inference).
	InvertedDropout bool
	// LogitConsensus applies the fc to every frame and averages the
	// logits (Paddle averages the features before the fc: the same up to
	// rounding, the fc being linear).
	LogitConsensus bool
}

// SmallConfig is a narrow TSM for demos and smoke tests that train in
// seconds on a laptop CPU: ResNet-18 at a quarter of the usual width (base
// 16 channels), 8 segments of 64x64 frames, one clip per batch. Its
// parameter names are Paddle's, but no published weights fit its shapes.
func SmallConfig(numClasses int) Config {
	return Config{Depth: 18, NumClasses: numClasses, SegNum: 8, TemporalShift: true,
		BaseWidth: 16, BatchSize: 1, Height: 64, Width: 64}
}

func (c Config) withDefaults() Config {
	if c.Depth == 0 {
		c.Depth = 50
	}
	if c.SegNum == 0 {
		c.SegNum = 8
	}
	if c.ShiftRatio == 0 {
		c.ShiftRatio = 1.0 / 8
	}
	if c.BaseWidth == 0 {
		c.BaseWidth = 64
	}
	if c.Dtype == (tensor.Dtype{}) {
		c.Dtype = tensor.Float32
	}
	return c
}

func (c Config) validate() error {
	if _, ok := stageDepths[c.Depth]; !ok {
		return fmt.Errorf("resnet: depth %d is not one of 18, 34, 50, 101, 152", c.Depth)
	}
	switch {
	case c.NumClasses < 1:
		return fmt.Errorf("resnet: %d classes", c.NumClasses)
	case c.SegNum < 1 || c.BatchSize < 1:
		return fmt.Errorf("resnet: seg_num %d, batch size %d", c.SegNum, c.BatchSize)
	case c.Height < 1 || c.Width < 1:
		return fmt.Errorf("resnet: frame size %dx%d", c.Height, c.Width)
	case c.ShiftRatio < 0 || c.ShiftRatio > 0.5:
		return fmt.Errorf("resnet: shift ratio %v outside [0, 0.5]", c.ShiftRatio)
	case c.BaseWidth < 1:
		return fmt.Errorf("resnet: base width %d", c.BaseWidth)
	case c.Dtype != tensor.Float32 && c.Dtype != tensor.Float64:
		return fmt.Errorf("resnet: dtype %v (want float32 or float64)", c.Dtype)
	}
	return nil
}

// InputSize returns the number of values in one input batch.
func (c Config) InputSize() int { return c.BatchSize * c.SegNum * 3 * c.Height * c.Width }

var stageDepths = map[int][]int{
	18:  {2, 2, 2, 2},
	34:  {3, 4, 6, 3},
	50:  {3, 4, 6, 3},
	101: {3, 4, 23, 3},
	152: {3, 8, 36, 3},
}

func (c Config) bottleneck() bool { return c.Depth >= 50 }

// blockName is Paddle's name of block i of stage s (0-based, stage s is
// "res{s+2}"): letters, except stage 4 of ResNet-101/152 which is
// res4a, res4b1, res4b2, ...
func (c Config) blockName(s, i int) string {
	if (c.Depth == 101 || c.Depth == 152) && s == 2 {
		if i == 0 {
			return "res4a"
		}
		return fmt.Sprintf("res4b%d", i)
	}
	return fmt.Sprintf("res%d%c", s+2, 'a'+i)
}

// BLAS describes the matrix-multiply backend the model's kernels use
// ("gonum (go)", "openblas (Haswell)"), for benchmark reports.
func BLAS() string { return ops.BLAS() }
