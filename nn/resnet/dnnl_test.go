//go:build onednn

package resnet

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/internal/dnnl"
	"github.com/zoo-ml/zoo/nn/ops"
)

// TestEvalReorders pins the oneDNN reorders of a TSM-R50 inference
// forward (narrow and small, same graph as the real one) through
// nn/internal/dnnl's counters, in fp32 and bf16, for the default graph
// (activations in nChw16c after the stem) and the NCHW one (m.nchw,
// whose convs hand their outputs on through oneDNN's ring). Not
// parallel: the counters are the process's.
//
// Blocked: every conv after the stem reads and writes nChw16c itself,
// so fp32 reorders only the activations on the NCHW side: in, the first
// block's shifted input (branch2a) and its input (the projection
// shortcut), both after the Go max pooling (the stem's 3 input channels
// are read as NCHW); out, the stem's output (the max pooling reads
// NCHW). The last block's output goes to the global pooling blocked.
// bf16 converts every conv's fp32 source to bf16 (In: all 53), and
// oneDNN runs each branch2c (1x1 with the sum post-op) in NHWC, so its
// summand is preloaded (Sum: 16) and its output reordered back to
// nChw16c (Out: 16, plus the stem's).
//
// NCHW (the ring): the outputs of the convs go to the next convs in
// oneDNN's blocked layout only (no NCHW copy) where only convs read them,
// each block's residual summand is added in place in its kept blocked
// output, and branch2a's shift moves whole channel blocks of the kept
// output (BaseWidth 32: the shifted channel ranges fill 16-channel
// blocks, as in the real model), so that the only activations reordered
// in are those after the Go max pooling, and the only outputs written
// back to NCHW are those a Go op reads.
func TestEvalReorders(t *testing.T) {
	cfg := Config{Depth: 50, NumClasses: 5, SegNum: 2, TemporalShift: true, BaseWidth: 32,
		BatchSize: 1, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 1}
	blk, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer blk.Close()
	ring, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ring.Close()
	ring.nchw = true
	in := randomInput(cfg.InputSize(), 3)
	const blocks, convs = 16, 53
	for _, tc := range []struct {
		name, precision string
		m               *Model
		want            dnnl.Reorders
		atMost          bool
	}{
		{"blocked/fp32", "fp32", blk, dnnl.Reorders{In: 2, Out: 1, Weights: convs}, false},
		{"blocked/bf16", "bf16", blk, dnnl.Reorders{In: convs, Out: 1 + blocks, Weights: convs, Sum: blocks}, false},
		// fp32: the first block's input (the Go max pooling's output),
		// shifted and read by branch2a and the first shortcut; the
		// stem (3 channels) reads NCHW; the other branch2a shift the
		// previous block's kept output. Out: the stem's and the last
		// block's (the Go poolings read them); the other branch2c and
		// the shortcuts are read only from their kept outputs.
		{"nchw/fp32", "fp32", ring, dnnl.Reorders{In: 2, Out: 2, Weights: convs}, false},
		// bf16: the activations in and out as fp32 (plus the image
		// and, where oneDNN picks another layout per shape, a few more);
		// the kept outputs read in bf16 or another layout (the shifted
		// inputs, branch2b's and branch2c's, the shortcuts', the
		// summands of branch2c in NHWC) are reordered from the ring.
		// oneDNN's layout choices vary with the shapes, so this checks
		// upper bounds.
		{"nchw/bf16", "bf16", ring, dnnl.Reorders{In: 6, Out: 2, Weights: convs, Ring: 2*blocks + 6}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.precision == "bf16" && !dnnl.HasBF16() {
				t.Fatal("oneDNN reports no AVX512_BF16 on this CPU: this project's machines have it")
			}
			if err := ops.SetPrecision(tc.precision); err != nil {
				t.Fatal(err)
			}
			defer ops.SetPrecision("fp32")
			for run := 0; run < 2; run++ {
				r0 := dnnl.ReorderCounts()
				if _, err := tc.m.Forward(Eval, in, nil); err != nil {
					t.Fatal(err)
				}
				d := dnnl.ReorderCounts().Sub(r0)
				if tc.atMost {
					w := tc.want
					if d.In > w.In || d.Out > w.Out || d.Weights > w.Weights || d.Sum > w.Sum || d.Ring > w.Ring {
						t.Errorf("run %d: reorders per forward %+v, want at most %+v", run, d, w)
					}
					continue
				}
				if d != tc.want {
					t.Errorf("run %d: reorders per forward %+v, want %+v", run, d, tc.want)
				}
			}
		})
	}
}

