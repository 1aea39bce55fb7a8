package ops

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// naiveConv is the textbook direct convolution the fast kernel must match.
func naiveConv(g ConvGeom, x, w []float64) []float64 {
	oh, ow := g.OH(), g.OW()
	y := make([]float64, g.N*g.K*oh*ow)
	for n := 0; n < g.N; n++ {
		for k := 0; k < g.K; k++ {
			for i := 0; i < oh; i++ {
				for j := 0; j < ow; j++ {
					var s float64
					for c := 0; c < g.C; c++ {
						for r := 0; r < g.R; r++ {
							for q := 0; q < g.S; q++ {
								yy, xx := i*g.Stride-g.Pad+r, j*g.Stride-g.Pad+q
								if yy < 0 || yy >= g.H || xx < 0 || xx >= g.W {
									continue
								}
								s += x[((n*g.C+c)*g.H+yy)*g.W+xx] * w[((k*g.C+c)*g.R+r)*g.S+q]
							}
						}
					}
					y[((n*g.K+k)*oh+i)*ow+j] = s
				}
			}
		}
	}
	return y
}

var convCases = []struct {
	name string
	g    ConvGeom
}{
	{"1x1", ConvGeom{N: 2, C: 5, H: 6, W: 7, K: 4, R: 1, S: 1, Stride: 1}},
	{"1x1s2", ConvGeom{N: 2, C: 4, H: 7, W: 6, K: 3, R: 1, S: 1, Stride: 2}},
	{"3x3p1", ConvGeom{N: 2, C: 3, H: 6, W: 5, K: 4, R: 3, S: 3, Stride: 1, Pad: 1}},
	{"3x3s2p1", ConvGeom{N: 1, C: 3, H: 7, W: 8, K: 2, R: 3, S: 3, Stride: 2, Pad: 1}},
	{"7x7s2p3", ConvGeom{N: 2, C: 3, H: 11, W: 9, K: 4, R: 7, S: 7, Stride: 2, Pad: 3}},
	{"3x3p0", ConvGeom{N: 1, C: 2, H: 5, W: 5, K: 3, R: 3, S: 3, Stride: 1}},
	{"5x5s3p4", ConvGeom{N: 2, C: 2, H: 4, W: 3, K: 3, R: 5, S: 5, Stride: 3, Pad: 4}},
	{"3x3s2p2", ConvGeom{N: 1, C: 2, H: 6, W: 7, K: 2, R: 3, S: 3, Stride: 2, Pad: 2}},
}

// TestIm2colMatchesNaive checks the patch matrix element by element, and
// col2im as its adjoint: <im2col(x), c> = <x, col2im(c)>.
func TestIm2colMatchesNaive(t *testing.T) {
	t.Parallel()
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			rng := rand.New(rand.NewSource(2))
			x := randDense(rng, g.C, g.H, g.W).Data().([]float64)
			oh, ow := g.OH(), g.OW()
			col := make([]float64, g.C*g.R*g.S*oh*ow)
			for i := range col {
				col[i] = math.NaN() // every element must be written
			}
			im2col(g, x, col)
			for c := 0; c < g.C; c++ {
				for r := 0; r < g.R; r++ {
					for s := 0; s < g.S; s++ {
						for i := 0; i < oh; i++ {
							for j := 0; j < ow; j++ {
								y, xx := i*g.Stride-g.Pad+r, j*g.Stride-g.Pad+s
								want := 0.0
								if y >= 0 && y < g.H && xx >= 0 && xx < g.W {
									want = x[(c*g.H+y)*g.W+xx]
								}
								if got := col[(((c*g.R+r)*g.S+s)*oh+i)*ow+j]; got != want {
									t.Fatalf("col[c%d r%d s%d i%d j%d] = %v, want %v", c, r, s, i, j, got, want)
								}
							}
						}
					}
				}
			}
			cv := randDense(rng, len(col)).Data().([]float64)
			dx := make([]float64, len(x))
			col2im(g, cv, dx)
			var lhs, rhs float64
			for i := range col {
				lhs += col[i] * cv[i]
			}
			for i := range x {
				rhs += x[i] * dx[i]
			}
			if math.Abs(lhs-rhs) > 1e-10*(1+math.Abs(lhs)) {
				t.Fatalf("<im2col(x), c> = %v, <x, col2im(c)> = %v", lhs, rhs)
			}
		})
	}
}

