package tsm

import (
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/video"
)

// Config is Paddle's configs/tsm.txt as typed sections, plus zoo's keys:
// MODEL.temporal_shift, MODEL.base_width, INFER.video_path and the
// [SYNTHETIC] section of the built-in dataset.
type Config struct {
	Model     ModelConfig     `mapstructure:"MODEL"`
	Train     TrainConfig     `mapstructure:"TRAIN"`
	Valid     ReaderConfig    `mapstructure:"VALID"`
	Test      ReaderConfig    `mapstructure:"TEST"`
	Infer     InferConfig     `mapstructure:"INFER"`
	Synthetic SyntheticConfig `mapstructure:"SYNTHETIC"`
}

type ModelConfig struct {
	Name          string    `mapstructure:"name"`
	Format        string    `mapstructure:"format" help:"accepted for Paddle compatibility; each list line's extension decides (.pkl or a video)"`
	NumClasses    int       `mapstructure:"num_classes"`
	SegNum        int       `mapstructure:"seg_num" help:"segments (frames) per clip"`
	SegLen        int       `mapstructure:"seglen" help:"consecutive frames per segment"`
	ImageMean     []float64 `mapstructure:"image_mean"`
	ImageStd      []float64 `mapstructure:"image_std"`
	NumLayers     int       `mapstructure:"num_layers" help:"ResNet depth: 18, 34, 50, 101 or 152"`
	TopK          int       `mapstructure:"topk"`
	TemporalShift bool      `mapstructure:"temporal_shift" help:"False builds TSN, the same network without the shift"`
	BaseWidth     int       `mapstructure:"base_width" help:"channels of the stem (64 in every published ResNet)"`
	// The conventions of weights trained outside Paddle (docs/tsm.md,
	// "Using PyTorch TSM weights"); "auto" takes the weights'.
	ShiftDirection string `mapstructure:"shift_direction" help:"paddle (channels [0,C/8) take frame t-1), pytorch (they take t+1: MIT, mmaction2) or auto (the weights': paddle unless they are PyTorch's)"`
	InferDropout   string `mapstructure:"infer_dropout" help:"scale (Paddle: x0.5 at inference), identity (PyTorch's inverted dropout) or auto (the weights')"`
	Consensus      string `mapstructure:"consensus" help:"features (Paddle: segment mean before the fc), logits (PyTorch: after it) or auto (the weights')"`
	Precision      string `mapstructure:"precision" help:"fp32, or bf16: the convolutions (inference, and training forward and backward) in bfloat16 with fp32 accumulation; weights, optimizer, batch norm and checkpoints stay fp32 (CPU with AVX512_BF16, zoo built with oneDNN)"`
}

// ReaderConfig is what [VALID] and [TEST] hold.
type ReaderConfig struct {
	ShortSize        int    `mapstructure:"short_size" help:"group_scale's short side"`
	TargetSize       int    `mapstructure:"target_size" help:"crop size fed to the network"`
	NumReaderThreads int    `mapstructure:"num_reader_threads" help:"video decoding workers (capped at the CPU count)"`
	BufSize          int    `mapstructure:"buf_size" help:"clips read ahead (capped to bound memory)"`
	BatchSize        int    `mapstructure:"batch_size"`
	Filelist         string `mapstructure:"filelist" help:"\"path label\" list; empty: the built-in synthetic dataset"`
	// Multi-view testing, [TEST] and [INFER] only (docs/tsm.md; Schema).
	NumClips int `mapstructure:"num_clips" help:"clips per video, spread over each segment; their probabilities are averaged (1: Paddle's one clip)"`
	NumCrops int `mapstructure:"num_crops" help:"1: the centre crop (Paddle's); 3: start, centre and end of the long side"`
}

// views is the number of views per video of an evaluation section.
func (rc ReaderConfig) views() int { return max(rc.NumClips, 1) * max(rc.NumCrops, 1) }

type TrainConfig struct {
	ReaderConfig      `mapstructure:",squash"`
	Epoch             int     `mapstructure:"epoch"`
	NumGPUs           int     `mapstructure:"num_gpus"`
	LearningRate      float64 `mapstructure:"learning_rate"`
	LearningRateDecay float64 `mapstructure:"learning_rate_decay"`
	DecayEpochs       []int   `mapstructure:"decay_epochs"`
	L2WeightDecay     float64 `mapstructure:"l2_weight_decay"`
	Momentum          float64 `mapstructure:"momentum"`
	TotalVideos       int     `mapstructure:"total_videos" help:"videos per epoch, for the learning-rate boundaries"`
	MicroBatches      int     `mapstructure:"micro_batches" help:"parts each rank computes a batch in, batch-norm statistics per part, gradients averaged, one update (docs/distributed.md)"`
}

