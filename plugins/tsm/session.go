package tsm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/nn/ops"
	"github.com/zoo-ml/zoo/nn/optim"
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/video"
	"github.com/zoo-ml/zoo/weights/convert"
)

// session is one opened TSM: a model and the data of its mode.
type session struct {
	cfg      Config
	mode     string
	seed     int64
	model    *resnet.Model
	sched    optim.Piecewise
	builtin  bool // no filelist: the synthetic dataset
	sources  map[string]source
	warnings classifier.Warnings // skipped videos, drained into the Run stream
	log      hclog.Logger
	last     *position         // the last train pass's, while it is inside its epoch (resume.go)
	resumeAt *position         // the resumed checkpoint's, until its pass starts
	dev      classifier.Device // the CPU, or the GPU (the CUDA build only)
	comm     dist.Communicator
	// shard and shards: this process's share of an evaluation list, the
	// MPI rank's or --shard's (OpenRequest's Rank and WorldSize without MPI).
	shard, shards int
	stepper       *classifier.Stepper // training steps over comm's ranks and micro-batches
}

func open(ctx context.Context, req sdk.OpenRequest) (*session, sdk.OpenResult, error) {
	if req.Device == "gpu" {
		if err := classifier.CheckGPU("zoo-plugin-tsm"); err != nil {
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
	s := &session{cfg: cfg, mode: req.Mode, seed: req.Seed, sources: map[string]source{}, log: sdk.Logger().Named("tsm"), dev: classifier.Device{Plugin: "zoo-plugin-tsm", GPU: req.Device == "gpu"}}
	// The graph's batch size: training validates in training-size batches
	// (evaluation uses stored statistics, so batching does not change it).
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
	s.shard, s.shards = comm.Rank(), comm.Size()
	if comm.Size() == 1 && req.WorldSize > 1 {
		if req.Mode == sdk.ModeTrain {
			return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "a shard (%d of %d) of training: shards split test and infer lists only; train with mpirun", req.Rank, req.WorldSize)
		}
		if req.Rank < 0 || req.Rank >= req.WorldSize {
			return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "shard %d of %d does not exist", req.Rank, req.WorldSize)
		}
		s.shard, s.shards = req.Rank, req.WorldSize
	}
	if comm.Size() > 1 {
		facts := append(classifier.OpenFacts(req),
			classifier.FileFact(strings.ToUpper(req.Mode)+".filelist contents", rc.Filelist))
		if err := classifier.CheckRanksAgree(comm, facts); err != nil {
			comm.Close()
			return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
		}
	}
	s.stepper = &classifier.Stepper{Comm: comm, Parts: max(cfg.Train.MicroBatches, 1)}
	graphBatch := rc.BatchSize * s.views()
	if req.Mode == sdk.ModeTrain {
		if graphBatch, err = classifier.TrainGraphBatch(comm, rc.BatchSize, cfg.Train.MicroBatches); err != nil {
			return nil, sdk.OpenResult{}, err
		}
	}
	s.builtin = rc.Filelist == "" && !(req.Mode == sdk.ModeInfer && cfg.Infer.VideoPath != "")
	if s.builtin && s.views() > 1 {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "[%s] num_clips and num_crops read real videos: give a filelist (the built-in dataset has one view)", strings.ToUpper(req.Mode))
	}
	conv, err := conventions(cfg.Model, req.Weights)
	if err != nil {
		return nil, sdk.OpenResult{}, err
	}
	if s.dev.GPU && conv != convert.Paddle {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "PyTorch's TSM conventions (%+v) run on the CPU only: drop --use_gpu", conv)
	}
	if cfg.Model.Precision == "bf16" && s.dev.GPU {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.precision bf16 runs on the CPU only: drop --device gpu or use precision fp32")
	}
	// The precision is the process's (nn/ops): a plugin process serves one session.
	if err := ops.SetPrecision(cfg.Model.Precision); err != nil {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.precision: %v", err)
	}
	m, err := resnet.New(resnet.Config{
		Depth: cfg.Model.NumLayers, NumClasses: cfg.Model.NumClasses, SegNum: cfg.Model.SegNum,
		TemporalShift: cfg.Model.TemporalShift, BaseWidth: cfg.Model.BaseWidth,
		BatchSize: graphBatch, Height: rc.TargetSize, Width: rc.TargetSize, Seed: req.Seed,
		ReverseShift: conv.ShiftDirection == "pytorch", InvertedDropout: conv.InferDropout == "identity",
		LogitConsensus: conv.Consensus == "logits",
	})
	if err != nil {
		return nil, sdk.OpenResult{}, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
	}
	s.model = m
	t := cfg.Train
	s.sched = optim.TSMSchedule(t.LearningRate, t.LearningRateDecay, t.DecayEpochs, max(t.TotalVideos, 1), max(t.BatchSize, 1))
	res := sdk.OpenResult{Epochs: cfg.Train.Epoch}
	kind := "TSM"
	if !cfg.Model.TemporalShift {
		kind = "TSN (temporal_shift = False)"
	}
	res.Notes = append(res.Notes, fmt.Sprintf("%s-ResNet-%d, %d segments, %dx%d, %d classes, batch %d",
		kind, cfg.Model.NumLayers, cfg.Model.SegNum, rc.TargetSize, rc.TargetSize, cfg.Model.NumClasses, rc.BatchSize))
	if v := s.views(); v > 1 {
		res.Notes = append(res.Notes, fmt.Sprintf("views: %d clips x %d crops per video, batch of %d", max(rc.NumClips, 1), max(rc.NumCrops, 1), rc.BatchSize*v))
	}
	if cfg.Model.Precision == "bf16" {
		if req.Mode == sdk.ModeTrain {
			res.Notes = append(res.Notes, "precision bf16: training convolutions (forward, backward data and weights; validation's too) in bfloat16, fp32 accumulation; weights, optimizer and batch norm fp32, on "+ops.Kernels())
		} else {
			res.Notes = append(res.Notes, "precision bf16: inference convolutions in bfloat16, fp32 accumulation, on "+ops.Kernels())
		}
	}
	if conv != convert.Paddle {
		res.Notes = append(res.Notes, fmt.Sprintf("conventions: shift_direction %s, infer_dropout %s, consensus %s", conv.ShiftDirection, conv.InferDropout, conv.Consensus))
	}
	if s.builtin {
		res.Notes = append(res.Notes, "data: the built-in synthetic dataset (only temporal order tells its classes apart)")
		if cfg.Model.NumClasses == len(synthClasses) {
			res.Labels = synthLabels()
		}
	} else if cfg.Model.NumClasses != 400 {
		res.Labels = make([]string, cfg.Model.NumClasses)
		for i := range res.Labels {
			res.Labels[i] = fmt.Sprint(i)
		}
	}
	if dir := req.Weights[sdk.UsePretrain]; dir != "" {
		n, err := s.load(dir, classifier.NotFC, false)
		if err != nil {
			return nil, res, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("pretrained: %d variables from %s (fc_0 left initialised)", n, dir))
	}
	if dir := req.Weights[sdk.UseWeights]; dir != "" {
		n, err := s.load(dir, classifier.All, false)
		if err != nil {
			return nil, res, err
		}
		res.Notes = append(res.Notes, fmt.Sprintf("weights: %d variables from %s", n, dir))
	}
	return s, res, nil
}

