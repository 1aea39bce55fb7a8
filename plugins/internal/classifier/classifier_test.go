package classifier

import (
	"math"
	"slices"
	"testing"
)

func TestEvalMetrics(t *testing.T) {
	// Three rows over six classes; a third row of padding is ignored.
	probs := []float64{
		0.5, 0.1, 0.1, 0.1, 0.1, 0.1, // label 0: top-1
		0.3, 0.25, 0.2, 0.1, 0.1, 0.05, // label 4: rank 4 (a tie breaks by index), top-5
		0.01, 0.19, 0.2, 0.2, 0.2, 0.2, // label 0: rank 5, neither top-1 nor top-5
		9, 9, 9, 9, 9, 9, // padding
	}
	loss, top1, top5 := EvalMetrics(probs, 6, []int{0, 4, 0})
	want := -(math.Log(0.5) + math.Log(0.1) + math.Log(0.01)) / 3
	if math.Abs(loss-want) > 1e-12 || top1 != 1.0/3 || top5 != 2.0/3 {
		t.Errorf("EvalMetrics = %v, %v, %v; want %v, 1/3, 2/3", loss, top1, top5, want)
	}
}

func TestPad(t *testing.T) {
	d := []float32{1, 2, 3, 4}
	if got := Pad(d, 2, 2); &got[0] != &d[0] {
		t.Error("a full batch was copied")
	}
	if got := Pad(d, 3, 2); !slices.Equal(got, []float32{1, 2, 3, 4, 0, 0}) {
		t.Errorf("Pad = %v", got)
	}
	if err := CheckDepth(20); err == nil {
		t.Error("depth 20 accepted")
	}
}
