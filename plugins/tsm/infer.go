package tsm

import (
	"context"

	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/video"
)

var _ sdk.Inferer = (*session)(nil)

// Infer runs the evaluation graph on clips the host sends (`zoo serve`'s
// v2 infer endpoint): in is [N, seg_num, 3, H, W], already normalised as
// the reader normalises; the answer is the probabilities [N, num_classes].
// N may exceed the graph's batch: the clips run in graph-size chunks, the
// last one padded (stored batch-norm statistics make each clip's output
// independent of the others).
func (s *session) Infer(ctx context.Context, in sdk.Tensor) (sdk.Tensor, error) {
	c := s.model.Config()
	want := []int64{int64(c.SegNum), 3, int64(c.Height), int64(c.Width)}
	ok := len(in.Shape) == 5 && in.Shape[0] >= 1
	for i := 0; ok && i < 4; i++ {
		ok = in.Shape[i+1] == want[i]
	}
	if !ok {
		return sdk.Tensor{}, sdk.Errorf(sdk.CodeInvalidArgument, "input shape %v: want [N, %d, 3, %d, %d] with N >= 1", in.Shape, c.SegNum, c.Height, c.Width)
	}
	return s.dev.Infer(ctx, s.model, in)
}

var _ sdk.FileDecoder = (*session)(nil)

// Decode reads one video as an infer pass reads INFER.video_path's files
// (the same reader settings, views and sampling) and returns the clip
// tensor [views, seg_num, 3, H, W] without running the model: `zoo serve`
// decodes uploads with it while Infer runs the previous batch. It reads
// only what Open set (the sdk calls it concurrently with Infer and Run).
func (s *session) Decode(ctx context.Context, path string) (sdk.Decoded, error) {
	if s.mode != sdk.ModeInfer {
		return sdk.Decoded{}, sdk.Errorf(sdk.CodeFailedPrecondition, "decode %s: a %s session has no infer reader", path, s.mode)
	}
	m, rc := s.cfg.Model, s.cfg.Infer.ReaderConfig
	rc.BatchSize, rc.NumReaderThreads, rc.BufSize = 1, 1, 1
	src, err := newVideoSource(video.Infer, m, rc, []video.Item{{Path: path, Label: video.NoLabel, Where: path}}, s.seed, nil)
	if err != nil {
		return sdk.Decoded{}, err
	}
	// Epoch 0, as the host's infer pass (RunRequest.Epoch 0); infer
	// sampling draws nothing at random anyway.
	smp, err := src.r.Load(ctx, 0, 0)
	if err != nil {
		if ctx.Err() != nil {
			return sdk.Decoded{}, ctx.Err()
		}
		return sdk.Decoded{}, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
	}
	views := s.cfg.Infer.views()
	d := sdk.Decoded{
		Input:  sdk.Tensor{Shape: []int64{int64(views), int64(m.SegNum), int64(3 * m.SegLen), int64(rc.TargetSize), int64(rc.TargetSize)}, Data: smp.Data},
		Frames: make([]int64, len(smp.Indices)),
	}
	for i, j := range smp.Indices {
		d.Frames[i] = int64(j)
	}
	for c := range 3 {
		d.Mean = append(d.Mean, float32(m.ImageMean[c]))
		d.Std = append(d.Std, float32(m.ImageStd[c]))
	}
	return d, nil
}