func TestConvForwardMatchesDirect(t *testing.T) {
	t.Parallel()
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			rng := rand.New(rand.NewSource(1))
			x := randDense(rng, g.N, g.C, g.H, g.W).Data().([]float64)
			w := randDense(rng, g.K, g.C, g.R, g.S).Data().([]float64)
			want := naiveConv(g, x, w)
			got := make([]float64, len(want))
			ConvForward(g, x, w, got, nil)
			got32 := make([]float32, len(want))
			ConvForward(g, f32s(x), f32s(w), got32, nil)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12*(1+math.Abs(want[i])) {
					t.Fatalf("y[%d] = %v, direct convolution %v", i, got[i], want[i])
				}
				if math.Abs(float64(got32[i])-want[i]) > 1e-5*(1+math.Abs(want[i])) {
					t.Fatalf("float32 y[%d] = %v, direct convolution %v", i, got32[i], want[i])
				}
			}
		})
	}
}

func f32s(x []float64) []float32 {
	r := make([]float32, len(x))
	for i, v := range x {
		r[i] = float32(v)
	}
	return r
}

func TestConvGradients(t *testing.T) {
	t.Parallel()
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			rng := rand.New(rand.NewSource(2))
			checkGrad(t, gradCase{
				name:   tc.name,
				inputs: []*tensor.Dense{randDense(rng, g.N, g.C, g.H, g.W), randDense(rng, g.K, g.C, g.R, g.S)},
				wrt:    []int{0, 1},
				build: func(in []*G.Node) (*G.Node, func() float64, error) {
					y, err := Conv2D(in[0], in[1], g.Stride, g.Pad, true)
					return y, nil, err
				},
			}, 40)
		})
	}
}

func TestTemporalShiftForward(t *testing.T) {
	t.Parallel()
	// 1 clip of 3 frames, 8 channels, 1x1 planes: x[t][c] = 10*t + c + 1.
	// c1 = 1, c2 = 2: channel 0 takes t-1, channel 1 takes t+1.
	const T, C = 3, 8
	x := make([]float64, 2*T*C)
	for f := 0; f < 2*T; f++ {
		for c := 0; c < C; c++ {
			x[f*C+c] = float64(100*(f/T) + 10*(f%T) + c + 1)
		}
	}
	g := G.NewGraph()
	xn := inputNode(g, "x", tensor.New(tensor.WithShape(2*T, C, 1, 1), tensor.WithBacking(x)))
	y, err := TemporalShift(xn, T, 0.125)
	if err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	got := y.Value().Data().([]float64)
	for clip := 0; clip < 2; clip++ {
		b := float64(100 * clip)
		want := [T][C]float64{
			{0, b + 12, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8},
			{b + 1, b + 22, b + 13, b + 14, b + 15, b + 16, b + 17, b + 18},
			{b + 11, 0, b + 23, b + 24, b + 25, b + 26, b + 27, b + 28},
		}
		for tt := 0; tt < T; tt++ {
			for c := 0; c < C; c++ {
				if v := got[((clip*T)+tt)*C+c]; v != want[tt][c] {
					t.Errorf("clip %d frame %d channel %d = %v, want %v", clip, tt, c, v, want[tt][c])
				}
			}
		}
	}
}

func TestTemporalShiftGradient(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(3))
	checkGrad(t, gradCase{
		name:   "shift",
		inputs: []*tensor.Dense{randDense(rng, 6, 16, 2, 3)},
		wrt:    []int{0},
		build: func(in []*G.Node) (*G.Node, func() float64, error) {
			y, err := TemporalShift(in[0], 3, 0.125)
			return y, nil, err
		},
	}, 600)
}

