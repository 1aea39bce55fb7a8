package resnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/nn/optim"
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/video"
)

// session is one opened ResNet: a model and the data of its mode.
type session struct {
	cfg      Config
	seed     int64
	model    *resnet.Model
	sched    optim.Piecewise
	builtin  bool // no filelist: the synthetic dataset
	sources  map[string]source
	warnings classifier.Warnings // unreadable images, drained into the Run stream
	dev      classifier.Device   // the CPU, or the GPU (the CUDA build only)
	comm     dist.Communicator
	stepper  *classifier.Stepper // training steps over comm's ranks and micro-batches
}

func open(_ context.Context, req sdk.OpenRequest) (*session, sdk.OpenResult, error) {
	if req.Device == "gpu" {
		if err := classifier.CheckGPU("zoo-plugin-resnet"); err != nil {
			return nil, sdk.OpenResult{}, err
		}
	}
	cfg, err := decode(req.Config)
	if err != nil {
		return nil, sdk.OpenResult{}, err
	}
	if err := cfg.validate(req.Mode); err != nil {
		return nil, sdk.OpenResult{}, err
	}
	s := &session{cfg: cfg, seed: req.Seed, sources: map[string]source{}, dev: classifier.Device{Plugin: "zoo-plugin-resnet", GPU: req.Device == "gpu"}}
	rc := cfg.Train.ReaderConfig
	switch req.Mode {
	case sdk.ModeTest:
		rc = cfg.Test
	case sdk.ModeInfer:
		rc = cfg.Infer.ReaderConfig
	}
	comm, err := dist.Open()
	if err != nil {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeFailedPrecondition, "%v", err)
	}
	s.comm = comm
	switch {
	case req.WorldSize > 1 && req.Mode != sdk.ModeTrain:
		// Ranks train ResNet data-parallel; splitting evaluation lists is
		// TSM's for now (docs/distributed.md).
		comm.Close()
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument,
			"ResNet %s runs in one process (rank %d of %d): run it without mpirun or --shard (ranks train ResNet; they split TSM's evaluation lists only)", req.Mode, req.Rank, req.WorldSize)
	case req.WorldSize > 1 && comm.Size() == 1:
		comm.Close()
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "a shard (%d of %d) of training: train with mpirun", req.Rank, req.WorldSize)
	}
	graphBatch := rc.BatchSize
	if req.Mode == sdk.ModeTrain {
		if graphBatch, err = classifier.TrainGraphBatch(comm, rc.BatchSize, cfg.Train.MicroBatches); err != nil {
			comm.Close()
			return nil, sdk.OpenResult{}, err
		}
	}
	s.stepper = &classifier.Stepper{Comm: comm, Parts: max(cfg.Train.MicroBatches, 1)}
	if comm.Size() > 1 {
		facts := append(classifier.OpenFacts(req),
			classifier.FileFact("TRAIN.filelist contents", cfg.Train.Filelist),
			classifier.FileFact("VALID.filelist contents", cfg.Valid.Filelist))
		if err := classifier.CheckRanksAgree(comm, facts); err != nil {
			comm.Close()
			return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
		}
	}
	s.builtin = rc.Filelist == "" && !(req.Mode == sdk.ModeInfer && cfg.Infer.ImagePath != "")
	m, err := resnet.New(resnet.Config{
		Depth: cfg.Model.NumLayers, NumClasses: cfg.Model.NumClasses, SegNum: 1, NoDropout: true,
		BaseWidth: cfg.Model.BaseWidth, BatchSize: graphBatch, Height: rc.TargetSize, Width: rc.TargetSize, Seed: req.Seed,
	})
	if err != nil {
		comm.Close()
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
	}
	s.model = m
	t := cfg.Train
	s.sched = optim.TSMSchedule(t.LearningRate, t.LearningRateDecay, t.DecayEpochs, max(t.TotalImages, 1), max(t.BatchSize, 1))
	res := sdk.OpenResult{Epochs: cfg.Train.Epoch}
	res.Notes = append(res.Notes, fmt.Sprintf("ResNet-%d, %dx%d, %d classes, batch %d",
		cfg.Model.NumLayers, rc.TargetSize, rc.TargetSize, cfg.Model.NumClasses, rc.BatchSize))
	if s.builtin {
		res.Notes = append(res.Notes, "data: the built-in synthetic dataset (stripe orientation tells its classes apart)")
		if cfg.Model.NumClasses == len(synthClasses) {
			res.Labels = synthLabels()
		}
	}
	if res.Labels == nil && cfg.Model.NumClasses != 1000 {
		res.Labels = make([]string, cfg.Model.NumClasses)
		for i := range res.Labels {
			res.Labels[i] = fmt.Sprint(i)
		}
	}
	if dir := req.Weights[sdk.UsePretrain]; dir != "" {
		n, err := classifier.Load(m, dir, classifier.NotFC, false)
		if err != nil {
			m.Close()
			return nil, res, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("pretrained: %d variables from %s (fc_0 left initialised)", n, dir))
	}
	if dir := req.Weights[sdk.UseWeights]; dir != "" {
		n, err := classifier.Load(m, dir, classifier.All, false)
		if err != nil {
			m.Close()
			return nil, res, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("weights: %d variables from %s", n, dir))
	}
	return s, res, nil
}