type InferConfig struct {
	ReaderConfig   `mapstructure:",squash"`
	VideoPath      string `mapstructure:"video_path" help:"one video, or a directory of videos, to infer instead of the filelist"`
	KineticsLabels string `mapstructure:"kinetics_labels" help:"accepted for Paddle compatibility; labels are built in"`
}

// SyntheticConfig sizes the built-in dataset (used when a filelist is empty).
type SyntheticConfig struct {
	TrainVideos int     `mapstructure:"train_videos"`
	ValidVideos int     `mapstructure:"valid_videos"`
	TestVideos  int     `mapstructure:"test_videos"`
	InferVideos int     `mapstructure:"infer_videos"`
	Noise       float64 `mapstructure:"noise" help:"pixel noise of the synthetic frames"`
}

// defaults is Paddle's configs/tsm.txt (and zoo's keys at their
// published values): the key defaults a user's config may leave out.
func defaults() Config {
	reader := func(batch int) ReaderConfig {
		return ReaderConfig{ShortSize: 256, TargetSize: 224, NumReaderThreads: 12, BufSize: 1024, BatchSize: batch, NumClips: 1, NumCrops: 1}
	}
	return Config{
		Model: ModelConfig{
			Name: "TSM", Format: "pkl", NumClasses: 400, SegNum: 8, SegLen: 1,
			ImageMean: []float64{0.485, 0.456, 0.406}, ImageStd: []float64{0.229, 0.224, 0.225},
			NumLayers: 50, TopK: 5, TemporalShift: true, BaseWidth: 64,
			ShiftDirection: "auto", InferDropout: "auto", Consensus: "auto", Precision: "fp32",
		},
		Train: TrainConfig{
			ReaderConfig: reader(128), Epoch: 65, NumGPUs: 8, LearningRate: 0.01, LearningRateDecay: 0.1,
			DecayEpochs: []int{40, 60}, L2WeightDecay: 1e-4, Momentum: 0.9, TotalVideos: 239781, MicroBatches: 1,
		},
		Valid:     reader(128),
		Test:      reader(16),
		Infer:     InferConfig{ReaderConfig: reader(1)},
		Synthetic: SyntheticConfig{TrainVideos: 1024, ValidVideos: 256, TestVideos: 256, InferVideos: 8, Noise: 0.3},
	}
}

// Schema lists every key the plugin accepts, derived from Config's tags
// with defaults() as the defaults, so that a user's config may leave keys
// out. The multi-view keys live in the shared ReaderConfig but are keys of
// [TEST] and [INFER] only.
func Schema() ([]sdk.ConfigKey, error) {
	ks, err := sdk.SchemaOf(defaults())
	if err != nil {
		return nil, err
	}
	out := ks[:0]
	for _, k := range ks {
		if (k.Name == "num_clips" || k.Name == "num_crops") && (k.Section == "TRAIN" || k.Section == "VALID") {
			continue
		}
		out = append(out, k)
	}
	return out, nil
}

// DefaultJob is the built-in job `zoo run TSM train` runs with no config: a
// narrow TSM-ResNet-18 on 32x32 synthetic clips, small enough for a 2-core
// CPU in a few minutes. docs/tsm.md explains the numbers.
func DefaultJob() sdk.Config {
	reader := func(batch int) map[string]any {
		return map[string]any{"short_size": 32, "target_size": 32, "batch_size": batch, "filelist": "", "num_reader_threads": 1, "buf_size": 64}
	}
	train := reader(16)
	train["epoch"] = 3
	train["learning_rate"] = 0.02
	train["decay_epochs"] = []int{2}
	train["total_videos"] = 512
	return sdk.Config{
		"MODEL":     {"num_classes": len(synthClasses), "num_layers": 18, "base_width": 16, "seg_num": 8},
		"TRAIN":     train,
		"VALID":     reader(16),
		"TEST":      reader(16),
		"INFER":     reader(4),
		"SYNTHETIC": {"train_videos": 512},
	}
}

