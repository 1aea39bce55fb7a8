package resnet

import (
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
)

// Config is the ResNet plugin's configuration: Paddle's image
// classification flags as sections, in the layout of configs/tsm.txt.
type Config struct {
	Model     ModelConfig     `mapstructure:"MODEL"`
	Train     TrainConfig     `mapstructure:"TRAIN"`
	Valid     ReaderConfig    `mapstructure:"VALID"`
	Test      ReaderConfig    `mapstructure:"TEST"`
	Infer     InferConfig     `mapstructure:"INFER"`
	Synthetic SyntheticConfig `mapstructure:"SYNTHETIC"`
}

type ModelConfig struct {
	Name       string    `mapstructure:"name"`
	NumClasses int       `mapstructure:"num_classes"`
	NumLayers  int       `mapstructure:"num_layers" help:"ResNet depth: 18, 34, 50, 101 or 152"`
	BaseWidth  int       `mapstructure:"base_width" help:"channels of the stem (64 in every published ResNet)"`
	ImageMean  []float64 `mapstructure:"image_mean"`
	ImageStd   []float64 `mapstructure:"image_std"`
	TopK       int       `mapstructure:"topk"`
}

// ReaderConfig is what [TRAIN], [VALID], [TEST] and [INFER] share.
type ReaderConfig struct {
	ShortSize        int    `mapstructure:"short_size" help:"evaluation resizes the short side to this"`
	TargetSize       int    `mapstructure:"target_size" help:"crop size fed to the network"`
	NumReaderThreads int    `mapstructure:"num_reader_threads" help:"image decoding workers (capped at the CPU count)"`
	BatchSize        int    `mapstructure:"batch_size"`
	Filelist         string `mapstructure:"filelist" help:"\"path label\" list of JPEG/PNG files; empty: the built-in synthetic dataset"`
}

type TrainConfig struct {
	ReaderConfig      `mapstructure:",squash"`
	Epoch             int     `mapstructure:"epoch"`
	LearningRate      float64 `mapstructure:"learning_rate"`
	LearningRateDecay float64 `mapstructure:"learning_rate_decay"`
	DecayEpochs       []int   `mapstructure:"decay_epochs"`
	L2WeightDecay     float64 `mapstructure:"l2_weight_decay"`
	Momentum          float64 `mapstructure:"momentum"`
	TotalImages       int     `mapstructure:"total_images" help:"images per epoch, for the learning-rate boundaries"`
	MicroBatches      int     `mapstructure:"micro_batches" help:"parts each rank computes a batch in, batch-norm statistics per part, gradients averaged, one update (docs/distributed.md)"`
}

type InferConfig struct {
	ReaderConfig `mapstructure:",squash"`
	ImagePath    string `mapstructure:"image_path" help:"one image, or a directory of images, to infer instead of the filelist"`
}

// SyntheticConfig sizes the built-in dataset (used when a filelist is empty).
type SyntheticConfig struct {
	TrainImages int     `mapstructure:"train_images"`
	ValidImages int     `mapstructure:"valid_images"`
	TestImages  int     `mapstructure:"test_images"`
	InferImages int     `mapstructure:"infer_images"`
	Noise       float64 `mapstructure:"noise" help:"pixel noise of the synthetic images"`
}

// defaults are Paddle's ImageNet ResNet-50 values (PaddleCV
// image_classification: batch 256, lr 0.1 piecewise at epochs 30/60/90,
// L2 1e-4, momentum 0.9): the key defaults a user's config may leave out.
func defaults() Config {
	reader := func(batch int) ReaderConfig {
		return ReaderConfig{ShortSize: 256, TargetSize: 224, NumReaderThreads: 4, BatchSize: batch}
	}
	return Config{
		Model: ModelConfig{
			Name: "ResNet", NumClasses: 1000, NumLayers: 50, BaseWidth: 64,
			ImageMean: []float64{0.485, 0.456, 0.406}, ImageStd: []float64{0.229, 0.224, 0.225}, TopK: 5,
		},
		Train: TrainConfig{
			ReaderConfig: reader(256), Epoch: 120, LearningRate: 0.1, LearningRateDecay: 0.1,
			DecayEpochs: []int{30, 60, 90}, L2WeightDecay: 1e-4, Momentum: 0.9, TotalImages: 1281167, MicroBatches: 1,
		},
		Valid:     reader(64),
		Test:      reader(16),
		Infer:     InferConfig{ReaderConfig: reader(1)},
		Synthetic: SyntheticConfig{TrainImages: 1024, ValidImages: 256, TestImages: 256, InferImages: 8, Noise: 0.5},
	}
}