func (s *session) Load(_ context.Context, dir, kind string) (sdk.LoadResult, error) {
	return s.dev.LoadKind(s.model, dir, kind)
}

func (s *session) Save(_ context.Context, dir string) error {
	return s.dev.Save(s.model, dir)
}

// ResumesAtStep marks the session an sdk.StepResumer: data order and
// augmentation are functions of (seed, epoch, image), dropout of (seed,
// epoch, step), and Run honours StartStep.
func (*session) ResumesAtStep() {}

var _ sdk.StepResumer = (*session)(nil)

func (s *session) Close() error { return classifier.CloseSession(&s.dev, s.model, s.comm) }

func (s *session) source(phase string) (source, error) {
	if src, ok := s.sources[phase]; ok {
		return src, nil
	}
	src, err := s.newSource(phase)
	if err != nil {
		return nil, err
	}
	s.sources[phase] = src
	return src, nil
}

func (s *session) newSource(phase string) (source, error) {
	graphBatch := s.model.Config().BatchSize
	if phase == sdk.PhaseTrain {
		// A train batch is the global batch; under ranks each reads its
		// share of it, in rank order, and the graph runs micro-batches.
		graphBatch = s.cfg.Train.BatchSize
	}
	var rc ReaderConfig
	var split, images int
	switch phase {
	case sdk.PhaseTrain:
		rc, split, images = s.cfg.Train.ReaderConfig, splitTrain, s.cfg.Synthetic.TrainImages
	case sdk.PhaseValid:
		rc, split, images = s.cfg.Valid, splitValid, s.cfg.Synthetic.ValidImages
	case sdk.PhaseTest:
		rc, split, images = s.cfg.Test, splitTest, s.cfg.Synthetic.TestImages
	case sdk.PhaseInfer:
		rc, split, images = s.cfg.Infer.ReaderConfig, splitInfer, s.cfg.Synthetic.InferImages
	default:
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "unknown phase %q", phase)
	}
	section := strings.ToUpper(phase)
	if rc.TargetSize != s.model.Config().Height {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "[%s] target_size %d differs from the model's %d: zoo runs one image size per session",
			section, rc.TargetSize, s.model.Config().Height)
	}
	train := phase == sdk.PhaseTrain
	imagePath := ""
	if phase == sdk.PhaseInfer {
		imagePath = s.cfg.Infer.ImagePath
	}
	if rc.Filelist == "" && imagePath == "" {
		if !s.builtin {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "[%s] filelist is empty: give a list with --filelist or in the config", section)
		}
		if images < 1 {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "SYNTHETIC.%s_images must be at least 1", phase)
		}
		if train && images < graphBatch {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "SYNTHETIC.train_images %d is less than one batch of %d", images, graphBatch)
		}
		src := &synthSource{split: split, images: images, batch: graphBatch, size: rc.TargetSize,
			noise: s.cfg.Synthetic.Noise, train: train, seed: uint64(s.seed)}
		if train {
			src.comm = s.comm
		}
		return src, nil
	}
	var items []video.Item
	if imagePath != "" {
		st, err := os.Stat(imagePath)
		if err != nil {
			return nil, sdk.Errorf(sdk.CodeNotFound, "image_path %s: no such file or directory", imagePath)
		}
		if st.IsDir() {
			items, err = video.ParseFileList(imagePath, false, "image", imageExts)
			if err != nil {
				return nil, sdk.Errorf(sdk.CodeInvalidArgument, "image_path %s: %v", imagePath, err)
			}
		} else {
			items = []video.Item{{Path: imagePath, Label: video.NoLabel, Where: imagePath}}
		}
	} else {
		var err error
		items, err = video.ParseFileList(rc.Filelist, phase != sdk.PhaseInfer, "image", imageExts)
		if err != nil {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "[%s] filelist: %v", section, err)
		}
	}
	if train && len(items) < graphBatch {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "[TRAIN] filelist %s lists %d images, less than one batch of %d", rc.Filelist, len(items), graphBatch)
	}
	var mean, std [3]float32
	for i := 0; i < 3; i++ {
		mean[i], std[i] = float32(s.cfg.Model.ImageMean[i]), float32(s.cfg.Model.ImageStd[i])
	}
	var comm dist.Communicator
	if train {
		comm = s.comm
	}
	return &imageSource{items: items, train: train, batch: graphBatch, comm: comm,
		workers: min(max(rc.NumReaderThreads, 1), runtime.NumCPU()), short: rc.ShortSize, size: rc.TargetSize,
		mean: mean, std: std, numClasses: s.cfg.Model.NumClasses, seed: uint64(s.seed),
		warn: s.warnings.Add}, nil
}

