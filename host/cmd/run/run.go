// Package run implements `zoo run MODEL train|test|infer`: it builds the
// config from the model's schema, a config file, flags and --set, resolves
// weights, starts the plugin and hands the session to the driver.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/config"
	"github.com/zoo-ml/zoo/host/driver"
	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/internal/launcher"
	"github.com/zoo-ml/zoo/registry"
	"github.com/zoo-ml/zoo/sdk"
)

// PretrainNone is the --pretrain value that trains from freshly
// initialised weights, fetching nothing.
const PretrainNone = "none"

// Options are `zoo run`'s inputs, spelt as Paddle's scripts spell them.
type Options struct {
	F     *cmdutil.Factory
	Model string
	Mode  string

	Config        string
	SaveDir       string
	LogInterval   int
	ValidInterval int
	Pretrain      string
	Resume        string
	Weights       string
	Filelist      string
	VideoPath     string
	ImagePath     string
	BatchSize     int
	LearningRate  float64
	Epoch         int
	UseGPU        bool
	InferTopK     int
	Set           []string
	Seed          int64
	Shard         string // test/infer: "I/N", the I-th of N disjoint parts of the list

	// hostVersion is `zoo --version` (the root command's), sent in Open:
	// a data-parallel job's ranks compare it.
	hostVersion string

	// changed records which of the Paddle override flags were given.
	changed map[string]bool
	// fits, when set, checks a published set against the configured
	// network before ResolveWeights downloads it.
	fits fitCheck
}