// load reads the kept parameters (and, with velocity, the optimizer state
// where the directory has it) from a Paddle parameter directory.
func (s *session) load(dir string, keep func(string) bool, velocity bool) (int, error) {
	if err := s.dev.Sync(s.model, true); err != nil {
		return 0, err
	}
	n, err := classifier.Load(s.model, dir, keep, velocity)
	if err == nil {
		s.log.Debug("loaded weights", "dir", dir, "loaded", n)
	}
	return n, err
}

func (s *session) Load(_ context.Context, dir, kind string) (sdk.LoadResult, error) {
	if kind == sdk.LoadResume {
		p, err := readPosition(dir)
		if err != nil {
			return sdk.LoadResult{}, err
		}
		s.resumeAt = p
	}
	return s.dev.LoadKind(s.model, dir, kind)
}

// Save writes every parameter and its Momentum velocity in Paddle's
// one-file-per-variable format into dir (the host's temp directory).
func (s *session) Save(_ context.Context, dir string) error {
	if s.last != nil {
		if err := writePosition(dir, *s.last); err != nil {
			return err
		}
	}
	return s.dev.Save(s.model, dir)
}

// ResumesAtStep marks the session an sdk.StepResumer: data order and
// augmentation are functions of (seed, epoch, sample), dropout of (seed,
// epoch, step), and Run honours StartStep.
func (*session) ResumesAtStep() {}