func bnInputs(rng *rand.Rand, shape ...int) (*tensor.Dense, *tensor.Dense, *tensor.Dense, *BNState) {
	c := shape[1]
	x := randDense(rng, shape...)
	for i, v := range x.Data().([]float64) {
		x.Data().([]float64)[i] = 3*v + 1.5 // not already normalised
	}
	st := &BNState{Mean: alloc(tensor.Float64, c), Variance: alloc(tensor.Float64, c), Momentum: 0.9, Eps: 1e-5}
	for i := 0; i < c; i++ {
		st.Mean.Data().([]float64)[i] = 0.5 * float64(i)
		st.Variance.Data().([]float64)[i] = 1 + float64(i)
	}
	return x, randDense(rng, c), randDense(rng, c), st
}

func TestBatchNormTrainAndEval(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(4))
	const n, c, hw = 3, 4, 5
	x, scale, offset, st := bnInputs(rng, n, c, 1, hw)
	mean0 := append([]float64(nil), st.Mean.Data().([]float64)...)
	var0 := append([]float64(nil), st.Variance.Data().([]float64)...)
	for _, train := range []bool{true, false} {
		g := G.NewGraph()
		y, err := BatchNorm(inputNode(g, "x", x), inputNode(g, "s", scale), inputNode(g, "o", offset), st, train, false)
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		got := y.Value().Data().([]float64)
		xs := x.Data().([]float64)
		for ch := 0; ch < c; ch++ {
			var mu, va float64
			for i := 0; i < n; i++ {
				for j := 0; j < hw; j++ {
					mu += xs[(i*c+ch)*hw+j]
				}
			}
			mu /= n * hw
			for i := 0; i < n; i++ {
				for j := 0; j < hw; j++ {
					d := xs[(i*c+ch)*hw+j] - mu
					va += d * d
				}
			}
			va /= n * hw // biased, as fluid
			useMu, useVar := mu, va
			if !train {
				useMu, useVar = st.Mean.Data().([]float64)[ch], st.Variance.Data().([]float64)[ch]
			}
			for i := 0; i < n; i++ {
				for j := 0; j < hw; j++ {
					k := (i*c+ch)*hw + j
					want := (xs[k]-useMu)/math.Sqrt(useVar+1e-5)*scale.Data().([]float64)[ch] + offset.Data().([]float64)[ch]
					if math.Abs(got[k]-want) > 1e-12 {
						t.Fatalf("train=%v: y[%d] = %v, want %v", train, k, got[k], want)
					}
				}
			}
			if train {
				wm, wv := 0.9*mean0[ch]+0.1*mu, 0.9*var0[ch]+0.1*va
				if gm, gv := st.Mean.Data().([]float64)[ch], st.Variance.Data().([]float64)[ch]; math.Abs(gm-wm) > 1e-12 || math.Abs(gv-wv) > 1e-12 {
					t.Fatalf("running stats of channel %d: %v, %v; want %v, %v", ch, gm, gv, wm, wv)
				}
			}
		}
		if !train {
			// eval must leave the running statistics alone
			m.Reset()
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			for ch := 0; ch < c; ch++ {
				if gm := st.Mean.Data().([]float64)[ch]; math.Abs(gm-(0.9*mean0[ch]+0.1*meanOf(xs, n, c, hw, ch))) > 1e-12 {
					t.Fatalf("eval changed running mean of channel %d", ch)
				}
			}
		}
		m.Close()
	}
}

func meanOf(xs []float64, n, c, hw, ch int) float64 {
	var s float64
	for i := 0; i < n; i++ {
		for j := 0; j < hw; j++ {
			s += xs[(i*c+ch)*hw+j]
		}
	}
	return s / float64(n*hw)
}

func TestBatchNormGradients(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		train, relu bool
		shape       []int
	}{
		{"train", true, false, []int{3, 4, 2, 3}},
		{"train_relu", true, true, []int{2, 3, 3, 3}},
		{"eval_relu", false, true, []int{2, 3, 2, 2}},
		{"train_2d", true, false, []int{5, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(5))
			x, scale, offset, st := bnInputs(rng, tc.shape...)
			checkGrad(t, gradCase{
				name:   tc.name,
				inputs: []*tensor.Dense{x, scale, offset},
				wrt:    []int{0, 1, 2},
				build: func(in []*G.Node) (*G.Node, func() float64, error) {
					y, err := BatchNorm(in[0], in[1], in[2], st, tc.train, tc.relu)
					return y, nil, err
				},
			}, 80)
		})
	}
}

