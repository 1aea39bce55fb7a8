package sdk

import (
	"context"
	"fmt"
)

// Modes a session is opened in, and phases a Run executes.
const (
	ModeTrain = "train"
	ModeTest  = "test"
	ModeInfer = "infer"

	PhaseTrain = "train"
	PhaseValid = "valid"
	PhaseTest  = "test"
	PhaseInfer = "infer"
)

// Uses of a weight set and kinds of Load.
const (
	UsePretrain = "pretrain" // initialises a backbone before training
	UseWeights  = "weights"  // a trained model for test, infer, fine-tuning
	LoadResume  = "resume"   // a zoo checkpoint: parameters and optimizer state
)

// Config is a decoded configuration: SECTION -> key -> value, with values as
// JSON decodes them (float64, bool, string, []any).
type Config map[string]map[string]any

// ModelInfo describes one model a plugin serves.
type ModelInfo struct {
	Name        string
	Version     string
	Description string
	Tasks       []string
	Config      []ConfigKey
	// DefaultConfig is the built-in job, used when the user gives no config.
	DefaultConfig Config
	WeightSets    []WeightSet
	Labels        []string
}

// HasTask reports whether the model supports the mode.
func (m ModelInfo) HasTask(mode string) bool {
	for _, t := range m.Tasks {
		if t == mode {
			return true
		}
	}
	return false
}

// ConfigKey declares one configuration key and its default.
type ConfigKey struct {
	Section string // upper case
	Name    string // lower case
	Type    string // int, float, bool, string, []int, []float, []string
	Default any
	Help    string
}

// WeightSet is a published parameter archive a model can use.
type WeightSet struct {
	Name        string
	URL         string
	Dir         string
	SHA256      string
	Use         string // UsePretrain or UseWeights
	Required    []string
	Description string
	// Tensors is every variable the model reads from the set, with its
	// dtype and shape; the host checks an archive against all of them
	// (protocol minor 2; Required alone before).
	Tensors []TensorSpec
}

// TensorSpec is one variable a weight set must hold.
type TensorSpec struct {
	Name  string
	DType string // Paddle's name: "FP32", "FP16", "INT64", ...
	Shape []int64
}

// OpenRequest starts a session.
type OpenRequest struct {
	Model     string
	Mode      string
	Config    Config
	Weights   map[string]string // UsePretrain / UseWeights -> directory
	SaveDir   string
	Device    string // "cpu" or "gpu"
	Rank      int
	WorldSize int
	Seed      int64
	// HostVersion is zoo's version (`zoo --version`), which a data-parallel
	// job's ranks compare (minor 5); empty from an older host.
	HostVersion string
}

// OpenResult is what a plugin says about a session it opened.
type OpenResult struct {
	Notes []string
	// Labels replaces ModelInfo.Labels for this session when not empty.
	Labels []string
	// Epochs is how many epochs a train session trains, from its config
	// (Paddle's TRAIN.epoch): the host runs that many (minor 3). 0: not said;
	// the host reads a TRAIN.epoch key, else trains one epoch.
	Epochs int
}

// RunRequest asks for one pass of a phase.
type RunRequest struct {
	Phase string
	Epoch int
	// GlobalStep counts the training steps done before this pass's first
	// step (the skipped StartStep ones included): the learning-rate
	// schedule's position.
	GlobalStep int64
	MaxSteps   int64 // 0: the whole pass
	// StartStep resumes a train pass inside its epoch: skip the epoch's
	// first StartStep batches without reading them and number the steps
	// from StartStep. The host sends it only to a StepResumer.
	StartStep int64
}

// Event is one message of a Run stream; exactly one field is set.
type Event struct {
	Start      *Start
	Step       *Step
	Prediction *Prediction
	Warning    *Warning
}

// Start opens a pass; -1 means unknown.
type Start struct {
	Steps   int64
	Samples int64
}

// Step reports one step's metrics: "loss", "top1", "top5" (fractions) and
// "lr" by convention.
type Step struct {
	Iter    int64
	Samples int64
	Metrics map[string]float64
}

// Prediction is one sample's class scores.
type Prediction struct {
	ID     string
	Scores Tensor
	Label  int // -1 when unknown
}

// Warning is a problem the pass survived, such as a video that failed to decode.
type Warning struct {
	Message string
	Path    string
}

// Tensor is a dense float32 tensor in row-major order.
type Tensor struct {
	Shape []int64
	Data  []float32
}

// Validate checks that the shape is non-negative and matches the data.
func (t Tensor) Validate() error {
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("tensor shape %v has a negative dimension", t.Shape)
		}
		n *= d
		if n > int64(MaxMessageBytes) {
			return fmt.Errorf("tensor shape %v is too large", t.Shape)
		}
	}
	if n != int64(len(t.Data)) {
		return fmt.Errorf("tensor shape %v holds %d values, got %d", t.Shape, n, len(t.Data))
	}
	return nil
}

// SaveResult is what a Save reports besides the files it wrote.
type SaveResult struct {
	// Position is where training stood (nil: not reported, from a session
	// that is no StepResumer or has run no train pass).
	Position *TrainPosition
	// RecentSteps are the Step events of the last train steps (at most
	// MaxRecentSteps, oldest first), for the host to account for the ones
	// it had not read when an interrupt ended the stream.
	RecentSteps []Step
}

// TrainPosition is how far the last train pass got: Steps steps of epoch
// Epoch were done (counting the pass's StartStep).
type TrainPosition struct {
	Epoch int
	Steps int64
}

// LoadResult counts what a Load read.
type LoadResult struct {
	Loaded  int
	Ignored int
}

// Provider is what a plugin implements: the models it serves and a way to
// open a session on one of them.
type Provider interface {
	Models(ctx context.Context) ([]ModelInfo, error)
	Open(ctx context.Context, req OpenRequest) (Session, OpenResult, error)
}

// Session is one opened model. Run is called for every pass; the host owns
// the loop around it. Run must check ctx between steps and return ctx.Err()
// with the model in a consistent state, so that the host can Save after an
// interrupt.
type Session interface {
	Run(ctx context.Context, req RunRequest, emit func(Event) error) error
	Save(ctx context.Context, dir string) error
	Load(ctx context.Context, dir, kind string) (LoadResult, error)
	Close() error
}

// Inferer is an optional capability of a Session: run the model on a tensor
// the host sends.
type Inferer interface {
	Infer(ctx context.Context, in Tensor) (Tensor, error)
}

// Decoded is one file as a session's infer reader reads it (protocol
// minor 4): the model's input, not yet run.
type Decoded struct {
	// Input is [views, ...one clip's Infer input]: the file's views
	// (num_clips x num_crops; 1 for one centre crop). The host runs them
	// through Infer and averages the views' probabilities.
	Input Tensor
	// Frames are the indices of the frames the reader sampled (0-based,
	// in decode order), segment after segment, clip after clip.
	Frames []int64
	// Mean and Std are the normalisation Input went through, per RGB
	// channel: value = (pixel/255 - Mean) / Std.
	Mean, Std []float32
}

// FileDecoder is an optional capability of a Session that also implements
// Inferer: read a file with the session's infer reader without running
// the model, so that the host decodes uploads while Infer runs. The sdk
// calls Decode without waiting for the session's other calls, so it may
// run concurrently with Infer, Run and other Decodes: it must only read
// state that Open set.
type FileDecoder interface {
	Decode(ctx context.Context, path string) (Decoded, error)
}