var _ sdk.StepResumer = (*session)(nil)

func (s *session) Close() error { return classifier.CloseSession(&s.dev, s.model, s.comm) }

// source returns (building once) the data of a phase.
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
	m := s.cfg.Model
	graphBatch := s.model.Config().BatchSize
	var rc ReaderConfig
	var mode video.Mode
	var split, videos int
	switch phase {
	case sdk.PhaseTrain:
		rc, mode, split, videos = s.cfg.Train.ReaderConfig, video.Train, splitTrain, s.cfg.Synthetic.TrainVideos
	case sdk.PhaseValid:
		rc, mode, split, videos = s.cfg.Valid, video.Valid, splitValid, s.cfg.Synthetic.ValidVideos
	case sdk.PhaseTest:
		rc, mode, split, videos = s.cfg.Test, video.Test, splitTest, s.cfg.Synthetic.TestVideos
	case sdk.PhaseInfer:
		rc, mode, split, videos = s.cfg.Infer.ReaderConfig, video.Infer, splitInfer, s.cfg.Synthetic.InferVideos
	default:
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "unknown phase %q", phase)
	}
	if phase == sdk.PhaseTrain {
		// A train batch is the global batch: every rank reads it and takes
		// its share, in rank order (Run); the graph runs micro-batches.
		graphBatch = s.cfg.Train.BatchSize
	}
	rc.BatchSize = graphBatch / s.views() // videos; the graph's batch holds their views
	if rc.TargetSize != s.model.Config().Height {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "[%s] target_size %d differs from the model's %d: zoo runs one frame size per session",
			strings.ToUpper(phase), rc.TargetSize, s.model.Config().Height)
	}
	if s.builtin || (rc.Filelist == "" && !(phase == sdk.PhaseInfer && s.cfg.Infer.VideoPath != "")) {
		if rc.Filelist == "" && !s.builtin {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "[%s] filelist is empty: give a list with --filelist or in the config", strings.ToUpper(phase))
		}
		if videos < 1 {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "SYNTHETIC.%s_videos must be at least 1", phase)
		}
		if phase == sdk.PhaseTrain && videos < graphBatch {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "SYNTHETIC.train_videos %d is less than one batch of %d", videos, graphBatch)
		}
		first := 0
		if phase != sdk.PhaseTrain && s.shards > 1 {
			lo, hi := dist.Split(videos, s.shard, s.shards)
			first, videos = lo, hi-lo
		}
		src := &synthSource{split: split, videos: videos, first: first, batch: graphBatch, segNum: m.SegNum, size: rc.TargetSize,
			noise: s.cfg.Synthetic.Noise, shuffle: phase == sdk.PhaseTrain, dropLast: phase == sdk.PhaseTrain, seed: uint64(s.seed)}
		if phase == sdk.PhaseTrain && s.comm.Size() > 1 {
			src.rank, src.ranks = s.comm.Rank(), s.comm.Size()
		}
		return src, nil
	}
	var items []video.Item
	var err error
	if phase == sdk.PhaseInfer && s.cfg.Infer.VideoPath != "" {
		if items, err = video.PathItems(s.cfg.Infer.VideoPath, "video", video.VideoExts); err != nil {
			return nil, sdk.Errorf(sdk.CodeNotFound, "video_path %v", err)
		}
	} else {
		items, err = video.ParseList(rc.Filelist, phase != sdk.PhaseInfer)
		if err != nil {
			return nil, sdk.Errorf(sdk.CodeInvalidArgument, "[%s] filelist: %v", strings.ToUpper(phase), err)
		}
	}
	if phase != sdk.PhaseTrain && s.shards > 1 {
		lo, hi := dist.Split(len(items), s.shard, s.shards)
		items = items[lo:hi]
	}
	warn := s.warnings.Add
	if phase != sdk.PhaseTrain && len(items) == 0 && s.shards > 1 {
		return emptySource{batch: rc.BatchSize}, nil
	}
	if phase == sdk.PhaseTrain && s.comm.Size() > 1 {
		// Each rank decodes only its share of every global batch.
		r, err := newReader(mode, m, rc, items, s.seed, warn)
		if err != nil {
			return nil, err
		}
		return &shareSource{r: r, items: items, batch: graphBatch, comm: s.comm,
			workers: min(max(rc.NumReaderThreads, 1), runtime.NumCPU()), warn: warn}, nil
	}
	return newVideoSource(mode, m, rc, items, s.seed, warn)
}

