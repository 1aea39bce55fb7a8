//go:build zoocuda

package cuda

import (
	"math"
	"math/rand"
	"os"
	"sync"
	"testing"

	"github.com/zoo-ml/zoo/nn/ops"
)

var (
	devOnce, emuOnce sync.Once
	testDev, testEmu *Device
	devErr, emuErr   error
	emuDir           string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if emuDir != "" {
		os.RemoveAll(emuDir)
	}
	os.Exit(code)
}

// forDevices runs twins on the GPU (skipped without one, unless
// ZOO_REQUIRE_GPU is set) and on the CPU emulator of the kernels
// (skipped without a C compiler).
func forDevices(t *testing.T, twins func(*testing.T, *Device)) {
	t.Run("gpu", func(t *testing.T) {
		devOnce.Do(func() { testDev, devErr = Open(0) })
		if devErr != nil && os.Getenv("ZOO_REQUIRE_GPU") != "" {
			t.Fatalf("ZOO_REQUIRE_GPU is set but the GPU does not open: %v", devErr)
		}
		if devErr != nil {
			t.Skipf("no usable GPU (%v): the GPU twins run on a device machine, see docs/gpu.md", devErr)
		}
		twins(t, testDev)
	})
	t.Run("emulator", func(t *testing.T) {
		emuOnce.Do(func() {
			if emuDir, emuErr = os.MkdirTemp("", "zoo-emu"); emuErr == nil {
				testEmu, emuErr = OpenEmulator(emuDir)
			}
		})
		if emuErr != nil {
			t.Skipf("no kernel emulator: %v", emuErr)
		}
		twins(t, testEmu)
	})
}

