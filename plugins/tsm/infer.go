package tsm

import (
	"context"

	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
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
	r, err := s.runner()
	if err != nil {
		return sdk.Tensor{}, err
	}
	return classifier.InferBatches(ctx, in, int(in.Shape[0]), c.BatchSize, c.InputSize()/c.BatchSize, s.cfg.Model.NumClasses,
		func(x []float32) (resnet.Result, error) { return r.Forward(resnet.Eval, x, nil) })
}
