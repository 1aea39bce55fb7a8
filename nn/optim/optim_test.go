package optim

import (
	"math"
	"testing"

	"gorgonia.org/tensor"
)

func vec(x ...float64) *tensor.Dense { return tensor.New(tensor.WithBacking(x)) }

// TestMomentumByHand checks two steps against numbers worked out by hand:
// w=1, g=0.5, mu=0.9, decay=0.1, lr=0.1:
//
//	step 1: v = 0 + 0.5 + 0.1*1 = 0.6;         w = 1 - 0.1*0.6 = 0.94
//	step 2: v = 0.54 + 0.5 + 0.094 = 1.134;    w = 0.94 - 0.1134 = 0.8266
//
// and for a bias with LRMult 2 and no decay, w=1, g=0.5:
//
//	step 1: v = 0.5;  w = 1 - 0.2*0.5 = 0.9
//	step 2: v = 0.45 + 0.5 = 0.95; w = 0.9 - 0.2*0.95 = 0.71
func TestMomentumByHand(t *testing.T) {
	t.Parallel()
	o := NewMomentum(0.9, 0.1)
	w, b := vec(1), vec(1)
	vars := []Var{
		{Name: "w", Value: w, Grad: vec(0.5)},
		{Name: "b", Value: b, Grad: vec(0.5), LRMult: 2, NoDecay: true},
	}
	want := [][2]float64{{0.94, 0.9}, {0.8266, 0.71}}
	for i, wv := range want {
		if err := o.Step(vars, 0.1); err != nil {
			t.Fatal(err)
		}
		gw, gb := w.Float64s()[0], b.Float64s()[0]
		if math.Abs(gw-wv[0]) > 1e-12 || math.Abs(gb-wv[1]) > 1e-12 {
			t.Fatalf("step %d: w=%v b=%v, want %v", i+1, gw, gb, wv)
		}
	}
	if v := o.Velocity("w").Float64s()[0]; math.Abs(v-1.134) > 1e-12 {
		t.Fatalf("velocity %v, want 1.134", v)
	}
}

func TestMomentumFloat32AndErrors(t *testing.T) {
	t.Parallel()
	o := NewMomentum(0.9, 1e-4)
	w := tensor.New(tensor.WithBacking([]float32{2, -1}))
	g := tensor.New(tensor.WithBacking([]float32{1, 1}))
	if err := o.Step([]Var{{Name: "w", Value: w, Grad: g}}, 0.01); err != nil {
		t.Fatal(err)
	}
	// v = g + 1e-4*w; w -= 0.01*v
	for i, w0 := range []float64{2, -1} {
		want := w0 - 0.01*(1+1e-4*w0)
		if got := float64(w.Float32s()[i]); math.Abs(got-want) > 1e-6 {
			t.Fatalf("w[%d] = %v, want %v", i, got, want)
		}
	}
	if err := o.Step([]Var{{Name: "x", Value: w, Grad: vec(1, 2)}}, 0.1); err == nil {
		t.Fatal("dtype mismatch between value and gradient was accepted")
	}
	if err := o.Step([]Var{{Name: "y", Value: w}}, 0.1); err == nil {
		t.Fatal("missing gradient was accepted")
	}
}

func TestTSMSchedule(t *testing.T) {
	t.Parallel()
	p := TSMSchedule(0.01, 0.1, []int{40, 60}, 239781, 128)
	// 239781/128 = 1873 (integer), +1 = 1874 iterations per epoch
	if p.Boundaries[0] != 40*1874 || p.Boundaries[1] != 60*1874 {
		t.Fatalf("boundaries %v", p.Boundaries)
	}
	for _, tc := range []struct {
		step int
		want float64
	}{{0, 0.01}, {40*1874 - 1, 0.01}, {40 * 1874, 0.001}, {60*1874 - 1, 0.001}, {60 * 1874, 0.0001}, {1 << 30, 0.0001}} {
		if got := p.At(tc.step); math.Abs(got-tc.want) > 1e-15 {
			t.Errorf("At(%d) = %v, want %v", tc.step, got, tc.want)
		}
	}
}
