//go:build onednn

package resnet

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/internal/dnnl"
	"github.com/zoo-ml/zoo/nn/ops"
)

func grads32(m *Model) map[string][]float32 {
	g := map[string][]float32{}
	for _, p := range m.Params() {
		if p.Trainable {
			g[p.Name] = append([]float32(nil), p.Grad.Float32s()...)
		}
	}
	return g
}

// cosine is a.b / (|a| |b|), and relL2 |a-b| / |b|, over float64 sums.
func cosine(a, b []float32) float64 {
	var d, na, nb float64
	for i := range a {
		d += float64(a[i]) * float64(b[i])
		na += float64(a[i]) * float64(a[i])
		nb += float64(b[i]) * float64(b[i])
	}
	return d / math.Sqrt(na*nb)
}

func relL2(a, b []float32) float64 {
	var d, n float64
	for i := range b {
		d += (float64(a[i]) - float64(b[i])) * (float64(a[i]) - float64(b[i]))
		n += float64(b[i]) * float64(b[i])
	}
	return math.Sqrt(d / n)
}

// TestTrainStepBF16: with precision bf16 a training pass of a small TSM
// (the built-in job's TSM-ResNet-18, width 16, 8 segments of 32x32, two
// clips), its convolutions in bf16 on oneDNN and everything else in fp32,
// gives the fp32 pass's loss within 1%, and gradients that point the fp32
// ones' way: the fc weights' within 10% (Euclidean), every parameter's at
// a cosine >= 0.7, all of them together >= 0.9. The gradients' tolerance
// is that of the model, not of bf16: rounding each conv's operands to 8
// significant bits perturbs them by 2^-9 relative, and this randomly
// initialised batch-normalised network amplifies any such perturbation on
// its way back (gradient explosion at initialisation, Yang et al. 2019):
// the fp32 pass itself, on the input scaled by 1 + 0.004 N(0,1), moves its
// gradients as far (measured: loss 0.03%, fc 2.1%, cosines >= 0.91 and 0.96
// overall; bf16: 0.25%, 2.9%, >= 0.82 and 0.94; in TSM-R50's depth both
// decorrelate entirely, hence ResNet-18 here). A bf16 kernel computing
// something else gives cosines about 0. The parameters stay fp32 (a
// step's updated filters are not bf16 values), and a few bf16 steps on
// one batch lower the loss. Not parallel: the precision is the
// process's. Fails, rather than skips, without AVX512_BF16.
func TestTrainStepBF16(t *testing.T) {
	if !dnnl.HasBF16() {
		t.Fatal("oneDNN reports no AVX512_BF16 on this CPU: this project's machines have it")
	}
	cfg := Config{Depth: 18, NumClasses: 5, SegNum: 8, TemporalShift: true, BaseWidth: 16,
		BatchSize: 2, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 1}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	in := randomInput(cfg.InputSize(), 10)
	labels := []int{1, 3}
	defer ops.SetPrecision("fp32")
	pass := func(precision string) (float64, map[string][]float32) {
		t.Helper()
		if err := ops.SetPrecision(precision); err != nil {
			t.Fatal(err)
		}
		m.SeedDropout(4)
		res, err := m.Forward(Train, in, labels)
		if err != nil {
			t.Fatal(err)
		}
		return res.Loss, grads32(m)
	}
	loss32, g32 := pass("fp32")
	lossBF, gBF := pass("bf16")
	t.Logf("loss fp32 %.6f, bf16 %.6f", loss32, lossBF)
	if d := math.Abs(lossBF-loss32) / loss32; !(d <= 0.01) {
		t.Errorf("loss bf16 %v, fp32 %v: relative difference %.3g > 0.01", lossBF, loss32, d)
	}
	if e := relL2(gBF["fc_0.w_0"], g32["fc_0.w_0"]); !(e <= 0.1) {
		t.Errorf("fc_0.w_0: bf16 gradient off the fp32 one by %.3g of its norm (want <= 0.1)", e)
	}
	var all32, allBF []float32
	worst, worstName, same := 2.0, "", 0
	for name, want := range g32 {
		got := gBF[name]
		c := cosine(got, want)
		if !(c >= 0.7) {
			t.Errorf("%s: bf16 gradient at cosine %.3f to the fp32 one (want >= 0.7)", name, c)
		}
		if c < worst {
			worst, worstName = c, name
		}
		if relL2(got, want) == 0 {
			same++
		}
		all32, allBF = append(all32, want...), append(allBF, got...)
	}
	c := cosine(allBF, all32)
	t.Logf("gradients: cosine %.4f overall, lowest %.4f (%s)", c, worst, worstName)
	if !(c >= 0.9) {
		t.Errorf("all gradients: bf16 at cosine %.4f to fp32 (want >= 0.9)", c)
	}
	if same == len(g32) || lossBF == loss32 {
		t.Fatal("the bf16 pass gave exactly the fp32 loss and gradients: it did not run in bf16")
	}

	// Steps in bf16: the master weights stay fp32, and go downhill on
	// the batch they see.
	if err := ops.SetPrecision("bf16"); err != nil {
		t.Fatal(err)
	}
	var losses []float64
	for range 4 {
		m.SeedDropout(4)
		res, err := m.TrainStep(in, labels, 0.02)
		if err != nil {
			t.Fatal(err)
		}
		losses = append(losses, res.Loss)
	}
	t.Logf("bf16 losses %v", losses)
	if !(losses[3] < losses[0]) {
		t.Errorf("bf16 losses %v: 4 steps on one batch did not lower it", losses)
	}
	p, _ := m.Param("res3a_branch2a_weights")
	bfValues := 0
	for _, w := range p.Value.Float32s() {
		if math.Float32bits(w)&0xffff == 0 {
			bfValues++
		}
	}
	if n := len(p.Value.Float32s()); p.Value.Dtype() != tensor.Float32 || bfValues > n/100 {
		t.Errorf("%s: %v, %d of %d values bf16-representable after bf16 steps: the master weights must stay fp32", p.Name, p.Value.Dtype(), bfValues, n)
	}
}