// TestRingSlotBound: outputs larger than ops.RingSlotMaxBytes are not
// kept in oneDNN's ring (written as NCHW, reordered by their readers),
// and the forward pass gives the same probabilities as with every
// output kept. On the NCHW graph (m.nchw: a blocked one keeps nothing).
// Not parallel: the bound and the counters are the process's.
func TestRingSlotBound(t *testing.T) {
	cfg := Config{Depth: 50, NumClasses: 5, SegNum: 2, TemporalShift: true, BaseWidth: 32,
		BatchSize: 1, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 1}
	in := randomInput(cfg.InputSize(), 3)
	forward := func(bound int64) ([]float64, dnnl.Reorders) {
		t.Helper()
		defer func(b int64) { ops.RingSlotMaxBytes = b }(ops.RingSlotMaxBytes)
		ops.RingSlotMaxBytes = bound
		m, err := New(cfg) // PlanReaders reads the bound when the graph is planned
		if err != nil {
			t.Fatal(err)
		}
		m.nchw = true
		defer m.Close()
		if _, err := m.Forward(Eval, in, nil); err != nil { // warm-up: primitives made
			t.Fatal(err)
		}
		r0 := dnnl.ReorderCounts()
		res, err := m.Forward(Eval, in, nil)
		if err != nil {
			t.Fatal(err)
		}
		return append([]float64(nil), res.Probs...), dnnl.ReorderCounts().Sub(r0)
	}
	all, rAll := forward(ops.RingSlotMaxBytes)
	// Stage 1's outputs (128 channels x 8 x 8 x 2 frames, 64 KiB) exceed
	// 40 KiB; the later stages' fit.
	some, rSome := forward(40 << 10)
	if rSome.Out <= rAll.Out || rSome.In <= rAll.In {
		t.Errorf("with a 40 KiB bound: reorders %+v, want more activations in and out than with every output kept (%+v)", rSome, rAll)
	}
	for i := range all {
		if d := math.Abs(all[i] - some[i]); d > 1e-6 {
			t.Fatalf("probability %d: %g with every output kept, %g with the bound (|diff| %g)", i, all[i], some[i], d)
		}
	}
}

// TestRingNarrowChannels: convolutions whose channels do not fill
// oneDNN's 16-channel blocks (base width 4: 4, 8 channels) give through
// the kept-output ring of the NCHW graph (m.nchw) what they give without
// it (ops.RingSlotMaxBytes 0: every output written as NCHW, which the
// plain kernels' tests pin), and so does the default graph, where only
// the convs with whole 16-channel blocks write nChw16c (NCHW and blocked
// convs reading each other).
func TestRingNarrowChannels(t *testing.T) {
	for _, cfg := range []Config{
		{Depth: 18, NumClasses: 5, SegNum: 1, BaseWidth: 4, BatchSize: 2, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 1},
		{Depth: 50, NumClasses: 5, SegNum: 1, BaseWidth: 4, BatchSize: 2, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 1},
		{Depth: 50, NumClasses: 5, SegNum: 2, TemporalShift: true, BaseWidth: 8, BatchSize: 1, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 1},
	} {
		in := randomInput(cfg.InputSize(), 5)
		forward := func(bound int64, nchw bool) []float64 {
			t.Helper()
			defer func(b int64) { ops.RingSlotMaxBytes = b }(ops.RingSlotMaxBytes)
			ops.RingSlotMaxBytes = bound
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			m.nchw = nchw
			defer m.Close()
			res, err := m.Forward(Eval, in, nil)
			if err != nil {
				t.Fatal(err)
			}
			return append([]float64(nil), res.Probs...)
		}
		ring, plain, mixed := forward(ops.RingSlotMaxBytes, true), forward(0, true), forward(ops.RingSlotMaxBytes, false)
		for i := range ring {
			if d := math.Abs(ring[i] - plain[i]); d > 1e-5 {
				t.Errorf("R%d base width %d: probability %d %g through the ring, %g without (|diff| %g)", cfg.Depth, cfg.BaseWidth, i, ring[i], plain[i], d)
				break
			}
			if d := math.Abs(mixed[i] - plain[i]); d > 1e-5 {
				t.Errorf("R%d base width %d: probability %d %g in the default graph, %g on NCHW without the ring (|diff| %g)", cfg.Depth, cfg.BaseWidth, i, mixed[i], plain[i], d)
				break
			}
		}
	}
}