// Run runs one pass of a phase, checking ctx between batches so that an
// interrupt leaves the model between two whole steps.
func (s *session) Run(ctx context.Context, req sdk.RunRequest, emit func(sdk.Event) error) error {
	src, err := s.source(req.Phase)
	if err != nil {
		return err
	}
	if req.Phase == sdk.PhaseInfer && s.cfg.Infer.VideoPath != "" {
		// Every pass lists video_path again: `zoo serve` puts each batch
		// of uploaded videos into its directory.
		defer delete(s.sources, sdk.PhaseInfer)
	}
	steps, clips := src.count()
	graphBatch := s.model.Config().BatchSize
	// Under MPI each rank evaluates its share of the list and rank 0
	// gathers the predictions and reports them all, in the list's order.
	gather := req.Phase != sdk.PhaseTrain && s.comm.Size() > 1
	var share evalShare
	if gather {
		total := []float64{float64(clips)}
		if err := s.comm.AllreduceSum64(total); err != nil {
			return err
		}
		clips = int(total[0])
		per := graphBatch / s.views()
		steps = (clips + per - 1) / per
	}
	// A data-parallel train pass keeps its ranks in step: each step starts
	// with an agreement (a rank that is interrupted, or whose host is
	// gone, says stop) and every rank stops at the same one, never
	// leaving another waiting in a collective (session.stopped). An emit
	// error waits for that agreement.
	lockstep := req.Phase == sdk.PhaseTrain && s.comm.Size() > 1
	emitErr := func() error { return nil }
	if lockstep {
		emit, emitErr = classifier.LockstepEmit(emit)
	}
	if err := emit(sdk.Event{Start: &sdk.Start{Steps: int64(steps), Samples: int64(clips)}}); err != nil {
		return err
	}
	clip := s.model.Config().InputSize() / graphBatch
	if req.Phase == sdk.PhaseTrain {
		if err := classifier.StartTrainPass(s.comm, &s.dev, s.model); err != nil {
			return err
		}
	}
	r, err := s.dev.Runner(s.model)
	if err != nil {
		return err
	}
	// A resumed train pass skips its first StartStep batches unread and
	// numbers its steps on from there (sdk.StepResumer).
	start := int64(0)
	if req.Phase == sdk.PhaseTrain {
		start = max(req.StartStep, 0)
	}
	iter := start
	from := 0
	if req.Phase == sdk.PhaseTrain {
		from = s.startAt(req.Epoch, start, src.batchSize())
		s.resumeAt = nil
		s.last = &position{Epoch: req.Epoch, Step: start, Order: from}
	}
	for b, err := range waited(src.epoch(ctx, req.Epoch, from)) {
		if errors.Is(err, classifier.ErrStopped) {
			return classifier.Stopped(ctx, s.comm, emitErr())
		}
		if err != nil {
			return err
		}
		if err := s.warnings.Flush(emit); err != nil {
			return err
		}
		perRank := 0.0 // the most clips a rank decoded for this step
		if lockstep {
			decoded := make([]float64, s.comm.Size())
			decoded[s.comm.Rank()] = float64(b.decoded)
			stop, sums, err := classifier.AgreeStep(s.comm, ctx.Err() != nil || emitErr() != nil, decoded)
			if err != nil {
				return err
			}
			if stop {
				return classifier.Stopped(ctx, s.comm, emitErr())
			}
			perRank = slices.Max(sums)
		} else if err := ctx.Err(); err != nil {
			return err
		}
		n := len(b.labels)
		if req.MaxSteps > 0 && iter-start >= req.MaxSteps {
			return nil
		}
		if req.Phase == sdk.PhaseTrain {
			lr := s.sched.At(int(req.GlobalStep + iter - start))
			seed := classifier.StepSeed(s.seed, req.Epoch, iter)
			var res resnet.Result
			if b.global > 0 {
				// The source read this rank's share of the global batch.
				n = b.global
				res, err = s.stepper.StepOn(s.dev.Active(), s.model, b.data, b.labels, lr, seed)
			} else {
				// This rank's share of the global batch, in rank order.
				lo, hi := dist.Split(n, s.comm.Rank(), s.comm.Size())
				res, err = s.stepper.StepOn(s.dev.Active(), s.model, b.data[lo*clip:hi*clip], b.labels[lo:hi], lr, seed)
			}
			if err != nil {
				return err
			}
			iter++
			s.last = &position{Epoch: req.Epoch, Step: iter, Order: b.next}
			var extra map[string]float64
			if s.comm.Size() > 1 {
				extra = map[string]float64{"allreduce_s": s.stepper.LastAllreduce.Seconds(), "clips_per_rank": perRank}
			}
			if err := classifier.EmitTrainExtra(emit, iter-1, n, res, lr, extra); err != nil {
				return err
			}
			continue
		}
		// Evaluation keeps every clip: a short last batch is padded to the
		// graph's size and the padding's outputs dropped (stored batch-norm
		// statistics make each clip's output independent of the others).
		in := classifier.Pad(b.data, graphBatch, clip)
		t := time.Now()
		res, err := r.Forward(resnet.Eval, in, nil)
		if err != nil {
			return err
		}
		if req.Phase == sdk.PhaseInfer {
			// Where an infer pass's time goes, summed by the host over the
			// pass (docs/plugins.md, Metrics): the reader's busy time, what
			// the forward passes waited for it, the forward passes.
			fwd := time.Since(t)
			m := map[string]float64{"decode_s": b.busy.Seconds(), "decode_wait_s": b.wait.Seconds(), "forward_s": fwd.Seconds()}
			if err := emit(sdk.Event{Step: &sdk.Step{Iter: iter, Samples: int64(n), Metrics: m}}); err != nil {
				return err
			}
		}
		k := s.cfg.Model.NumClasses
		probs := averageViews(res.Probs, k, s.views())
		if gather {
			share.Probs = append(share.Probs, probs[:n*k]...)
			share.IDs = append(share.IDs, b.ids...)
			share.Labels = append(share.Labels, b.labels...)
			if s.comm.Rank() == 0 {
				iter++
				continue
			}
			// The other ranks' hosts see their own share (and write it
			// into their private directories).
		}
		if err := classifier.EmitEval(emit, req.Phase, iter, probs, k, b.ids, b.labels); err != nil {
			return err
		}
		iter++
	}
	if err := s.warnings.Flush(emit); err != nil {
		return err
	}
	if gather {
		return s.gatherEval(ctx, req.Phase, share, graphBatch/s.views(), emit)
	}
	if req.Phase == sdk.PhaseTrain && s.stepper.Steps > 0 && s.comm.Size() > 1 {
		s.log.Info("gradient allreduce", "rank", s.comm.Rank(), "ranks", s.comm.Size(), "steps", s.stepper.Steps,
			"seconds_per_step", s.stepper.Allreduce.Seconds()/float64(s.stepper.Steps))
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
	if req.Phase == sdk.PhaseTrain && ctx.Err() == nil {
		s.last = nil // the epoch is whole: its checkpoint needs no position
	}
	return ctx.Err()
}

// conventions resolves MODEL's convention keys: "auto" takes those of the
// weights (--weights before --pretrain), Paddle's without any.
func conventions(m ModelConfig, ws map[string]string) (convert.Conventions, error) {
	from := convert.Paddle
	for _, use := range []string{sdk.UseWeights, sdk.UsePretrain} {
		if p := ws[use]; p != "" {
			c, err := classifier.WeightConventions(p)
			if err != nil {
				return convert.Conventions{}, err
			}
			from = c
			break
		}
	}
	pick := func(v, auto string) string {
		if v == "auto" || v == "" {
			return auto
		}
		return v
	}
	return convert.Conventions{
		ShiftDirection: pick(m.ShiftDirection, from.ShiftDirection),
		InferDropout:   pick(m.InferDropout, from.InferDropout),
		Consensus:      pick(m.Consensus, from.Consensus),
	}, nil
}

// views is the number of views per video of this session's evaluation
// (num_clips x num_crops of [TEST] or [INFER]); 1 in training.
func (s *session) views() int {
	switch s.mode {
	case sdk.ModeTest:
		return s.cfg.Test.views()
	case sdk.ModeInfer:
		return s.cfg.Infer.views()
	}
	return 1
}

// averageViews averages each video's views' probabilities (rows of k,
// views consecutive rows per video).
func averageViews(probs []float64, k, views int) []float64 {
	if views == 1 {
		return probs
	}
	out := make([]float64, len(probs)/views)
	for v := range len(out) / k {
		for j := range views {
			row := probs[(v*views+j)*k:][:k]
			for c, p := range row {
				out[v*k+c] += p / float64(views)
			}
		}
	}
	return out
}

// evalShare is one rank's evaluation outputs: per video, its averaged
// probabilities (NumClasses each), id and label.
type evalShare struct {
	Probs  []float64
	IDs    []string
	Labels []int
}

// gatherEval collects every rank's share at rank 0, which emits them in
// rank order (the list's order) in batches of per videos, as one process
// would; the other ranks have emitted their own share.
func (s *session) gatherEval(ctx context.Context, phase string, mine evalShare, per int, emit func(sdk.Event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := json.Marshal(mine)
	if err != nil {
		return err
	}
	all, err := s.comm.Gather(b, 0)
	if err != nil {
		return fmt.Errorf("gathering the ranks' predictions: %w", err)
	}
	if s.comm.Rank() != 0 {
		return nil
	}
	var full evalShare
	for r, b := range all {
		var sh evalShare
		if err := json.Unmarshal(b, &sh); err != nil {
			return fmt.Errorf("rank %d's predictions: %w", r, err)
		}
		full.Probs = append(full.Probs, sh.Probs...)
		full.IDs = append(full.IDs, sh.IDs...)
		full.Labels = append(full.Labels, sh.Labels...)
	}
	k := s.cfg.Model.NumClasses
	for i, iter := 0, int64(0); i < len(full.IDs); i, iter = i+per, iter+1 {
		j := min(i+per, len(full.IDs))
		var labels []int
		if len(full.Labels) == len(full.IDs) {
			labels = full.Labels[i:j]
		}
		if err := classifier.EmitEval(emit, phase, iter, full.Probs[i*k:j*k], k, full.IDs[i:j], labels); err != nil {
			return err
		}
	}
	return nil
}
