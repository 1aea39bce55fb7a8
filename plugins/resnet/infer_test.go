package resnet

import (
	"context"
	"math"
	"testing"

	"github.com/zoo-ml/zoo/sdk"
)

// TestInferMatchesRun: Infer on the built-in infer images, three of them
// through a graph of batch 2 (a full chunk and a padded one), answers what
// the infer pass predicts for them; a clip-shaped tensor is refused.
func TestInferMatchesRun(t *testing.T) {
	s := openTiny(t, sdk.ModeInfer, nil, nil)
	want := map[string][]float32{}
	for _, e := range collect(t, s, sdk.RunRequest{Phase: sdk.PhaseInfer}) {
		if e.Prediction != nil {
			want[e.Prediction.ID] = e.Prediction.Scores.Data
		}
	}
	const size, n = 32, 3
	sample := 3 * size * size
	in := make([]float32, n*sample)
	for i := 0; i < n; i++ {
		synthImage(in[i*sample:(i+1)*sample], splitInfer, i, size, s.cfg.Synthetic.Noise)
	}
	out, err := s.Infer(context.Background(), sdk.Tensor{Shape: []int64{n, 3, size, size}, Data: in})
	if err != nil {
		t.Fatal(err)
	}
	k := s.cfg.Model.NumClasses
	if len(out.Shape) != 2 || out.Shape[0] != n || out.Shape[1] != int64(k) || len(out.Data) != n*k {
		t.Fatalf("Infer answered shape %v with %d values", out.Shape, len(out.Data))
	}
	for i, id := range []string{"synthetic-0", "synthetic-1", "synthetic-2"} {
		w := want[id]
		if len(w) != k {
			t.Fatalf("the infer pass gave %v for %s", w, id)
		}
		for j := 0; j < k; j++ {
			if math.Abs(float64(out.Data[i*k+j]-w[j])) > 1e-6 {
				t.Errorf("%s: Infer %v, the infer pass %v", id, out.Data[i*k:(i+1)*k], w)
				break
			}
		}
	}
	_, err = s.Infer(context.Background(), sdk.Tensor{Shape: []int64{1, 1, 3, size, size}, Data: in[:sample]})
	if sdk.CodeOf(err) != sdk.CodeInvalidArgument {
		t.Errorf("Infer of a clip shape: %v, want InvalidArgument", err)
	}
}