// decode turns the host's config (already validated against Schema and
// merged over its defaults) into Config.
func decode(c sdk.Config) (Config, error) {
	var out Config
	if err := c.Decode(&out); err != nil {
		return out, err
	}
	m := out.Model
	switch {
	case m.NumClasses < 1:
		return out, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.num_classes %d: must be at least 1", m.NumClasses)
	case m.SegNum < 1 || m.SegLen < 1:
		return out, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.seg_num %d and MODEL.seglen %d must be at least 1", m.SegNum, m.SegLen)
	case m.SegLen != 1:
		return out, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.seglen %d: TSM takes one frame per segment (seglen 1)", m.SegLen)
	case len(m.ImageMean) != 3 || len(m.ImageStd) != 3:
		return out, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.image_mean and image_std need 3 values each (RGB)")
	}
	return out, classifier.CheckDepth(m.NumLayers)
}

// validate checks, before Open allocates anything, that the config can
// run in mode from the first step to the last (classifier.CheckSections)
// and that the network fits in memory. Without it these mistakes surfaced
// after an epoch, as a panic (target_size 1 on the built-in dataset), as a
// training run that took no step, or as the Go runtime's out-of-memory
// crash.
func (c Config) validate(mode string) error {
	sec := func(name string, rc ReaderConfig, clips int) classifier.Section {
		return classifier.Section{Name: name, ShortSize: rc.ShortSize, TargetSize: rc.TargetSize, BatchSize: rc.BatchSize, Filelist: rc.Filelist, Synthetic: clips}
	}
	var secs []classifier.Section
	views := 1
	switch mode {
	case sdk.ModeTrain:
		secs = []classifier.Section{sec("TRAIN", c.Train.ReaderConfig, c.Synthetic.TrainVideos), sec("VALID", c.Valid, c.Synthetic.ValidVideos)}
	case sdk.ModeTest:
		secs, views = []classifier.Section{sec("TEST", c.Test, c.Synthetic.TestVideos)}, c.Test.views()
	case sdk.ModeInfer:
		secs, views = []classifier.Section{sec("INFER", c.Infer.ReaderConfig, c.Synthetic.InferVideos)}, c.Infer.views()
	default:
		return sdk.Errorf(sdk.CodeInvalidArgument, "unknown mode %q", mode)
	}
	for _, k := range []struct{ name, v, a, b string }{
		{"shift_direction", c.Model.ShiftDirection, "paddle", "pytorch"},
		{"infer_dropout", c.Model.InferDropout, "scale", "identity"},
		{"consensus", c.Model.Consensus, "features", "logits"},
	} {
		if k.v != "auto" && k.v != k.a && k.v != k.b {
			return sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.%s %q: must be %s, %s or auto", k.name, k.v, k.a, k.b)
		}
	}
	if p := c.Model.Precision; p != "fp32" && p != "bf16" {
		return sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.precision %q: must be fp32 or bf16", p)
	}
	for _, v := range []struct {
		sec string
		rc  ReaderConfig
	}{{"TEST", c.Test}, {"INFER", c.Infer.ReaderConfig}} {
		if v.rc.NumClips < 1 || v.rc.NumClips > video.MaxClips {
			return sdk.Errorf(sdk.CodeInvalidArgument, "%s.num_clips %d: must be in [1, %d]", v.sec, v.rc.NumClips, video.MaxClips)
		}
		if v.rc.NumCrops != 1 && v.rc.NumCrops != 3 {
			return sdk.Errorf(sdk.CodeInvalidArgument, "%s.num_crops %d: must be 1 or 3", v.sec, v.rc.NumCrops)
		}
	}
	if c.Model.BaseWidth < 1 {
		return sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.base_width %d: must be at least 1", c.Model.BaseWidth)
	}
	for i, v := range c.Model.ImageStd {
		if v == 0 {
			return sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.image_std[%d] is 0: frames are divided by it", i)
		}
	}
	// The built-in dataset draws its bar in the top half of a frame: at
	// least one row there.
	data := classifier.Data{Kind: "video", Exts: video.VideoExts, MinSize: 2, PathKey: "video_path", Path: c.Infer.VideoPath}
	if err := classifier.CheckSections(secs, data, c.Model.NumClasses); err != nil {
		return err
	}
	return classifier.CheckMemory(resnet.Config{
		Depth: c.Model.NumLayers, NumClasses: c.Model.NumClasses, SegNum: c.Model.SegNum, BaseWidth: c.Model.BaseWidth,
		BatchSize: secs[0].BatchSize * views, Height: secs[0].TargetSize, Width: secs[0].TargetSize,
	}, mode == sdk.ModeTrain, secs[0].Name)
}