func TestDropout(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(6))
	x := randDense(rng, 40, 50)
	xs := x.Data().([]float64)
	for _, train := range []bool{false, true} {
		g := G.NewGraph()
		y, err := Dropout(inputNode(g, "x", x), 0.5, train, rand.New(rand.NewSource(1)))
		if err != nil {
			t.Fatal(err)
		}
		m := G.NewTapeMachine(g)
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		got := y.Value().Data().([]float64)
		kept := 0
		for i, v := range got {
			switch {
			case !train:
				if v != 0.5*xs[i] {
					t.Fatalf("inference: y[%d] = %v, want 0.5*%v", i, v, xs[i])
				}
			case v == xs[i]:
				kept++
			case v != 0:
				t.Fatalf("training: y[%d] = %v, neither 0 nor x = %v (no rescaling in downgrade_in_infer)", i, v, xs[i])
			}
		}
		if train && (kept < 900 || kept > 1100) {
			t.Fatalf("training kept %d of 2000, want about 1000", kept)
		}
		m.Close()
	}
	for _, train := range []bool{false, true} {
		r := rand.New(rand.NewSource(3))
		checkGrad(t, gradCase{
			name:   "dropout",
			inputs: []*tensor.Dense{randDense(rng, 4, 6)},
			wrt:    []int{0},
			build: func(in []*G.Node) (*G.Node, func() float64, error) {
				y, err := Dropout(in[0], 0.5, train, r)
				return y, nil, err
			},
			// reseeding keeps the training mask the same across runs
			before: func() { r.Seed(3) },
		}, 24)
	}
}

func TestSoftmaxCrossEntropy(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(8))
	logits := randDense(rng, 3, 5)
	labels := []int{4, 0, 2}
	g := G.NewGraph()
	loss, sce, err := SoftmaxCrossEntropy(inputNode(g, "logits", logits))
	if err != nil {
		t.Fatal(err)
	}
	sce.Labels = labels
	m := G.NewTapeMachine(g)
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	_ = loss
	var want float64
	ls := logits.Data().([]float64)
	for i, l := range labels {
		var s float64
		for j := 0; j < 5; j++ {
			s += math.Exp(ls[i*5+j])
		}
		for j := 0; j < 5; j++ {
			if p := sce.Probs()[i*5+j]; math.Abs(p-math.Exp(ls[i*5+j])/s) > 1e-14 {
				t.Fatalf("p[%d,%d] = %v", i, j, p)
			}
		}
		want -= math.Log(math.Exp(ls[i*5+l]) / s)
	}
	if want /= 3; math.Abs(sce.Loss()-want) > 1e-14 {
		t.Fatalf("loss %v, want %v", sce.Loss(), want)
	}
	checkGrad(t, gradCase{
		name:   "softmax_ce",
		inputs: []*tensor.Dense{logits},
		wrt:    []int{0},
		build: func(in []*G.Node) (*G.Node, func() float64, error) {
			l, op, err := SoftmaxCrossEntropy(in[0])
			if err != nil {
				return nil, nil, err
			}
			op.Labels = labels
			return l, op.Loss, nil
		},
	}, 15)
}

