package resnet

import (
	"context"

	"github.com/zoo-ml/zoo/sdk"
)

var _ sdk.Inferer = (*session)(nil)

// Infer runs the evaluation graph on images the host sends (`zoo serve`'s
// v2 infer endpoint): in is [N, 3, H, W], already normalised as the
// reader normalises (resize_short, centre crop, (pixel/255 - mean) / std);
// the answer is the probabilities [N, num_classes]. N may exceed the
// graph's batch: the images run in graph-size chunks, the last one padded
// (stored batch-norm statistics make each image's output independent of
// the others).
func (s *session) Infer(ctx context.Context, in sdk.Tensor) (sdk.Tensor, error) {
	c := s.model.Config()
	ok := len(in.Shape) == 4 && in.Shape[0] >= 1 && in.Shape[1] == 3 &&
		in.Shape[2] == int64(c.Height) && in.Shape[3] == int64(c.Width)
	if !ok {
		return sdk.Tensor{}, sdk.Errorf(sdk.CodeInvalidArgument, "input shape %v: want [N, 3, %d, %d] with N >= 1", in.Shape, c.Height, c.Width)
	}
	return s.dev.Infer(ctx, s.model, in)
}
