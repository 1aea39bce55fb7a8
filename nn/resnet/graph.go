package resnet

import (
	"fmt"

	G "gorgonia.org/gorgonia"

	"github.com/zoo-ml/zoo/nn/optim"
)

// Graph returns the gorgonia graph of mode (built on first use) and its
// input node, "image" ([BatchSize*SegNum, 3, Height, Width]). Another
// executor (nn/cuda) runs this graph instead of the model's own (nn/exec):
// the trainable parameters are its input nodes with the parameters' own
// tensors as values, batch-norm running statistics are the ops' state,
// and in the training graph every parameter's gradient reaches its Grad
// tensor through an ops.Keep node.
//
// Its activations are all NCHW: a graph already built with oneDNN's
// blocked layout (for the model's own executor) is rebuilt.
func (m *Model) Graph(mode Mode) (*G.ExprGraph, *G.Node, error) {
	if !m.nchw {
		m.nchw = true
		m.dropGraphs()
	}
	if err := m.Build(mode); err != nil {
		return nil, nil, err
	}
	g := m.graphs[mode].g
	in := g.ByName("image")
	if len(in) != 1 {
		return nil, nil, fmt.Errorf("%v graph: %d input nodes named image", mode, len(in))
	}
	return g, in[0], nil
}

// Vars returns the trainable parameters as the optimizer sees them (what
// TrainStep passes to Optimizer().Step): values, Grad tensors (those of
// the training graph's Keep nodes), learning-rate multipliers and decay.
func (m *Model) Vars() []optim.Var {
	vars := make([]optim.Var, 0, len(m.params))
	for _, p := range m.params {
		if p.Trainable {
			vars = append(vars, optim.Var{Name: p.Name, Value: p.Value, Grad: p.Grad, LRMult: p.LRMult, NoDecay: p.NoDecay})
		}
	}
	return vars
}

// TopK counts the rows of probs (k classes a row) whose label ranks
// first, and within the first five, as Forward's Result does.
func TopK(probs []float64, k int, labels []int) (top1, top5 int) { return topK(probs, k, labels) }