func TestLayerGradients(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(9))
	for _, tc := range []gradCase{
		{name: "maxpool", inputs: []*tensor.Dense{randDense(rng, 2, 2, 7, 6)}, wrt: []int{0},
			build: func(in []*G.Node) (*G.Node, func() float64, error) {
				y, err := MaxPool(in[0], 3, 2, 1)
				return y, nil, err
			}},
		{name: "gap", inputs: []*tensor.Dense{randDense(rng, 2, 3, 2, 3)}, wrt: []int{0},
			build: func(in []*G.Node) (*G.Node, func() float64, error) {
				y, err := GlobalAvgPool(in[0])
				return y, nil, err
			}},
		{name: "segmean", inputs: []*tensor.Dense{randDense(rng, 6, 4)}, wrt: []int{0},
			build: func(in []*G.Node) (*G.Node, func() float64, error) {
				y, err := SegmentMean(in[0], 3)
				return y, nil, err
			}},
		{name: "linear", inputs: []*tensor.Dense{randDense(rng, 3, 4), randDense(rng, 4, 5), randDense(rng, 5)}, wrt: []int{0, 1, 2},
			build: func(in []*G.Node) (*G.Node, func() float64, error) {
				y, err := Linear(in[0], in[1], in[2])
				return y, nil, err
			}},
		{name: "addrelu", inputs: []*tensor.Dense{randDense(rng, 2, 3, 2, 2), randDense(rng, 2, 3, 2, 2)}, wrt: []int{0, 1},
			build: func(in []*G.Node) (*G.Node, func() float64, error) {
				y, err := AddReLU(in[0], in[1])
				return y, nil, err
			}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkGrad(t, tc, 100) })
	}
}

func TestMaxPoolForward(t *testing.T) {
	t.Parallel()
	// 1x1x4x4 ramp; 3x3/2 pad 1 -> 2x2 taking the bottom-right of each window.
	x := make([]float64, 16)
	for i := range x {
		x[i] = float64(i) - 20 // all negative: padding must not win
	}
	y := make([]float64, 4)
	arg := make([]int32, 4)
	MaxPoolForward(1, 4, 4, 3, 2, 1, x, y, arg)
	want := []float64{5 - 20, 7 - 20, 13 - 20, 15 - 20}
	for i := range want {
		if y[i] != want[i] {
			t.Fatalf("y = %v, want %v", y, want)
		}
	}
}

// TestConvBNEvalMatchesSeparateOps: the fused inference op equals
// Conv2D -> BatchNorm(eval) [-> ReLU] in float64.
func TestConvBNEvalMatchesSeparateOps(t *testing.T) {
	t.Parallel()
	for _, tc := range convCases {
		for _, relu := range []bool{false, true} {
			g := tc.g
			rng := rand.New(rand.NewSource(12))
			x, w := randDense(rng, g.N, g.C, g.H, g.W), randDense(rng, g.K, g.C, g.R, g.S)
			_, scale, offset, st := bnInputs(rng, 1, g.K, 1, 1)
			gr := G.NewGraph()
			xn, wn := inputNode(gr, "x", x), inputNode(gr, "w", w)
			sn, on := inputNode(gr, "s", scale), inputNode(gr, "o", offset)
			fused, err := ConvBNEval(xn, wn, sn, on, g.Stride, g.Pad, st, relu)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Conv2D(xn, wn, g.Stride, g.Pad, true)
			if err != nil {
				t.Fatal(err)
			}
			sep, err := BatchNorm(c, sn, on, st, false, relu)
			if err != nil {
				t.Fatal(err)
			}
			want := alloc(tensor.Float64, sep.Shape()...)
			got := alloc(tensor.Float64, fused.Shape()...)
			if _, err := Keep(sep, want); err != nil {
				t.Fatal(err)
			}
			if _, err := Keep(fused, got); err != nil {
				t.Fatal(err)
			}
			m := G.NewTapeMachine(gr)
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			m.Close()
			zeros := 0
			for i, v := range want.Float64s() {
				if math.Abs(got.Float64s()[i]-v) > 1e-12*(1+math.Abs(v)) {
					t.Fatalf("%s relu=%v: y[%d] = %v, separate ops %v", tc.name, relu, i, got.Float64s()[i], v)
				}
				if v == 0 {
					zeros++
				}
			}
			if relu && zeros == 0 {
				t.Fatalf("%s: ReLU clipped nothing: the check is vacuous", tc.name)
			}
		}
	}
}