// Run runs one pass of a phase, checking ctx between batches so that an
// interrupt leaves the model between two whole steps.
func (s *session) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	src, err := s.source(req.Phase)
	if err != nil {
		return err
	}
	steps, images := src.count()
	// A data-parallel train pass keeps its ranks in step
	// (classifier.AgreeStep): every rank stops at the same step.
	lockstep := req.Phase == sdk.PhaseTrain && s.comm.Size() > 1
	emitErr := func() error { return nil }
	if lockstep {
		emit, emitErr = classifier.LockstepEmit(emit)
	}
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: int64(steps), Samples: int64(images)}}); err != nil {
		return err
	}
	if req.Phase == sdk.PhaseTrain {
		if err := classifier.StartTrainPass(s.comm, &s.dev, s.model); err != nil {
			return err
		}
	}
	graphBatch := s.model.Config().BatchSize
	sample := s.model.Config().InputSize() / graphBatch
	k := s.cfg.Model.NumClasses
	// A resumed train pass skips its first StartStep batches unread and
	// numbers its steps on from there (sdk.StepResumer).
	start := int64(0)
	if req.Phase == sdk.PhaseTrain {
		start = max(req.StartStep, 0)
	}
	iter := start
	r, err := s.dev.Runner(s.model)
	if err != nil {
		return err
	}
	for b, err := range src.epoch(ctx, req.Epoch, int(start)) {
		if errors.Is(err, classifier.ErrStopped) {
			return classifier.Stopped(ctx, s.comm, emitErr())
		}
		if err != nil {
			return err
		}
		if err := s.warnings.Flush(emit); err != nil {
			return err
		}
		if lockstep {
			stop, _, err := classifier.AgreeStep(s.comm, ctx.Err() != nil || emitErr() != nil, nil)
			if err != nil {
				return err
			}
			if stop {
				return classifier.Stopped(ctx, s.comm, emitErr())
			}
		} else if err := ctx.Err(); err != nil {
			return err
		}
		if req.MaxSteps > 0 && iter-start >= req.MaxSteps {
			return nil
		}
		n := len(b.labels)
		if req.Phase == sdk.PhaseTrain {
			lr := s.sched.At(int(req.GlobalStep + iter - start))
			seed := classifier.StepSeed(s.seed, req.Epoch, iter)
			var res resnet.Result
			if b.global > 0 {
				n = b.global // b holds this rank's share
			}
			res, err = s.stepper.StepOn(s.dev.Active(), s.model, b.data, b.labels, lr, seed)
			if err != nil {
				return err
			}
			var extra map[string]float64
			if s.comm.Size() > 1 {
				extra = map[string]float64{"allreduce_s": s.stepper.LastAllreduce.Seconds()}
			}
			if err := classifier.EmitTrainExtra(emit, iter, n, res, lr, extra); err != nil {
				return err
			}
			iter++
			continue
		}
		res, err := r.Forward(resnet.Eval, classifier.Pad(b.data, graphBatch, sample), nil)
		if err != nil {
			return err
		}
		if err := classifier.EmitEval(emit, req.Phase, iter, res.Probs, k, b.ids, b.labels); err != nil {
			return err
		}
		iter++
	}
	if err := s.warnings.Flush(emit); err != nil {
		return err
	}
	if lockstep {
		// Every rank has finished the pass before rank 0's host saves it.
		if err := s.comm.Barrier(); err != nil {
			return err
		}
		if err := emitErr(); err != nil {
			return err
		}
	}
	return ctx.Err()
}
