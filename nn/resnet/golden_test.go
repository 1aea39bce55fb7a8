package resnet

import (
	"encoding/json"
	"flag"
	"math"
	"os"
	"os/exec"
	"testing"
)

//go:generate /usr/bin/python3 ../testdata/torch_tsm.py

var update = flag.Bool("update", false, "regenerate ../testdata/tsm_torch_golden.json with PyTorch (needs python3-torch; $ZOO_PYTHON names the interpreter)")

const goldenPath = "../testdata/tsm_torch_golden.json"

type goldenSummary struct {
	Sum     float64      `json:"sum"`
	L2      float64      `json:"l2"`
	Samples [][2]float64 `json:"samples"`
}

type goldenRun struct {
	Loss  float64   `json:"loss"`
	Probs []float64 `json:"probs"`
}

type goldenCase struct {
	Case struct {
		Name    string `json:"name"`
		Depth   int    `json:"depth"`
		Width   int    `json:"width"`
		SegNum  int    `json:"seg_num"`
		Batch   int    `json:"batch"`
		Height  int    `json:"height"`
		WidthPx int    `json:"width_px"`
		Classes int    `json:"classes"`
		Labels  []int  `json:"labels"`
	} `json:"case"`
	Eval    goldenRun                `json:"eval"`
	Train   goldenRun                `json:"train"`
	Grads   map[string]goldenSummary `json:"grads"`
	Running map[string]goldenSummary `json:"running"`
}

// The closed formulas shared with torch_tsm.py.

func namePhase(name string) float64 {
	s := 0
	for j, c := range []byte(name) {
		s += int(c) * (j + 1)
	}
	return float64(s%1000) / 100
}

func paramValue(name string, shape []int, i int) float64 {
	n := 1
	for _, s := range shape {
		n *= s
	}
	s := math.Sin(1.3*float64(i) + namePhase(name))
	switch {
	case hasSuffix(name, "_weights"):
		return math.Sqrt(2/float64(n/shape[0])) * 1.7 * s
	case hasSuffix(name, "_scale"):
		return 1 + 0.3*s
	case hasSuffix(name, "_offset"), hasSuffix(name, "_mean"):
		return 0.1 * s
	case hasSuffix(name, "_variance"):
		return 1 + 0.5*s*s
	case name == "fc_0.w_0":
		return 0.2 * s
	case name == "fc_0.b_0":
		return 0.05 * s
	}
	panic(name)
}

func inputValue(i int) float64 { return math.Sin(0.7*float64(i)) * math.Cos(0.013*float64(i)) }

// hashUniform is torch_tsm.py's dropout_uniform, drawn in element order.
type hashUniform struct{ i int }

func (h *hashUniform) Float64() float64 {
	v := math.Sin(float64(h.i)*12.9898+1) * 43758.5453
	h.i++
	return v - math.Floor(v)
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*(1+math.Abs(b)) }

// TestTorchGolden compares a small TSM-ResNet-18 and TSM-ResNet-50 (float64)
// with the PyTorch oracle in ../testdata/torch_tsm.py: eval and train
// losses and probabilities to 1e-9, every trainable parameter's gradient
// (sum, L2 norm, 8 sampled elements) and every BN running statistic after
// one training pass to 1e-7, relative.
func TestTorchGolden(t *testing.T) {
	if *update {
		py := os.Getenv("ZOO_PYTHON")
		if py == "" {
			py = "/usr/bin/python3"
		}
		out, err := exec.Command(py, "../testdata/torch_tsm.py").CombinedOutput()
		if err != nil {
			t.Fatalf("regenerating the golden file: %v\n%s", err, out)
		}
	}
	raw, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	var golden struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden.Cases) == 0 {
		t.Fatal("golden file has no cases")
	}
	for _, gc := range golden.Cases {
		t.Run(gc.Case.Name, func(t *testing.T) {
			c := gc.Case
			cfg := tinyConfig(true)
			cfg.Depth, cfg.BaseWidth, cfg.SegNum, cfg.BatchSize = c.Depth, c.Width, c.SegNum, c.Batch
			cfg.Height, cfg.Width, cfg.NumClasses = c.Height, c.WidthPx, c.Classes
			m, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Params() {
				for i := range p.Value.Float64s() {
					p.Value.Float64s()[i] = paramValue(p.Name, p.Shape, i)
				}
			}
			if len(gc.Grads) != countTrainable(m) {
				t.Fatalf("golden has %d gradients, model %d trainable parameters", len(gc.Grads), countTrainable(m))
			}
			hu := &hashUniform{}
			m.rng, m.seedFn = hu, func(int64) { hu.i = 0 }
			runMode := func(mode Mode) Result {
				if err := m.Build(mode); err != nil {
					t.Fatal(err)
				}
				for i := range m.graphs[mode].input.Float64s() {
					m.graphs[mode].input.Float64s()[i] = inputValue(i)
				}
				m.SeedDropout(0)
				res, err := m.run(mode, c.Labels)
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			for _, step := range []struct {
				mode Mode
				want goldenRun
			}{{Eval, gc.Eval}, {Train, gc.Train}} {
				res := runMode(step.mode)
				if !near(res.Loss, step.want.Loss, 1e-9) {
					t.Errorf("%v loss %.12g, torch %.12g", step.mode, res.Loss, step.want.Loss)
				}
				if !closeAll(res.Probs, step.want.Probs, 1e-9) {
					t.Errorf("%v probabilities %v, torch %v", step.mode, res.Probs, step.want.Probs)
				}
			}
			check := func(what string, xs []float64, want goldenSummary) {
				var s, ss float64
				for _, v := range xs {
					s += v
					ss += v * v
				}
				l2 := math.Sqrt(ss)
				if !near(l2, want.L2, 1e-7) || math.Abs(s-want.Sum) > 1e-7*(want.L2+1e-12)*math.Sqrt(float64(len(xs))) {
					t.Errorf("%s: sum %.10g l2 %.10g, torch %.10g %.10g", what, s, l2, want.Sum, want.L2)
				}
				for _, sm := range want.Samples {
					i := int(sm[0])
					if math.Abs(xs[i]-sm[1]) > 1e-7*(want.L2+1e-12) {
						t.Errorf("%s[%d] = %.10g, torch %.10g", what, i, xs[i], sm[1])
					}
				}
			}
			for _, p := range m.Params() {
				if p.Trainable {
					check("gradient of "+p.Name, p.Grad.Float64s(), gc.Grads[p.Name])
				} else {
					want, ok := gc.Running[p.Name]
					if !ok {
						t.Fatalf("golden lacks running statistic %s", p.Name)
					}
					check(p.Name+" after a training pass", p.Value.Float64s(), want)
				}
			}
		})
	}
}

func countTrainable(m *Model) int {
	n := 0
	for _, p := range m.Params() {
		if p.Trainable {
			n++
		}
	}
	return n
}