// TestConvBNAddReLUEvalMatchesSeparateOps: the fused inference op with a
// shortcut equals Conv2D -> BatchNorm(eval) -> AddReLU(shortcut), in
// float64 and float32.
func TestConvBNAddReLUEvalMatchesSeparateOps(t *testing.T) {
	t.Parallel()
	for _, tc := range convCases {
		for _, dt := range []tensor.Dtype{tensor.Float64, tensor.Float32} {
			t.Run(tc.name+"/"+dt.String(), func(t *testing.T) {
				g := tc.g
				rng := rand.New(rand.NewSource(13))
				x, w := randDense(rng, g.N, g.C, g.H, g.W), randDense(rng, g.K, g.C, g.R, g.S)
				short := randDense(rng, g.N, g.K, g.OH(), g.OW())
				_, scale, offset, st := bnInputs(rng, 1, g.K, 1, 1)
				if dt == tensor.Float32 {
					x, w, short, scale, offset = toF32(x), toF32(w), toF32(short), toF32(scale), toF32(offset)
					st.Mean, st.Variance = toF32(st.Mean), toF32(st.Variance)
				}
				gr := G.NewGraph()
				xn, wn, shn := inputNode(gr, "x", x), inputNode(gr, "w", w), inputNode(gr, "short", short)
				sn, on := inputNode(gr, "s", scale), inputNode(gr, "o", offset)
				fused, err := ConvBNAddReLUEval(xn, wn, sn, on, shn, g.Stride, g.Pad, st)
				if err != nil {
					t.Fatal(err)
				}
				c, err := Conv2D(xn, wn, g.Stride, g.Pad, true)
				if err != nil {
					t.Fatal(err)
				}
				bn, err := BatchNorm(c, sn, on, st, false, false)
				if err != nil {
					t.Fatal(err)
				}
				sep, err := AddReLU(bn, shn)
				if err != nil {
					t.Fatal(err)
				}
				want, got := alloc(dt, sep.Shape()...), alloc(dt, fused.Shape()...)
				if _, err := Keep(sep, want); err != nil {
					t.Fatal(err)
				}
				if _, err := Keep(fused, got); err != nil {
					t.Fatal(err)
				}
				m := G.NewTapeMachine(gr)
				defer m.Close()
				if err := m.RunAll(); err != nil {
					t.Fatal(err)
				}
				tol := 1e-12
				if dt == tensor.Float32 {
					tol = 1e-5
				}
				zeros := 0
				gv, wv := toF64(got), toF64(want)
				for i, v := range wv {
					if math.Abs(gv[i]-v) > tol*(1+math.Abs(v)) {
						t.Fatalf("y[%d] = %v, separate ops %v", i, gv[i], v)
					}
					if v == 0 {
						zeros++
					}
				}
				if zeros == 0 {
					t.Fatal("ReLU clipped nothing: the check is vacuous")
				}
			})
		}
	}
}

func toF32(d *tensor.Dense) *tensor.Dense {
	v := toF64(d)
	out := alloc(tensor.Float32, d.Shape()...)
	for i, x := range v {
		out.Float32s()[i] = float32(x)
	}
	return out
}

// TestConvBackwardFilterOverwrites: the filter gradient does not depend on
// what its output and scratch buffers held before (they are reused from
// step to step).
func TestConvBackwardFilterOverwrites(t *testing.T) {
	t.Parallel()
	for _, tc := range convCases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			rng := rand.New(rand.NewSource(3))
			x := randDense(rng, g.N, g.C, g.H, g.W).Data().([]float64)
			dy := randDense(rng, g.N, g.K, g.OH(), g.OW()).Data().([]float64)
			want := make([]float64, g.K*g.C*g.R*g.S)
			ConvBackwardFilter(g, x, dy, want, nil)
			got := make([]float64, len(want))
			buf := make([]float64, g.ScratchSize(true))
			for _, b := range [][]float64{got, buf} {
				for i := range b {
					b[i] = math.NaN()
				}
			}
			ConvBackwardFilter(g, x, dy, got, buf)
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("dw[%d] = %v over a dirty buffer, %v over a clean one", i, got[i], want[i])
				}
			}
		})
	}
}