func randn(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// up uploads v into a new buffer the test frees at its end.
func up(t *testing.T, d *Device, v []float32) *Buf {
	t.Helper()
	b, err := d.Alloc(max(len(v), 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.lock(); d.Free(b); unlock() })
	if err := d.Upload(b, v); err != nil {
		t.Fatal(err)
	}
	return b
}

func empty(t *testing.T, d *Device, n int) *Buf { return up(t, d, make([]float32, n)) }

func down(t *testing.T, d *Device, b *Buf, n int) []float32 {
	t.Helper()
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	v := make([]float32, n)
	if err := d.Download(v, b); err != nil {
		t.Fatal(err)
	}
	return v
}

// relErr is max|got-want| / max(max|want|, 1e-6).
func relErr(got, want []float32) float64 {
	var num, den float64
	for i := range want {
		num = max(num, math.Abs(float64(got[i])-float64(want[i])))
		den = max(den, math.Abs(float64(want[i])))
	}
	return num / max(den, 1e-6)
}

func expect(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	if e := relErr(got, want); e > tol || math.IsNaN(e) {
		t.Errorf("%s: relative error %.3g > %.g", name, e, tol)
	}
}

func TestConvTwins(t *testing.T) { forDevices(t, convTwins) }

func convTwins(t *testing.T, d *Device) {
	d.lock()
	defer unlock()
	for _, tc := range []struct {
		name string
		g    ops.ConvGeom
	}{
		{"stem7x7s2", ops.ConvGeom{N: 3, C: 3, H: 23, W: 19, K: 8, R: 7, S: 7, Stride: 2, Pad: 3}},
		{"3x3s1", ops.ConvGeom{N: 4, C: 5, H: 9, W: 9, K: 6, R: 3, S: 3, Stride: 1, Pad: 1}},
		{"3x3s2", ops.ConvGeom{N: 2, C: 4, H: 10, W: 11, K: 7, R: 3, S: 3, Stride: 2, Pad: 1}},
		{"1x1", ops.ConvGeom{N: 5, C: 6, H: 7, W: 7, K: 9, R: 1, S: 1, Stride: 1}},
		{"1x1s2", ops.ConvGeom{N: 2, C: 6, H: 8, W: 8, K: 4, R: 1, S: 1, Stride: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// a subtest is a new goroutine: make the context current on its thread
			d.lock()
			defer unlock()
			g := tc.g
			r := rand.New(rand.NewSource(1))
			nx, nw, ny := g.N*g.C*g.H*g.W, g.K*g.C*g.R*g.S, g.N*g.K*g.OH()*g.OW()
			x, w, dy := randn(r, nx), randn(r, nw), randn(r, ny)
			y, dx, dw := make([]float32, ny), make([]float32, nx), make([]float32, nw)
			ops.ConvForward(g, x, w, y, nil)
			ops.ConvBackwardData(g, w, dy, dx, nil)
			ops.ConvBackwardFilter(g, x, dy, dw, nil)
			need := chunk(g) * max(g.C*g.R*g.S*g.OH()*g.OW(), g.C*g.H*g.W, g.K*g.OH()*g.OW())
			sc := &Scratch{Col: empty(t, d, need), T: empty(t, d, need)}
			bx, bw, bdy := up(t, d, x), up(t, d, w), up(t, d, dy)
			by, bdx, bdw := empty(t, d, ny), empty(t, d, nx), empty(t, d, nw)
			if err := d.ConvForward(g, bx, bw, by, sc); err != nil {
				t.Fatal(err)
			}
			if err := d.ConvBackwardData(g, bw, bdy, bdx, sc); err != nil {
				t.Fatal(err)
			}
			if err := d.ConvBackwardFilter(g, bx, bdy, bdw, sc); err != nil {
				t.Fatal(err)
			}
			expect(t, "y", down(t, d, by, ny), y, 1e-5)
			expect(t, "dx", down(t, d, bdx, nx), dx, 1e-5)
			expect(t, "dw", down(t, d, bdw, nw), dw, 1e-5)
		})
	}
}

func TestBNTwins(t *testing.T) { forDevices(t, bnTwins) }

func bnTwins(t *testing.T, d *Device) {
	d.lock()
	defer unlock()
	for _, train := range []bool{true, false} {
		for _, relu := range []bool{true, false} {
			n, c, hw := 3, 5, 17
			r := rand.New(rand.NewSource(2))
			x, dy := randn(r, n*c*hw), randn(r, n*c*hw)
			scale, offset := randn(r, c), randn(r, c)
			rm, rv := randn(r, c), make([]float32, c)
			for i := range rv {
				rv[i] = 0.5 + r.Float32()
				x[i] += 3 // a mean far from 0
			}
			y, mean, invstd, va := make([]float32, n*c*hw), make([]float32, c), make([]float32, c), make([]float32, c)
			wantRM, wantRV := append([]float32(nil), rm...), append([]float32(nil), rv...)
			if train {
				ops.BNForwardTrain(n, c, hw, 1e-5, relu, x, scale, offset, y, mean, invstd, va)
				for i := range wantRM {
					wantRM[i] = 0.9*wantRM[i] + (1-float32(0.9))*mean[i]
					wantRV[i] = 0.9*wantRV[i] + (1-float32(0.9))*va[i]
				}
			} else {
				ops.BNForwardEval(n, c, hw, 1e-5, relu, x, scale, offset, rm, rv, y)
				copy(mean, rm)
				for i, v := range rv {
					invstd[i] = float32(1 / math.Sqrt(float64(v)+1e-5))
				}
			}
			dx, ds, db := make([]float32, n*c*hw), make([]float32, c), make([]float32, c)
			ops.BNBackward(n, c, hw, train, relu, x, y, dy, scale, mean, invstd, dx, ds, db)

			st := &BNStats{Mean: empty(t, d, c), Invstd: empty(t, d, c), A: empty(t, d, c), B: empty(t, d, c)}
			bx, bs, bo, brm, brv := up(t, d, x), up(t, d, scale), up(t, d, offset), up(t, d, rm), up(t, d, rv)
			by, bdy, bdx, bds, bdb := empty(t, d, n*c*hw), up(t, d, dy), empty(t, d, n*c*hw), empty(t, d, c), empty(t, d, c)
			var err error
			if train {
				err = d.BNForwardTrain(n, c, hw, 1e-5, 0.9, relu, bx, bs, bo, by, brm, brv, st)
			} else {
				err = d.BNForwardEval(n, c, hw, 1e-5, relu, bx, bs, bo, brm, brv, by, st)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := d.BNBackward(n, c, hw, train, relu, bx, by, bdy, bs, st, bdx, bds, bdb); err != nil {
				t.Fatal(err)
			}
			expect(t, "y", down(t, d, by, n*c*hw), y, 1e-5)
			expect(t, "running mean", down(t, d, brm, c), wantRM, 1e-6)
			expect(t, "running variance", down(t, d, brv, c), wantRV, 1e-6)
			expect(t, "dx", down(t, d, bdx, n*c*hw), dx, 1e-5)
			expect(t, "dscale", down(t, d, bds, c), ds, 1e-5)
			expect(t, "doffset", down(t, d, bdb, c), db, 1e-5)
		}
	}
}

func TestPoolShiftTwins(t *testing.T) { forDevices(t, poolShiftTwins) }

func poolShiftTwins(t *testing.T, d *Device) {
	d.lock()
	defer unlock()
	r := rand.New(rand.NewSource(3))
	nc, h, w := 6, 13, 12
	oh, ow := (h+2-3)/2+1, (w+2-3)/2+1
	x, dy := randn(r, nc*h*w), randn(r, nc*oh*ow)
	y, am, dx := make([]float32, nc*oh*ow), make([]int32, nc*oh*ow), make([]float32, nc*h*w)
	ops.MaxPoolForward(nc, h, w, 3, 2, 1, x, y, am)
	ops.MaxPoolBackward(nc, h*w, oh*ow, am, dy, dx)
	bx, by, bam, bdy, bdx := up(t, d, x), empty(t, d, nc*oh*ow), empty(t, d, nc*oh*ow), up(t, d, dy), empty(t, d, nc*h*w)
	if err := d.MaxPoolForward(nc, h, w, 3, 2, 1, bx, by, bam); err != nil {
		t.Fatal(err)
	}
	if err := d.MaxPoolBackward(nc, h, w, 3, 2, 1, bam, bdy, bdx); err != nil {
		t.Fatal(err)
	}
	expect(t, "maxpool y", down(t, d, by, nc*oh*ow), y, 0)
	expect(t, "maxpool dx", down(t, d, bdx, nc*h*w), dx, 1e-6)

	nt, tt, c, hw := 6, 3, 16, 5
	c1, c2 := int(float64(c)/8), int(float64(c)*2/8) // ops.TemporalShift's split
	xs := randn(r, nt*c*hw)
	for _, back := range []bool{false, true} {
		want := make([]float32, len(xs))
		ops.Shift(nt, tt, c, hw, c1, c2, back, xs, want)
		bys := empty(t, d, len(xs))
		if err := d.Shift(nt, tt, c, hw, c1, c2, back, up(t, d, xs), bys); err != nil {
			t.Fatal(err)
		}
		expect(t, "shift", down(t, d, bys, len(xs)), want, 0)
	}
}

// TestHeadTwins checks the kernels whose CPU twins nn/ops keeps private
// against the same loops written out here.
func TestHeadTwins(t *testing.T) { forDevices(t, headTwins) }

func headTwins(t *testing.T, d *Device) {
	d.lock()
	defer unlock()
	r := rand.New(rand.NewSource(4))
	n, tt, f, k, hw := 2, 3, 7, 5, 4
	nt := n * tt
	x := randn(r, nt*f*hw)
	// global average pool
	gap := make([]float32, nt*f)
	for p := range gap {
		var s float64
		for _, v := range x[p*hw : (p+1)*hw] {
			s += float64(v)
		}
		gap[p] = float32(s / float64(hw))
	}
	bgap := empty(t, d, nt*f)
	if err := d.GlobalAvgPool(nt*f, hw, false, up(t, d, x), bgap); err != nil {
		t.Fatal(err)
	}
	expect(t, "gap", down(t, d, bgap, nt*f), gap, 1e-7)
	// segment mean
	seg := make([]float32, n*f)
	for i := 0; i < n; i++ {
		for j := 0; j < f; j++ {
			var s float64
			for u := 0; u < tt; u++ {
				s += float64(gap[(i*tt+u)*f+j])
			}
			seg[i*f+j] = float32(s / float64(tt))
		}
	}
	bseg := empty(t, d, n*f)
	if err := d.SegmentMean(n, tt, f, false, bgap, bseg); err != nil {
		t.Fatal(err)
	}
	expect(t, "segment mean", down(t, d, bseg, n*f), seg, 1e-7)
	// fc
	w, b := randn(r, f*k), randn(r, k)
	logits := make([]float32, n*k)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			s := b[j]
			for c := 0; c < f; c++ {
				s += seg[i*f+c] * w[c*k+j]
			}
			logits[i*k+j] = s
		}
	}
	blog, bw := empty(t, d, n*k), up(t, d, w)
	if err := d.Linear(n, f, k, bseg, bw, up(t, d, b), blog); err != nil {
		t.Fatal(err)
	}
	expect(t, "linear", down(t, d, blog, n*k), logits, 1e-5)
	// softmax cross entropy and its gradient
	labels := []int{3, 0}
	probs, grad := make([]float32, n*k), make([]float32, n*k)
	var loss float64
	for i := 0; i < n; i++ {
		m := math.Inf(-1)
		for _, v := range logits[i*k : (i+1)*k] {
			m = max(m, float64(v))
		}
		var s float64
		for _, v := range logits[i*k : (i+1)*k] {
			s += math.Exp(float64(v) - m)
		}
		for j := 0; j < k; j++ {
			pj := math.Exp(float64(logits[i*k+j])-m) / s
			probs[i*k+j] = float32(pj)
			oh := 0.0
			if j == labels[i] {
				oh = 1
				loss -= math.Log(pj)
			}
			grad[i*k+j] = float32((pj - oh) / float64(n))
		}
	}
	lab := empty(t, d, n)
	if err := d.uploadBytes(lab, []byte{3, 0, 0, 0, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	bprobs, bloss, bgrad := empty(t, d, n*k), empty(t, d, 2*n), empty(t, d, n*k)
	if err := d.SoftmaxCE(n, k, blog, lab, bprobs, bloss, bgrad); err != nil {
		t.Fatal(err)
	}
	expect(t, "probs", down(t, d, bprobs, n*k), probs, 1e-6)
	expect(t, "softmax grad", down(t, d, bgrad, n*k), grad, 1e-6)
	l := down(t, d, bloss, 2*n)
	var gl float64
	for i := 0; i < n; i++ {
		gl += math.Float64frombits(uint64(math.Float32bits(l[2*i])) | uint64(math.Float32bits(l[2*i+1]))<<32)
	}
	if math.Abs(gl-loss) > 1e-6*max(1, loss) { // the reference logits are not bit-identical to the GPU's
		t.Errorf("loss %v, want %v", gl, loss)
	}
	// fc backward
	dx, dw, db := make([]float32, n*f), make([]float32, f*k), make([]float32, k)
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			g := grad[i*k+j]
			db[j] += g
			for c := 0; c < f; c++ {
				dx[i*f+c] += g * w[c*k+j]
				dw[c*k+j] += seg[i*f+c] * g
			}
		}
	}
	bdx, bdw, bdb := empty(t, d, n*f), empty(t, d, f*k), empty(t, d, k)
	if err := d.LinearBackward(n, f, k, bseg, bw, bgrad, bdx, bdw, bdb); err != nil {
		t.Fatal(err)
	}
	expect(t, "linear dx", down(t, d, bdx, n*f), dx, 1e-5)
	expect(t, "linear dw", down(t, d, bdw, f*k), dw, 1e-5)
	expect(t, "linear db", down(t, d, bdb, k), db, 1e-6)
	// dropout, add+relu, relu grad, momentum
	a, c := randn(r, 50), randn(r, 50)
	mask := make([]byte, 52)
	drop, ar, rg := make([]float32, 50), make([]float32, 50), make([]float32, 50)
	for i := range a {
		mask[i] = byte(r.Intn(2))
		drop[i] = a[i] * float32(mask[i])
		ar[i] = max(a[i]+c[i], 0)
		if ar[i] > 0 {
			rg[i] = c[i]
		}
	}
	bm := empty(t, d, 13)
	if err := d.uploadBytes(bm, mask); err != nil {
		t.Fatal(err)
	}
	ba, bc, out := up(t, d, a), up(t, d, c), empty(t, d, 50)
	if err := d.Dropout(50, bm, 0.5, ba, out); err != nil {
		t.Fatal(err)
	}
	expect(t, "dropout", down(t, d, out, 50), drop, 0)
	if err := d.AddReLU(50, ba, bc, out); err != nil {
		t.Fatal(err)
	}
	expect(t, "add relu", down(t, d, out, 50), ar, 0)
	if err := d.ReLUGrad(50, out, bc, out); err != nil {
		t.Fatal(err)
	}
	expect(t, "relu grad", down(t, d, out, 50), rg, 0)
	wv, gv, vv := randn(r, 50), randn(r, 50), randn(r, 50)
	bwv, bgv, bvv := up(t, d, wv), up(t, d, gv), up(t, d, vv)
	mu, decay, lr := float32(0.9), float32(1e-4), float32(0.01)
	for i := range wv {
		vv[i] = mu*vv[i] + gv[i] + decay*wv[i]
		wv[i] -= lr * vv[i]
	}
	if err := d.Momentum(50, bwv, bgv, bvv, 0.9, 1e-4, 0.01); err != nil {
		t.Fatal(err)
	}
	expect(t, "momentum w", down(t, d, bwv, 50), wv, 0)
	expect(t, "momentum v", down(t, d, bvv, 50), vv, 0)
}
