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
	NumLayers  int       `mapstructure:"num_layers"`
	BaseWidth  int       `mapstructure:"base_width"`
	ImageMean  []float64 `mapstructure:"image_mean"`
	ImageStd   []float64 `mapstructure:"image_std"`
	TopK       int       `mapstructure:"topk"`
}

// ReaderConfig is what [TRAIN], [VALID], [TEST] and [INFER] share.
type ReaderConfig struct {
	ShortSize        int    `mapstructure:"short_size"`
	TargetSize       int    `mapstructure:"target_size"`
	NumReaderThreads int    `mapstructure:"num_reader_threads"`
	BatchSize        int    `mapstructure:"batch_size"`
	Filelist         string `mapstructure:"filelist"`
	UseGPU           bool   `mapstructure:"use_gpu"`
}

type TrainConfig struct {
	ReaderConfig      `mapstructure:",squash"`
	Epoch             int     `mapstructure:"epoch"`
	LearningRate      float64 `mapstructure:"learning_rate"`
	LearningRateDecay float64 `mapstructure:"learning_rate_decay"`
	DecayEpochs       []int   `mapstructure:"decay_epochs"`
	L2WeightDecay     float64 `mapstructure:"l2_weight_decay"`
	Momentum          float64 `mapstructure:"momentum"`
	TotalImages       int     `mapstructure:"total_images"`
}

type InferConfig struct {
	ReaderConfig `mapstructure:",squash"`
	ImagePath    string `mapstructure:"image_path"`
}

// SyntheticConfig sizes the built-in dataset (used when a filelist is empty).
type SyntheticConfig struct {
	TrainImages int     `mapstructure:"train_images"`
	ValidImages int     `mapstructure:"valid_images"`
	TestImages  int     `mapstructure:"test_images"`
	InferImages int     `mapstructure:"infer_images"`
	Noise       float64 `mapstructure:"noise"`
}

type key = sdk.ConfigKey

func readerKeys(section string, batch int) []key {
	return []key{
		{Section: section, Name: "short_size", Type: "int", Default: 256, Help: "evaluation resizes the short side to this"},
		{Section: section, Name: "target_size", Type: "int", Default: 224, Help: "crop size fed to the network"},
		{Section: section, Name: "num_reader_threads", Type: "int", Default: 4, Help: "image decoding workers (capped at the CPU count)"},
		{Section: section, Name: "batch_size", Type: "int", Default: batch},
		{Section: section, Name: "filelist", Type: "string", Default: "", Help: `"path label" list of JPEG/PNG files; empty: the built-in synthetic dataset`},
		{Section: section, Name: "use_gpu", Type: "bool", Default: false},
	}
}

// Schema lists every key the plugin accepts, with the defaults of Paddle's
// ImageNet ResNet-50 (PaddleCV image_classification: batch 256, lr 0.1
// piecewise at epochs 30/60/90, L2 1e-4, momentum 0.9).
func Schema() []sdk.ConfigKey {
	ks := []key{
		{Section: "MODEL", Name: "name", Type: "string", Default: "ResNet"},
		{Section: "MODEL", Name: "num_classes", Type: "int", Default: 1000},
		{Section: "MODEL", Name: "num_layers", Type: "int", Default: 50, Help: "ResNet depth: 18, 34, 50, 101 or 152"},
		{Section: "MODEL", Name: "base_width", Type: "int", Default: 64, Help: "channels of the stem (64 in every published ResNet)"},
		{Section: "MODEL", Name: "image_mean", Type: "[]float", Default: []float64{0.485, 0.456, 0.406}},
		{Section: "MODEL", Name: "image_std", Type: "[]float", Default: []float64{0.229, 0.224, 0.225}},
		{Section: "MODEL", Name: "topk", Type: "int", Default: 5},
	}
	ks = append(ks, readerKeys("TRAIN", 256)...)
	ks = append(ks,
		key{Section: "TRAIN", Name: "epoch", Type: "int", Default: 120},
		key{Section: "TRAIN", Name: "learning_rate", Type: "float", Default: 0.1},
		key{Section: "TRAIN", Name: "learning_rate_decay", Type: "float", Default: 0.1},
		key{Section: "TRAIN", Name: "decay_epochs", Type: "[]int", Default: []int{30, 60, 90}},
		key{Section: "TRAIN", Name: "l2_weight_decay", Type: "float", Default: 1e-4},
		key{Section: "TRAIN", Name: "momentum", Type: "float", Default: 0.9},
		key{Section: "TRAIN", Name: "total_images", Type: "int", Default: 1281167, Help: "images per epoch, for the learning-rate boundaries"},
	)
	ks = append(ks, readerKeys("VALID", 64)...)
	ks = append(ks, readerKeys("TEST", 16)...)
	ks = append(ks, readerKeys("INFER", 1)...)
	ks = append(ks,
		key{Section: "INFER", Name: "image_path", Type: "string", Default: "", Help: "one image, or a directory of images, to infer instead of the filelist"},
		key{Section: "SYNTHETIC", Name: "train_images", Type: "int", Default: 1024},
		key{Section: "SYNTHETIC", Name: "valid_images", Type: "int", Default: 256},
		key{Section: "SYNTHETIC", Name: "test_images", Type: "int", Default: 256},
		key{Section: "SYNTHETIC", Name: "infer_images", Type: "int", Default: 8},
		key{Section: "SYNTHETIC", Name: "noise", Type: "float", Default: 0.5, Help: "pixel noise of the synthetic images"},
	)
	return ks
}

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

func (c ReaderConfig) check(section string) error {
	switch {
	case c.BatchSize < 1:
		return sdk.Errorf(sdk.CodeInvalidArgument, "%s.batch_size %d: must be at least 1", section, c.BatchSize)
	case c.TargetSize < 1 || c.ShortSize < c.TargetSize:
		return sdk.Errorf(sdk.CodeInvalidArgument, "%s.target_size %d must be positive and at most short_size %d", section, c.TargetSize, c.ShortSize)
	}
	return nil
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