// TestShiftConvMatchesShiftThenConv: the fused shift + pointwise conv
// equals Shift followed by ConvForward, for shift ratios that leave each
// of the three channel ranges empty in turn, and clips of one frame.
func TestShiftConvMatchesShiftThenConv(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		clips, t  int
		c, k, hw  int
		ratio     float64
		wantZeros bool
	}{
		{"tsm", 2, 4, 16, 5, 6, 1.0 / 8, false},
		{"quarter", 1, 3, 8, 3, 4, 1.0 / 4, false},
		{"half", 2, 2, 6, 4, 3, 0.5, false},
		{"none", 1, 3, 5, 2, 4, 0, false},
		{"one_frame", 3, 1, 8, 3, 2, 1.0 / 8, false},
		{"all_shifted_one_frame", 2, 1, 4, 3, 2, 0.5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.clips * tc.t
			g := ConvGeom{N: n, C: tc.c, H: 1, W: tc.hw, K: tc.k, R: 1, S: 1, Stride: 1}
			c1, c2 := int(float64(tc.c)*tc.ratio), int(float64(tc.c)*2*tc.ratio)
			rng := rand.New(rand.NewSource(8))
			x := randDense(rng, n, tc.c, 1, tc.hw).Data().([]float64)
			w := randDense(rng, tc.k, tc.c, 1, 1).Data().([]float64)
			shifted := make([]float64, len(x))
			Shift(n, tc.t, tc.c, tc.hw, c1, c2, false, x, shifted)
			want := make([]float64, n*tc.k*tc.hw)
			ConvForward(g, shifted, w, want, nil)
			got := make([]float64, len(want))
			got32 := make([]float32, len(want))
			for i := range got {
				got[i], got32[i] = math.NaN(), float32(math.NaN())
			}
			ShiftConvForward(g, tc.t, c1, c2, x, w, got)
			ShiftConvForward(g, tc.t, c1, c2, f32s(x), f32s(w), got32)
			zeros := 0
			for i, v := range want {
				if math.Abs(got[i]-v) > 1e-12*(1+math.Abs(v)) {
					t.Fatalf("y[%d] = %v, shift then conv %v", i, got[i], v)
				}
				if math.Abs(float64(got32[i])-v) > 1e-5*(1+math.Abs(v)) {
					t.Fatalf("float32 y[%d] = %v, shift then conv %v", i, got32[i], v)
				}
				if v == 0 {
					zeros++
				}
			}
			if tc.wantZeros != (zeros == len(want)) {
				t.Fatalf("%d of %d outputs are zero", zeros, len(want))
			}
		})
	}
}

// TestShiftConvBNEvalMatchesSeparateOps: the fused op equals
// TemporalShift -> ConvBNEval.
func TestShiftConvBNEvalMatchesSeparateOps(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewSource(14))
	const n, c, k, h, w = 6, 16, 5, 3, 2
	x, wt := randDense(rng, n, c, h, w), randDense(rng, k, c, 1, 1)
	_, scale, offset, st := bnInputs(rng, 1, k, 1, 1)
	gr := G.NewGraph()
	xn, wn := inputNode(gr, "x", x), inputNode(gr, "w", wt)
	sn, on := inputNode(gr, "s", scale), inputNode(gr, "o", offset)
	fused, err := ShiftConvBNEval(xn, wn, sn, on, 3, 1.0/8, st, true)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := TemporalShift(xn, 3, 1.0/8)
	if err != nil {
		t.Fatal(err)
	}
	sep, err := ConvBNEval(sh, wn, sn, on, 1, 0, st, true)
	if err != nil {
		t.Fatal(err)
	}
	want, got := alloc(tensor.Float64, sep.Shape()...), alloc(tensor.Float64, fused.Shape()...)
	if _, err := Keep(sep, want); err != nil {
		t.Fatal(err)
	}
	if _, err := Keep(fused, got); err != nil {
		t.Fatal(err)
	}
	m := G.NewTapeMachine(gr)
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	for i, v := range want.Float64s() {
		if math.Abs(got.Float64s()[i]-v) > 1e-12*(1+math.Abs(v)) {
			t.Fatalf("y[%d] = %v, separate ops %v", i, got.Float64s()[i], v)
		}
	}
	if _, err := ShiftConvBNEval(xn, inputNode(gr, "w3", randDense(rng, k, c, 3, 3)), sn, on, 3, 1.0/8, st, true); err == nil {
		t.Error("a 3x3 filter was accepted")
	}
}
