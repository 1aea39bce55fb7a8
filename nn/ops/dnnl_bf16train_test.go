//go:build onednn

package ops

import (
	"math/rand"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// TestOneDNNTrainConvBF16: under precision bf16 the training convolutions
// (forward, backward data, backward weights) run on oneDNN's bf16 jit
// kernels (bfloat16 x, w and dy, fp32 accumulation and outputs) and stay
// within bfloat16's rounding of the fp32 kernels. It fails, rather than
// skips, on a CPU without AVX512_BF16 (this project's machines have it).
func TestOneDNNTrainConvBF16(t *testing.T) {
	requireDNNL(t)
	if err := SetPrecision("bf16"); err != nil {
		t.Fatal(err)
	}
	defer SetPrecision("fp32")
	for i, tc := range dnnlCases {
		tsmShape := i >= len(convCases)
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			rng := rand.New(rand.NewSource(17))
			x, w := rand32(rng, g.N, g.C, g.H, g.W), rand32(rng, g.K, g.C, g.R, g.S)
			dy := rand32(rng, g.N, g.K, g.OH(), g.OW())
			mk := func() (*convOp, *convDataGradOp, *convFilterGradOp) {
				fwd := &convOp{base: newBase("c"), g: g, dataGrad: true}
				bd := &convDataGradOp{base: newBase("d"), g: g}
				bw := &convFilterGradOp{base: newBase("w"), g: g}
				fwd.out, bd.out, bw.out = tensor.Shape{g.N, g.K, g.OH(), g.OW()}, tensor.Shape{g.N, g.C, g.H, g.W}, tensor.Shape{g.K, g.C, g.R, g.S}
				return fwd, bd, bw
			}
			fwd, bd, bw := mk()
			y, dx, dw := do32(t, fwd, x, w), do32(t, bd, w, dy), do32(t, bw, x, dy)
			for _, d := range []struct {
				what string
				dn   *dnnlConv
			}{{"forward", &fwd.dn}, {"backward data", &bd.dn}, {"backward weights", &bw.dn}} {
				if d.dn.p == nil || !d.dn.spec.BF16 {
					t.Fatalf("%s did not run on oneDNN in bf16 (spec %+v, err %v)", d.what, d.dn.spec, d.dn.err)
				}
				// TSM-ResNet's shapes get oneDNN's direct bf16 kernels;
				// the tiny ones of convCases (fewer than 16 output
				// channels) may get its bf16 gemm, never "ref".
				impl := d.dn.p.Impl()
				if strings.HasPrefix(impl, "ref") || (tsmShape && !strings.HasPrefix(impl, "jit_bf16")) {
					t.Errorf("%s runs %s, want a bf16 jit kernel", d.what, impl)
				}
			}
			t.Logf("bf16: forward %s, backward data %s, backward weights %s", fwd.dn.p.Impl(), bd.dn.p.Impl(), bw.dn.p.Impl())
			bf16.Store(false)
			f32, bd32, bw32 := mk()
			py, pdx, pdw := do32(t, f32, x, w), do32(t, bd32, w, dy), do32(t, bw32, x, dy)
			bf16.Store(true)
			if f32.dn.spec.BF16 || bd32.dn.spec.BF16 || bw32.dn.spec.BF16 {
				t.Fatal("the fp32 reference ran in bf16")
			}
			// Two operands rounded to 8 significant bits: a relative
			// error of about 2^-8 per product, averaged over the sums.
			for _, c := range []struct {
				what      string
				got, want []float32
			}{{"forward y", y, py}, {"backward data dx", dx, pdx}, {"backward weights dw", dw, pdw}} {
				closeRel(t, c.what+" bf16", c.got, c.want, 2e-2)
				same := 0
				for i := range c.got {
					if c.got[i] == c.want[i] {
						same++
					}
				}
				if same == len(c.got) {
					t.Fatalf("%s: bf16 gave exactly the fp32 result: not bf16", c.what)
				}
			}
		})
	}
}
