package resnet

import (
	"fmt"
	"math"
	"math/rand"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

func shapeOf(t *testing.T, m *Model, name string) []int {
	t.Helper()
	p, ok := m.Param(name)
	if !ok {
		t.Fatalf("no parameter %q", name)
	}
	return p.Shape
}

func TestPaddleNamesResNet50(t *testing.T) {
	t.Parallel()
	m, err := New(Config{Depth: 50, NumClasses: 400, BatchSize: 1, Height: 224, Width: 224, TemporalShift: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		shape []int
	}{
		{"conv1_weights", []int{64, 3, 7, 7}},
		{"bn_conv1_scale", []int{64}}, {"bn_conv1_offset", []int{64}}, {"bn_conv1_mean", []int{64}}, {"bn_conv1_variance", []int{64}},
		{"res2a_branch2a_weights", []int{64, 64, 1, 1}},
		{"bn2a_branch2a_scale", []int{64}},
		{"res2a_branch2b_weights", []int{64, 64, 3, 3}},
		{"res2a_branch2c_weights", []int{256, 64, 1, 1}},
		{"res2a_branch1_weights", []int{256, 64, 1, 1}},
		{"bn2a_branch1_variance", []int{256}},
		{"res3a_branch1_weights", []int{512, 256, 1, 1}},
		{"res3d_branch2c_weights", []int{512, 128, 1, 1}},
		{"res4f_branch2b_weights", []int{256, 256, 3, 3}},
		{"res5c_branch2c_weights", []int{2048, 512, 1, 1}},
		{"bn5c_branch2c_offset", []int{2048}},
		{"fc_0.w_0", []int{2048, 400}},
		{"fc_0.b_0", []int{400}},
	} {
		if got := shapeOf(t, m, tc.name); !slices.Equal(got, tc.shape) {
			t.Errorf("%s: shape %v, want %v", tc.name, got, tc.shape)
		}
	}
	// 53 conv+BN units (1 stem + 16 blocks * 3 + 4 projections), 5
	// variables each, plus the fc weight and bias.
	if n := len(m.Params()); n != 53*5+2 {
		t.Errorf("%d parameters, want %d", n, 53*5+2)
	}
	for _, absent := range []string{"res2b_branch1_weights", "res5d_branch2a_weights", "res4b1_branch2a_weights"} {
		if _, ok := m.Param(absent); ok {
			t.Errorf("ResNet-50 has %s", absent)
		}
	}
	// trainability and optimizer attributes
	for _, p := range m.Params() {
		wantTrain := !(hasSuffix(p.Name, "_mean") || hasSuffix(p.Name, "_variance"))
		if p.Trainable != wantTrain {
			t.Errorf("%s: trainable %v", p.Name, p.Trainable)
		}
		if (p.Name == "fc_0.b_0") != (p.LRMult == 2 && p.NoDecay) {
			t.Errorf("%s: lr mult %v, no decay %v", p.Name, p.LRMult, p.NoDecay)
		}
	}
}

func hasSuffix(s, suf string) bool { return len(s) >= len(suf) && s[len(s)-len(suf):] == suf }

func TestPaddleNamesOtherDepths(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		depth   int
		present map[string][]int
		absent  []string
		convs   int
	}{
		{101, map[string][]int{"res4a_branch1_weights": {1024, 512, 1, 1}, "res4b1_branch2a_weights": {256, 1024, 1, 1}, "res4b22_branch2c_weights": {1024, 256, 1, 1}, "bn4b22_branch2c_scale": {1024}}, []string{"res4b_branch2a_weights", "res4b23_branch2a_weights"}, 1 + 33*3 + 4},
		{152, map[string][]int{"res3h_branch2b_weights": {128, 128, 3, 3}, "res4b35_branch2a_weights": {256, 1024, 1, 1}}, []string{"res4b36_branch2a_weights"}, 1 + 50*3 + 4},
		// PaddleCV basic blocks: branch2a and branch2b are 3x3; res2a
		// projects (is_first) although 64 -> 64 at stride 1.
		{18, map[string][]int{"res2a_branch2a_weights": {64, 64, 3, 3}, "res2a_branch2b_weights": {64, 64, 3, 3}, "res2a_branch1_weights": {64, 64, 1, 1}, "res3a_branch1_weights": {128, 64, 1, 1}, "res5b_branch2b_weights": {512, 512, 3, 3}, "fc_0.w_0": {512, 10}}, []string{"res2b_branch1_weights", "res2a_branch2c_weights"}, 1 + 8*2 + 4},
		{34, map[string][]int{"res4f_branch2b_weights": {256, 256, 3, 3}, "res5c_branch2a_weights": {512, 512, 3, 3}}, []string{"res4g_branch2a_weights", "res4b1_branch2a_weights"}, 1 + 16*2 + 4},
	} {
		t.Run(fmt.Sprint(tc.depth), func(t *testing.T) {
			m, err := New(Config{Depth: tc.depth, NumClasses: 10, BatchSize: 1, Height: 32, Width: 32})
			if err != nil {
				t.Fatal(err)
			}
			for name, shape := range tc.present {
				if got := shapeOf(t, m, name); !slices.Equal(got, shape) {
					t.Errorf("%s: shape %v, want %v", name, got, shape)
				}
			}
			for _, name := range tc.absent {
				if _, ok := m.Param(name); ok {
					t.Errorf("has %s", name)
				}
			}
			if n := len(m.Params()); n != tc.convs*5+2 {
				t.Errorf("%d parameters, want %d", n, tc.convs*5+2)
			}
		})
	}
}

func TestInitialisation(t *testing.T) {
	t.Parallel()
	m, err := New(Config{Depth: 50, NumClasses: 400, BatchSize: 1, Height: 64, Width: 64, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		mean, std float64
		lo, hi    float64
	}{
		{"res4a_branch2b_weights", 0, math.Sqrt(2.0 / (9 * 256)), math.Inf(-1), math.Inf(1)},
		{"res3a_branch1_weights", 0, math.Sqrt(2.0 / 256), math.Inf(-1), math.Inf(1)},
		// Uniform(-a, a): std a/sqrt(3)
		{"fc_0.w_0", 0, 1 / math.Sqrt(2048) / math.Sqrt(3), -1 / math.Sqrt(2048), 1 / math.Sqrt(2048)},
	} {
		p, _ := m.Param(tc.name)
		var s, ss float64
		xs := p.Value.Float32s()
		for _, v := range xs {
			s += float64(v)
			ss += float64(v) * float64(v)
			if float64(v) < tc.lo || float64(v) > tc.hi {
				t.Fatalf("%s: value %v outside [%v, %v]", tc.name, v, tc.lo, tc.hi)
			}
		}
		n := float64(len(xs))
		mean, std := s/n, math.Sqrt(ss/n-(s/n)*(s/n))
		if math.Abs(mean-tc.mean) > 3*tc.std/math.Sqrt(n)+1e-9 || math.Abs(std/tc.std-1) > 0.02 {
			t.Errorf("%s: mean %v std %v, want %v, %v", tc.name, mean, std, tc.mean, tc.std)
		}
	}
	for name, want := range map[string]float32{"bn3b_branch2a_scale": 1, "bn3b_branch2a_offset": 0, "bn3b_branch2a_mean": 0, "bn3b_branch2a_variance": 1, "fc_0.b_0": 0} {
		p, _ := m.Param(name)
		for _, v := range p.Value.Float32s() {
			if v != want {
				t.Fatalf("%s holds %v, want %v", name, v, want)
			}
		}
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	ok := Config{Depth: 18, NumClasses: 5, BatchSize: 1, Height: 32, Width: 32}
	for name, mut := range map[string]func(*Config){
		"depth":   func(c *Config) { c.Depth = 20 },
		"classes": func(c *Config) { c.NumClasses = 0 },
		"batch":   func(c *Config) { c.BatchSize = 0 },
		"size":    func(c *Config) { c.Height = 0 },
		"ratio":   func(c *Config) { c.ShiftRatio = 0.7 },
		"dtype":   func(c *Config) { c.Dtype = tensor.Int },
	} {
		c := ok
		mut(&c)
		if _, err := New(c); err == nil {
			t.Errorf("%s: New accepted %+v", name, c)
		}
	}
	m, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward(Eval, make([]float32, 10), nil); err == nil {
		t.Error("Forward accepted a short input")
	}
	in := make([]float32, m.Config().InputSize())
	if _, err := m.Forward(Train, in, nil); err == nil {
		t.Error("training without labels was accepted")
	}
	if _, err := m.Forward(Eval, in, []int{7}); err == nil {
		t.Error("label 7 of 5 classes was accepted")
	}
	if err := m.SetParam("fc_0.b_0", []int{4}, make([]float32, 4)); err == nil {
		t.Error("SetParam accepted a wrong shape")
	}
	if err := m.SetParam("nope", []int{4}, make([]float32, 4)); err == nil {
		t.Error("SetParam accepted an unknown name")
	}
}

// tinyConfig is the small TSM of the gradient checks: ResNet-18 at base
// width 8 (so that the first stage still shifts one channel each way),
// 2 clips of 2 segments of 16x16 frames, float64.
func tinyConfig(shift bool) Config {
	return Config{Depth: 18, NumClasses: 5, SegNum: 2, TemporalShift: shift, BaseWidth: 8,
		BatchSize: 2, Height: 16, Width: 16, Dtype: tensor.Float64, Seed: 1}
}

func randomInput(n int, seed int64) []float32 {
	r := rand.New(rand.NewSource(seed))
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// randomise gives BN scales, offsets and running statistics values away
// from their initial constants, so that the checks see them matter.
func randomise(m *Model, seed int64) {
	r := rand.New(rand.NewSource(seed))
	for _, p := range m.Params() {
		xs := p.Value.Float64s()
		switch {
		case hasSuffix(p.Name, "_scale"):
			for i := range xs {
				xs[i] = 0.5 + r.Float64()
			}
		case hasSuffix(p.Name, "_offset"), hasSuffix(p.Name, "_mean"), p.Name == "fc_0.b_0":
			for i := range xs {
				xs[i] = 0.2 * r.NormFloat64()
			}
		case hasSuffix(p.Name, "_variance"):
			for i := range xs {
				xs[i] = 0.5 + r.Float64()
			}
		}
	}
}

// TestTSMGradientsFiniteDifferences checks the training graph's gradient
// of every trainable parameter tensor of a small TSM against central
// differences (float64, step 1e-6) at probes elements each:
// |a-n| <= 1e-6 + 1e-4*max(|a|,|n|) (the loose part covers a ReLU or max
// pool kink that a probe may cross).
func TestTSMGradientsFiniteDifferences(t *testing.T) {
	t.Parallel()
	m, err := New(tinyConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	randomise(m, 2)
	labels := []int{3, 1}
	input := randomInput(m.Config().InputSize(), 3)
	lossAt := func() float64 {
		m.SeedDropout(9)
		res, err := m.Forward(Train, input, labels)
		if err != nil {
			t.Fatal(err)
		}
		return res.Loss
	}
	lossAt()
	grads := map[string][]float64{}
	for _, p := range m.Params() {
		if p.Trainable {
			grads[p.Name] = append([]float64(nil), p.Grad.Float64s()...)
		}
	}
	const probes, h = 3, 1e-6
	r := rand.New(rand.NewSource(4))
	checked, bad := 0, 0
	for _, p := range m.Params() {
		if !p.Trainable {
			continue
		}
		xs := p.Value.Float64s()
		// the largest-gradient element and random others
		idx := []int{argmaxAbs(grads[p.Name])}
		for len(idx) < probes && len(idx) < len(xs) {
			idx = append(idx, r.Intn(len(xs)))
		}
		for _, j := range idx {
			orig := xs[j]
			xs[j] = orig + h
			lp := lossAt()
			xs[j] = orig - h
			lm := lossAt()
			xs[j] = orig
			num := (lp - lm) / (2 * h)
			a := grads[p.Name][j]
			checked++
			if math.Abs(a-num) > 1e-6+1e-4*math.Max(math.Abs(a), math.Abs(num)) {
				bad++
				t.Errorf("%s[%d]: gradient %.9g, finite differences %.9g", p.Name, j, a, num)
			}
		}
	}
	t.Logf("%d gradient elements checked over all trainable tensors", checked)
	if g := grads["conv1_weights"]; maxAbs(g) == 0 {
		t.Error("conv1 gradient is all zero: the check would be vacuous")
	}
}

func argmaxAbs(x []float64) int {
	best := 0
	for i, v := range x {
		if math.Abs(v) > math.Abs(x[best]) {
			best = i
		}
	}
	return best
}

func maxAbs(x []float64) float64 { return math.Abs(x[argmaxAbs(x)]) }
