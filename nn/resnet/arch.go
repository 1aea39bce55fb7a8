package resnet

import (
	"math"
	"math/rand"
	"strings"

	"gorgonia.org/tensor"
)

// convSpec is one conv+BN unit (Paddle's conv_bn_layer): a bias-free conv
// named name ("<name>_weights") followed by a batch norm named
// bnName(name), with a ReLU when relu is set.
type convSpec struct {
	name                     string
	k, cin, cout, stride, pd int
	relu                     bool
}

// blockSpec is one residual block: convs in order (2a, 2b[, 2c]), and the
// projection shortcut (branch1) or nil for identity.
type blockSpec struct {
	name  string
	convs []convSpec
	short *convSpec
}

type arch struct {
	stem     convSpec
	blocks   []blockSpec
	features int // channels into the fc
}

func bnName(conv string) string {
	if conv == "conv1" {
		return "bn_conv1"
	}
	return "bn" + strings.TrimPrefix(conv, "res")
}

// layout follows PaddleCV's ResNet (and the video zoo's TSM_ResNet for
// the bottleneck depths).
func layout(c Config) arch {
	w := c.BaseWidth
	a := arch{stem: convSpec{name: "conv1", k: 7, cin: 3, cout: w, stride: 2, pd: 3, relu: true}}
	in := w
	for s, n := range stageDepths[c.Depth] {
		f := w << s
		for i := 0; i < n; i++ {
			stride := 1
			if i == 0 && s != 0 {
				stride = 2
			}
			name := c.blockName(s, i)
			b := blockSpec{name: name}
			out := f
			project := false
			if c.bottleneck() {
				out = 4 * f
				b.convs = []convSpec{
					{name: name + "_branch2a", k: 1, cin: in, cout: f, stride: 1, relu: true},
					{name: name + "_branch2b", k: 3, cin: f, cout: f, stride: stride, pd: 1, relu: true},
					{name: name + "_branch2c", k: 1, cin: f, cout: out, stride: 1},
				}
				project = in != out || stride != 1
			} else {
				b.convs = []convSpec{
					{name: name + "_branch2a", k: 3, cin: in, cout: f, stride: stride, pd: 1, relu: true},
					{name: name + "_branch2b", k: 3, cin: f, cout: f, stride: 1, pd: 1},
				}
				// PaddleCV's basic blocks project in the very first block
				// too (is_first), although channels and stride match there.
				project = in != out || stride != 1 || (s == 0 && i == 0)
			}
			if project {
				b.short = &convSpec{name: name + "_branch1", k: 1, cin: in, cout: out, stride: stride}
			}
			a.blocks = append(a.blocks, b)
			in = out
		}
	}
	a.features = in
	return a
}

// Param is one named model variable. Values are shared by the training
// and the evaluation graph; write into Value's backing slice (or use
// SetParam) to load weights.
type Param struct {
	Name      string
	Shape     []int
	Value     *tensor.Dense
	Trainable bool
	// Grad receives the gradient of trainable parameters in TrainStep.
	// It is nil until the training graph is built: an inference-only
	// model holds no gradient buffers.
	Grad *tensor.Dense
	// LRMult and NoDecay are the optimizer attributes Paddle's model
	// gives the parameter (fc_0.b_0: learning rate x2, no L2 decay).
	LRMult  float64
	NoDecay bool
}

// newParams creates the parameters in Paddle's creation order,
// initialised as fluid does: conv filters Normal(0, sqrt(2/(k*k*cin)))
// (fluid conv2d's default initializer), BN scale 1, offset 0, mean 0,
// variance 1, fc weight Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) and fc
// bias 0.
func newParams(c Config, a arch) []*Param {
	rng := rand.New(rand.NewSource(c.Seed))
	var ps []*Param
	add := func(name string, trainable bool, fill func(i int) float64, shape ...int) *Param {
		v := tensor.New(tensor.Of(c.Dtype), tensor.WithShape(shape...))
		n := v.Shape().TotalSize()
		for i := 0; i < n; i++ {
			x := fill(i)
			if c.Dtype == tensor.Float32 {
				v.Float32s()[i] = float32(x)
			} else {
				v.Float64s()[i] = x
			}
		}
		p := &Param{Name: name, Shape: append([]int(nil), shape...), Value: v, Trainable: trainable, LRMult: 1}
		ps = append(ps, p)
		return p
	}
	constant := func(v float64) func(int) float64 { return func(int) float64 { return v } }
	convBN := func(s convSpec) {
		std := math.Sqrt(2 / float64(s.k*s.k*s.cin))
		add(s.name+"_weights", true, func(int) float64 { return rng.NormFloat64() * std }, s.cout, s.cin, s.k, s.k)
		bn := bnName(s.name)
		add(bn+"_scale", true, constant(1), s.cout)
		add(bn+"_offset", true, constant(0), s.cout)
		add(bn+"_mean", false, constant(0), s.cout)
		add(bn+"_variance", false, constant(1), s.cout)
	}
	convBN(a.stem)
	for _, b := range a.blocks {
		for _, s := range b.convs {
			convBN(s)
		}
		if b.short != nil {
			convBN(*b.short)
		}
	}
	stdv := 1 / math.Sqrt(float64(a.features))
	add("fc_0.w_0", true, func(int) float64 { return (2*rng.Float64() - 1) * stdv }, a.features, c.NumClasses)
	b := add("fc_0.b_0", true, constant(0), c.NumClasses)
	b.LRMult, b.NoDecay = 2, true
	return ps
}