// Schema lists every key the plugin accepts, derived from Config's tags
// with defaults() as the defaults.
func Schema() ([]sdk.ConfigKey, error) { return sdk.SchemaOf(defaults()) }

// DefaultJob is the built-in job `zoo run ResNet train` runs with no
// config: a narrow ResNet-18 (8-channel stem) on 32x32 synthetic images,
// about a minute on a 2-core CPU.
func DefaultJob() sdk.Config {
	reader := func(batch int) map[string]any {
		return map[string]any{"short_size": 32, "target_size": 32, "batch_size": batch, "filelist": "", "num_reader_threads": 1}
	}
	train := reader(32)
	train["epoch"] = 3
	train["learning_rate"] = 0.05
	train["decay_epochs"] = []int{2}
	train["total_images"] = 1024
	return sdk.Config{
		"MODEL":     {"num_classes": len(synthClasses), "num_layers": 18, "base_width": 8},
		"TRAIN":     train,
		"VALID":     reader(32),
		"TEST":      reader(32),
		"INFER":     reader(4),
		"SYNTHETIC": {"train_images": 1024},
	}
}

// decode turns the host's config (validated against Schema and merged over
// its defaults) into Config.
func decode(c sdk.Config) (Config, error) {
	var out Config
	if err := c.Decode(&out); err != nil {
		return out, err
	}
	m := out.Model
	switch {
	case m.NumClasses < 1:
		return out, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.num_classes %d: must be at least 1", m.NumClasses)
	case len(m.ImageMean) != 3 || len(m.ImageStd) != 3:
		return out, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.image_mean and image_std need 3 values each (RGB)")
	}
	return out, classifier.CheckDepth(m.NumLayers)
}

// validate checks, before Open allocates anything, that the config can
// run in mode from the first step to the last (classifier.CheckSections)
// and that the network fits in memory.
func (c Config) validate(mode string) error {
	sec := func(name string, rc ReaderConfig, images int) classifier.Section {
		return classifier.Section{Name: name, ShortSize: rc.ShortSize, TargetSize: rc.TargetSize, BatchSize: rc.BatchSize, Filelist: rc.Filelist, Synthetic: images}
	}
	var secs []classifier.Section
	switch mode {
	case sdk.ModeTrain:
		secs = []classifier.Section{sec("TRAIN", c.Train.ReaderConfig, c.Synthetic.TrainImages), sec("VALID", c.Valid, c.Synthetic.ValidImages)}
	case sdk.ModeTest:
		secs = []classifier.Section{sec("TEST", c.Test, c.Synthetic.TestImages)}
	case sdk.ModeInfer:
		secs = []classifier.Section{sec("INFER", c.Infer.ReaderConfig, c.Synthetic.InferImages)}
	default:
		return sdk.Errorf(sdk.CodeInvalidArgument, "unknown mode %q", mode)
	}
	if c.Model.BaseWidth < 1 {
		return sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.base_width %d: must be at least 1", c.Model.BaseWidth)
	}
	for i, v := range c.Model.ImageStd {
		if v == 0 {
			return sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.image_std[%d] is 0: images are divided by it", i)
		}
	}
	data := classifier.Data{Kind: "image", Exts: imageExts, MinSize: 1, PathKey: "image_path", Path: c.Infer.ImagePath}
	if err := classifier.CheckSections(secs, data, c.Model.NumClasses); err != nil {
		return err
	}
	return classifier.CheckMemory(resnet.Config{
		Depth: c.Model.NumLayers, NumClasses: c.Model.NumClasses, SegNum: 1, BaseWidth: c.Model.BaseWidth,
		BatchSize: secs[0].BatchSize, Height: secs[0].TargetSize, Width: secs[0].TargetSize,
	}, mode == sdk.ModeTrain, secs[0].Name)
}