// NewCmdRun returns the command; runF replaces runRun in tests.
func NewCmdRun(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "run MODEL train|test|infer",
		Short: "Train, test or run inference with a model",
		Long: `run drives a model through Paddle's train, test or infer job.

With no --config and no data the model runs its built-in default job (for
TSM: a synthetic video dataset where only temporal order tells the classes
apart), and test and infer then use the newest complete checkpoint of the
latest train run in --save_dir (one zoo run at a time holds a --save_dir).
Given data (--filelist, --video_path, --image_path) and no --config, the
model's published configuration (its key defaults: for TSM, Paddle's
tsm.txt) and published weights are used instead, as Paddle's scripts do:
a checkpoint of the built-in job never classifies real videos.
With --config (Paddle's INI configs/*.txt or the same keys as YAML), test
and infer without --weights use the model's published weights, and train
without --pretrain or --resume starts from its published pretrained weights
(for TSM: ResNet50_pretrained), each fetched into the weights store when
absent (see zoo weights --help; ZOO_OFFLINE=1 never touches the network);
--pretrain none trains from freshly initialised weights.`,
		Example: `  zoo run TSM train
  zoo run TSM test
  zoo run TSM infer --infer_topk 5
  zoo run TSM train --config configs/tsm.txt --pretrain ~/.paddle/weights/ResNet50_pretrained
  zoo run TSM train --config small.txt --filelist lists/all_train.list --pretrain none
  zoo run TSM test --config configs/tsm.txt --weights checkpoints/TSM_epoch64 --filelist val.list
  zoo run TSM infer --config configs/tsm.txt --video_path video.mp4
  zoo run ResNet infer --weights DIR --image_path photos/
  zoo run TSM train --set MODEL.temporal_shift=False`,
		Args: cmdutil.ExactArgs(2, "run needs a model and a mode, e.g. `zoo run TSM train`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Model, opts.Mode = args[0], strings.ToLower(args[1])
			opts.hostVersion = cmd.Root().Version
			if err := opts.validate(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runRun(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Config, "config", "", "Paddle INI (.txt) or YAML config; default: the model's built-in job")
	fl.StringVar(&opts.SaveDir, "save-dir", "checkpoints", "where checkpoints, metrics and results are written")
	fl.IntVar(&opts.LogInterval, "log-interval", 10, "log every N iterations")
	fl.IntVar(&opts.ValidInterval, "valid-interval", 1, "validate every N epochs (0: never)")
	fl.StringVar(&opts.Pretrain, "pretrain", "", "train: initialise from these weights (a directory, a .pdparams or a PyTorch .pth), all but the classifier (fc_0.*); none: from fresh weights")
	fl.StringVar(&opts.Resume, "resume", "", "train: continue from a checkpoint directory zoo saved")
	fl.StringVar(&opts.Weights, "weights", "", "test/infer: the weights to evaluate (a directory, a .pdparams or a PyTorch .pth)")
	fl.StringVar(&opts.Filelist, "filelist", "", "the list of \"path label\" lines for this mode (infer: a directory too)")
	fl.StringVar(&opts.VideoPath, "video-path", "", "infer: one video, or a directory of videos, instead of a list")
	fl.StringVar(&opts.ImagePath, "image-path", "", "infer: one image, or a directory of images, instead of a list")
	fl.IntVar(&opts.BatchSize, "batch-size", 0, "override the config's batch_size (train and valid)")
	fl.Var((*finiteFloat)(&opts.LearningRate), "learning-rate", "override the config's learning_rate")
	fl.IntVar(&opts.Epoch, "epoch", 0, "override the config's number of epochs")
	fl.BoolVar(&opts.UseGPU, "use-gpu", false, "run on an NVIDIA GPU (needs a CUDA build of the plugin)")
	fl.IntVar(&opts.InferTopK, "infer-topk", 20, "infer: how many classes to keep per video")
	fl.StringArrayVar(&opts.Set, "set", nil, "override any config key: SECTION.key=value (repeatable)")
	fl.Int64Var(&opts.Seed, "seed", 1, "seed for data order, augmentation and initialisation")
	fl.StringVar(&opts.Shard, "shard", "", "test/infer without MPI: run part I of N disjoint parts of the list (I/N, I from 0); results are named NAME_I-of-N, empty for a part with no video (docs/distributed.md)")
	return cmd
}

func (o *Options) validate(cmd *cobra.Command) error {
	switch o.Mode {
	case sdk.ModeTrain, sdk.ModeTest, sdk.ModeInfer:
	default:
		return cmdutil.FlagErrorf("unknown mode %q: use train, test or infer", o.Mode)
	}
	if o.Shard != "" {
		if o.Mode == sdk.ModeTrain {
			return cmdutil.FlagErrorf("--shard %s: shards split test and infer lists; train on several processes with mpirun (docs/distributed.md)", o.Shard)
		}
		if _, _, err := parseShard(o.Shard); err != nil {
			return cmdutil.FlagErrorf("--shard %s: %v", o.Shard, err)
		}
	}
	o.changed = map[string]bool{}
	for _, n := range []string{"batch-size", "learning-rate", "epoch", "use-gpu", "filelist"} {
		o.changed[n] = cmd.Flags().Changed(n)
	}
	if o.LogInterval < 1 {
		return cmdutil.FlagErrorf("--log_interval %d: must be at least 1", o.LogInterval)
	}
	if o.ValidInterval < 0 {
		return cmdutil.FlagErrorf("--valid_interval %d: must be 0 (never) or more", o.ValidInterval)
	}
	if o.InferTopK < 1 {
		return cmdutil.FlagErrorf("--infer_topk %d: must be at least 1", o.InferTopK)
	}
	if o.changed["batch-size"] && o.BatchSize < 1 {
		return cmdutil.FlagErrorf("--batch_size %d: must be at least 1", o.BatchSize)
	}
	if o.changed["epoch"] && o.Epoch < 1 {
		return cmdutil.FlagErrorf("--epoch %d: must be at least 1", o.Epoch)
	}
	if o.changed["learning-rate"] && !(o.LearningRate > 0) {
		return cmdutil.FlagErrorf("--learning_rate %v: must be positive", o.LearningRate)
	}
	onlyTrain := map[string]string{"pretrain": o.Pretrain, "resume": o.Resume}
	for name, v := range onlyTrain {
		if v != "" && o.Mode != sdk.ModeTrain {
			return cmdutil.FlagErrorf("--%s is for train; %s takes --weights", name, o.Mode)
		}
	}
	if o.Weights != "" && o.Mode == sdk.ModeTrain {
		return cmdutil.FlagErrorf("--weights is for test and infer; train takes --pretrain or --resume")
	}
	if o.VideoPath != "" && o.Mode != sdk.ModeInfer {
		return cmdutil.FlagErrorf("--video_path is for infer")
	}
	if o.ImagePath != "" && o.Mode != sdk.ModeInfer {
		return cmdutil.FlagErrorf("--image_path is for infer")
	}
	if o.Pretrain == PretrainNone && o.Resume != "" {
		return cmdutil.FlagErrorf("--pretrain none and --resume: a resumed run starts from its checkpoint; drop --pretrain")
	}
	for _, d := range []struct{ flag, path string }{{"pretrain", o.Pretrain}, {"resume", o.Resume}, {"weights", o.Weights}} {
		if d.path == "" || d.flag == "pretrain" && d.path == PretrainNone {
			continue
		}
		fi, err := os.Stat(d.path)
		if err != nil {
			return cmdutil.FlagErrorf("--%s %s: no such directory", d.flag, d.path)
		}
		pdparams := d.flag != "resume" && fi.Mode().IsRegular() && paramFile(d.path)
		if !fi.IsDir() && !pdparams {
			return cmdutil.FlagErrorf("--%s %s: not a directory of parameter files", d.flag, d.path)
		}
	}
	if o.Config != "" {
		fi, err := os.Stat(o.Config)
		if err != nil {
			return cmdutil.FlagErrorf("--config %s: no such file", o.Config)
		}
		if fi.IsDir() {
			return cmdutil.FlagErrorf("--config %s: a directory, not a config file", o.Config)
		}
	}
	for _, d := range []struct{ flag, path string }{{"video_path", o.VideoPath}, {"image_path", o.ImagePath}} {
		if d.path == "" {
			continue
		}
		if _, err := os.Stat(d.path); err != nil {
			return cmdutil.FlagErrorf("--%s %s: no such file or directory", d.flag, d.path)
		}
	}
	return nil
}

// BuildConfig assembles the session's config: the schema's defaults, then
// the config file with Paddle's flag overrides (or the model's built-in job
// when there is no file), then --set.
func BuildConfig(m sdk.ModelInfo, o *Options) (config.Config, error) {
	schema := Schema(m)
	var cfg config.Config
	if o.Config != "" {
		file, err := config.Load(o.Config)
		if err != nil {
			return nil, err
		}
		if err := schema.Validate(file); err != nil {
			return nil, fmt.Errorf("%s: %w", o.Config, err)
		}
		cfg = file
	} else if o.publishedJob(m) {
		cfg = publishedConfig(schema)
	} else {
		cfg = config.Merge(schema.Defaults(), defaultConfig(m, schema))
	}
	sections := config.ModeSections(o.Mode)
	flags := []struct {
		name, key, value string
	}{
		{"batch-size", "batch_size", strconv.Itoa(o.BatchSize)},
		{"learning-rate", "learning_rate", strconv.FormatFloat(o.LearningRate, 'g', -1, 64)},
		{"epoch", "epoch", strconv.Itoa(o.Epoch)},
		{"use-gpu", "use_gpu", pyBool(o.UseGPU)},
		{"filelist", "filelist", o.Filelist},
	}
	// Paddle's merge_configs only overrides keys the file already has; zoo
	// merges the schema's defaults first, so every declared key exists and
	// a flag is never silently dropped.
	if o.Config != "" {
		cfg = config.Merge(schema.Defaults(), cfg)
	}
	for _, f := range flags {
		if !o.changed[f.name] {
			continue
		}
		if err := config.ApplyFlagTo(cfg, schema, sections, f.key, f.value); err != nil {
			return nil, &cmdutil.FlagError{Err: err}
		}
	}
	if o.VideoPath != "" {
		if err := config.ApplySet(cfg, schema, []string{"INFER.video_path=" + o.VideoPath}); err != nil {
			return nil, fmt.Errorf("--video_path: model %s cannot infer a single video: %w", m.Name, err)
		}
	}
	if o.ImagePath != "" {
		if err := config.ApplySet(cfg, schema, []string{"INFER.image_path=" + o.ImagePath}); err != nil {
			return nil, fmt.Errorf("--image_path: model %s cannot infer images: %w", m.Name, err)
		}
	}
	if err := config.ApplySet(cfg, schema, o.Set); err != nil {
		return nil, &cmdutil.FlagError{Err: err}
	}
	if err := schema.Validate(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// realData reports whether the run names real data on the command line:
// then, with no --config, it is the model's published job, not the
// built-in one.
func (o *Options) realData() bool {
	return o.VideoPath != "" || o.ImagePath != "" || o.changed["filelist"] && o.Filelist != ""
}

// publishedJob reports whether a run without --config is the model's
// published job: it names real data and the model publishes weights for
// the mode (pretrained weights for train). Otherwise it is the built-in
// job, whose checkpoints know only the built-in data's classes.
func (o *Options) publishedJob(m sdk.ModelInfo) bool {
	use := sdk.UseWeights
	if o.Mode == sdk.ModeTrain {
		use = sdk.UsePretrain
	}
	return o.Config == "" && o.realData() && publishes(m, use)
}

// publishedConfig is the model's published job: every key at its default,
// which the schema holds as the reference values (Paddle's tsm.txt for
// TSM), so that published weights fit it.
func publishedConfig(schema config.Schema) config.Config {
	return schema.Defaults()
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// GPUKey is Paddle's use_gpu, a key the host owns: accepted in each mode
// section a model's config has ([TRAIN], [VALID], [TEST], [INFER]) and
// passed to the plugin once, as the OpenRequest's Device (Open), never as
// config, unless the plugin declares the key itself (as plugins before
// protocol minor 3 did).
const GPUKey = "use_gpu"

// Schema converts a model's declared keys to the config package's schema,
// with the host's GPUKey in each mode section the plugin did not declare it
// in.
func Schema(m sdk.ModelInfo) config.Schema {
	s := make(config.Schema, 0, len(m.Config)+4)
	sections := map[string]bool{}
	for _, k := range m.Config {
		s = append(s, config.Key{Section: k.Section, Name: k.Name, Type: k.Type, Default: fromJSON(k.Type, k.Default), Help: k.Help})
		sections[k.Section] = true
	}
	for _, sec := range []string{"TRAIN", "VALID", "TEST", "INFER"} {
		if sections[sec] && !declares(m, sec, GPUKey) {
			s = append(s, config.Key{Section: sec, Name: GPUKey, Type: config.TypeBool, Default: false,
				Help: "True prefers a GPU (falls back to the CPU with a warning; --use_gpu requires one); zoo passes it as the session's device"})
		}
	}
	return s
}

func declares(m sdk.ModelInfo, section, key string) bool {
	return slices.ContainsFunc(m.Config, func(k sdk.ConfigKey) bool { return k.Section == section && k.Name == key })
}

// PluginConfig is cfg as the plugin gets it: without the host's GPUKey
// where the plugin did not declare it.
func PluginConfig(m sdk.ModelInfo, cfg config.Config) sdk.Config {
	out := make(sdk.Config, len(cfg))
	for sec, keys := range cfg {
		out[sec] = keys
		if _, ok := keys[GPUKey]; ok && !declares(m, sec, GPUKey) {
			out[sec] = maps.Clone(keys)
			delete(out[sec], GPUKey)
		}
	}
	return out
}

// Epochs is how many epochs a train run trains: what the plugin answered
// Open (protocol minor 3, OpenResult.Epochs), or, from a plugin of an older
// minor or one that answered 0 (it did not say: a plugin written before it
// knew the field), the config's TRAIN.epoch key, else one.
func Epochs(minor uint32, res sdk.OpenResult, cfg config.Config) int {
	if minor < 3 || res.Epochs <= 0 {
		return intKey(cfg, "TRAIN", "epoch", 1)
	}
	return res.Epochs
}

func intKey(cfg config.Config, section, key string, def int) int {
	switch v := cfg[section][key].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case float64:
		return int(v)
	}
	return def
}

func runRun(ctx context.Context, o *Options) (err error) {
	f := o.F
	reg, err := f.Registry()
	if err != nil {
		return err
	}
	m, err := f.FindModelToRun(ctx, o.Model)
	if err != nil {
		return err
	}
	defer m.Release()
	if !m.Info.HasTask(o.Mode) {
		return cmdutil.FlagErrorf("model %s does not support %s (it supports %s)", m.Info.Name, o.Mode, strings.Join(m.Info.Tasks, ", "))
	}
	if err := CheckModel(m.Plugin.Name, m.Info); err != nil {
		return err
	}
	if err := checkFlagKeys(m.Info, o); err != nil {
		return err
	}
	cfg, err := BuildConfig(m.Info, o)
	if err != nil {
		return err
	}
	if o.publishedJob(m.Info) {
		fmt.Fprintf(f.IO.ErrOut, "no --config: %s's published configuration and weights for the data given (--config FILE for another job)\n", m.Info.Name)
	}
	world, err := launcher.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	shardName := ""
	if o.Shard != "" {
		if world.Size > 1 {
			return cmdutil.FlagErrorf("--shard %s under %s (%d ranks): the ranks already split the list; drop --shard", o.Shard, world.Launcher, world.Size)
		}
		i, n, _ := parseShard(o.Shard)
		world.Rank, world.Size = i, n
		shardName = fmt.Sprintf("%d-of-%d", i, n)
	}
	// Under a launcher every rank but 0 is a helper; a shard is its own job.
	helper := world.Rank > 0 && shardName == ""
	// Under a launcher (mpirun, Slurm) rank 0 alone holds the save dir,
	// prints and writes files; the other ranks write into a private
	// temporary directory and print nothing (docs/distributed.md).
	saveDir, ios := o.SaveDir, f.IO
	if helper {
		if saveDir, err = os.MkdirTemp("", fmt.Sprintf("zoo-rank%d-", world.Rank)); err != nil {
			return err
		}
		defer os.RemoveAll(saveDir)
		ios = &iostreams.IOStreams{In: f.IO.In, Out: io.Discard, ErrOut: io.Discard}
	} else {
		// One run per save dir, taken before any checkpoint is looked up.
		sd, err := driver.OpenSaveDir(o.SaveDir, fmt.Sprintf("zoo run %s %s", m.Info.Name, o.Mode))
		if err != nil {
			return err
		}
		defer sd.Close()
		for _, n := range sd.Notes {
			fmt.Fprintln(f.IO.ErrOut, n)
		}
	}
	// The plugin starts before weights are resolved: a published set the
	// store lacks is checked against the network the config describes
	// before it is downloaded (networkFits).
	client, err := reg.Start(ctx, &m)
	if err != nil {
		return err
	}
	defer client.Kill()
	o.fits = networkFits(client, cfg, o, m.Info)
	weights, err := ResolveWeights(ctx, f, m, o)
	if err != nil {
		return err
	}

	sess, res, err := Open(ctx, client, m.Info, cfg, o, sdk.OpenRequest{
		Model: m.Info.Name, Mode: o.Mode, Weights: weights,
		SaveDir: saveDir, Rank: world.Rank, WorldSize: world.Size, Seed: o.Seed,
		HostVersion: o.hostVersion,
	})
	if err != nil {
		if world.Size > 1 && shardName == "" {
			return fmt.Errorf("rank %d of %d: open %s: %w", world.Rank, world.Size, m.Info.Name, err)
		}
		return fmt.Errorf("open %s: %w", m.Info.Name, err)
	}
	for _, n := range res.Notes {
		fmt.Fprintln(ios.ErrOut, n)
	}
	defer func() {
		// Close is bounded (sdk.CloseTimeout): a plugin stuck in it is
		// killed, and the run fails naming it unless it failed already.
		if cerr := sess.Close(context.WithoutCancel(ctx)); cerr != nil && err == nil {
			err = fmt.Errorf("close %s: %w", m.Info.Name, cerr)
		}
	}()
	info := m.Info
	if len(res.Labels) > 0 {
		info.Labels = res.Labels
	}
	err = driver.Run(ctx, sess, driver.Options{
		Model:         info,
		Plugin:        m.Plugin.Name,
		Mode:          o.Mode,
		SaveDir:       saveDir,
		Shard:         shardName,
		Helper:        helper,
		Epochs:        Epochs(m.Minor, res, cfg),
		LogInterval:   o.LogInterval,
		ValidInterval: o.ValidInterval,
		Resume:        o.Resume,
		Seed:          o.Seed,
		InferTopK:     o.InferTopK,
		IO:            ios,
		Logger:        f.Logger(),
	})
	if errors.Is(err, context.Canceled) {
		return cmdutil.ErrInterrupted
	}
	if err != nil && world.Size > 1 && shardName == "" {
		return fmt.Errorf("rank %d of %d: %w", world.Rank, world.Size, err)
	}
	return err
}

// Open opens the session on the device the run asks for. --use_gpu
// requires a GPU. use_gpu = True in a config only prefers one: Paddle's
// configs/tsm.txt says True, and its job runs on a machine without a GPU,
// or with a plugin built without CUDA, on the CPU after a warning that
// names the line to change. A plugin says it cannot use a GPU with
// sdk.CodeFailedPrecondition. The plugin gets cfg as PluginConfig.
func Open(ctx context.Context, client *sdk.Client, m sdk.ModelInfo, cfg config.Config, o *Options, req sdk.OpenRequest) (*sdk.RemoteSession, sdk.OpenResult, error) {
	section := strings.ToUpper(o.Mode)
	req.Config = PluginConfig(m, cfg)
	req.Device = "cpu"
	if o.UseGPU || cfg[section][GPUKey] == true {
		req.Device = "gpu"
	}
	sess, res, err := client.Open(ctx, req)
	if req.Device != "gpu" || err == nil || sdk.CodeOf(err) != sdk.CodeFailedPrecondition {
		return sess, res, err
	}
	if o.UseGPU {
		return sess, res, fmt.Errorf("--use_gpu: %w; drop --use_gpu to run on the CPU", err)
	}
	from := fmt.Sprintf("[%s] use_gpu = True in %s", section, o.Config)
	for _, a := range o.Set {
		if k, _, _ := strings.Cut(a, "="); strings.EqualFold(strings.TrimSpace(k), section+".use_gpu") {
			from = "--set " + a
		}
	}
	if o.Config == "" && !strings.HasPrefix(from, "--set") {
		from = fmt.Sprintf("[%s] use_gpu = True in the model's built-in job", section)
	}
	fmt.Fprintf(o.F.IO.ErrOut, "warning: %s asks for a GPU, but %v: running on the CPU (set use_gpu = False to silence this, or pass --use_gpu to require a GPU)\n", from, err)
	req.Device = "cpu"
	return client.Open(ctx, req)
}

// ResolveWeights decides which parameter directories the session starts
// from: the flags when given; else, for the built-in job, the newest
// checkpoint train saved; else the model's published weight set.
func ResolveWeights(ctx context.Context, f *cmdutil.Factory, m registry.Model, o *Options) (map[string]string, error) {
	w := map[string]string{}
	switch o.Mode {
	case sdk.ModeTrain:
		if o.Pretrain == PretrainNone {
			fmt.Fprintln(f.IO.ErrOut, "pretrain: none, training from freshly initialised weights")
		} else if o.Pretrain != "" {
			w[sdk.UsePretrain] = o.Pretrain
		} else if (o.Config != "" || o.publishedJob(m.Info)) && o.Resume == "" {
			dir, err := fetchSet(ctx, f, m, o, sdk.UsePretrain)
			if err != nil {
				return nil, err
			}
			if dir != "" {
				w[sdk.UsePretrain] = dir
			}
		}
	default:
		switch {
		case o.Weights != "":
			w[sdk.UseWeights] = o.Weights
		case !m.Info.HasTask(sdk.ModeTrain) && !publishes(m.Info, sdk.UseWeights):
			// A model that neither trains nor publishes weights (a rule,
			// a wrapper around a service) runs as it is.
		case o.Config == "" && !o.publishedJob(m.Info):
			dir, err := driver.LatestCheckpoint(o.SaveDir, m.Info.Name)
			if err != nil {
				return nil, err
			}
			if dir == "" {
				return nil, fmt.Errorf("no %s checkpoint in %s: run `zoo run %s train` first, or pass --weights DIR", m.Info.Name, filepath.Clean(o.SaveDir), m.Info.Name)
			}
			fmt.Fprintf(f.IO.ErrOut, "using checkpoint %s\n", dir)
			w[sdk.UseWeights] = dir
		default:
			dir, err := fetchSet(ctx, f, m, o, sdk.UseWeights)
			if err != nil {
				return nil, err
			}
			if dir == "" {
				return nil, cmdutil.FlagErrorf("model %s publishes no weights: pass --weights DIR", m.Info.Name)
			}
			w[sdk.UseWeights] = dir
		}
	}
	return w, nil
}

// publishes reports whether the model has a weight set of that use.
func publishes(m sdk.ModelInfo, use string) bool {
	for _, ws := range m.WeightSets {
		if ws.Use == use {
			return true
		}
	}
	return false
}

// finiteFloat is a float flag that refuses inf, nan and numbers beyond
// float64, which strconv would read as inf: no config value may be one
// (JSON, which carries configs to plugins, cannot even say it).
type finiteFloat float64

func (f *finiteFloat) Set(s string) error {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("not a number")
	}
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return fmt.Errorf("not a finite number")
	}
	*f = finiteFloat(v)
	return nil
}

func (f *finiteFloat) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }
func (f *finiteFloat) Type() string   { return "float" }

// paramFile: the weight files plugins read besides directories, Paddle's
// .pdparams and PyTorch checkpoints (MIT names theirs .pth.tar).
func paramFile(path string) bool {
	switch filepath.Ext(path) {
	case ".pdparams", ".pth", ".pt":
		return true
	}
	return strings.HasSuffix(path, ".pth.tar")
}

// parseShard reads --shard's "I/N": 0 <= I < N.
func parseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, errors.New("want I/N with 0 <= I < N, e.g. 0/4 (a Kubernetes Indexed Job: $JOB_COMPLETION_INDEX/N; a Slurm array: $SLURM_ARRAY_TASK_ID/N)")
	}
	return i, n, nil
}
