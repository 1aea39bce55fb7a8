//go:build zoocuda

package cuda

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/ops"
)

// TestNoModelPackage: nn/cuda runs whatever graph it is given; it must
// not know a network (nn/resnet) or a plugin.
func TestNoModelPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "zoocuda", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/zoo-ml/zoo/nn/resnet") || strings.HasPrefix(p, "github.com/zoo-ml/zoo/plugins") {
			t.Errorf("nn/cuda depends on %s", p)
		}
	}
}

// TestUnknownOpNamed: an op without a GPU kernel is an error naming it,
// before anything touches a device.
func TestUnknownOpNamed(t *testing.T) {
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(2, 3), G.WithName("x"))
	y := G.Must(G.Tanh(x))
	if _, _, err := ops.SoftmaxCrossEntropy(y); err != nil {
		t.Fatal(err)
	}
	_, err := plan(g, x)
	if !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "tanh") {
		t.Fatalf("plan: %v, want an error naming tanh", err)
	}
}

// TestBlockedRefused: an op on oneDNN's nChw16c activations (a CPU
// training graph's) is refused by name, not run as NCHW.
func TestBlockedRefused(t *testing.T) {
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(2, 16, 4, 4), G.WithName("x"))
	w := G.NewTensor(g, tensor.Float32, 4, G.WithShape(16, 16, 1, 1), G.WithName("w"),
		G.WithValue(tensor.New(tensor.WithShape(16, 16, 1, 1), tensor.Of(tensor.Float32))))
	y, err := ops.Conv2DTo(x, w, 1, 0, true, ops.Blocked16)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ops.GlobalAvgPool(y)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ops.SoftmaxCrossEntropy(p); err != nil {
		t.Fatal(err)
	}
	_, err = plan(g, x)
	if !errors.Is(err, ErrNoKernel) || !strings.Contains(err.Error(), "nChw16c") {
		t.Fatalf("plan: %v, want an error naming the nChw16c layout", err)
	}
}

// TestLivenessReuse runs a chain of ten AddReLUs (each value read by the
// next op only) on the emulator: values go back to the pool after their
// last reader, so the chain needs two buffers of its size, not ten.
func TestLivenessReuse(t *testing.T) {
	d, err := OpenEmulator(t.TempDir())
	if err != nil {
		t.Fatalf("kernel emulator: %v", err)
	}
	const rows, cols = 4, 256
	g := G.NewGraph()
	x := G.NewMatrix(g, tensor.Float32, G.WithShape(rows, cols), G.WithName("x"))
	h := x
	for range 10 {
		if h, err = ops.AddReLU(h, h); err != nil {
			t.Fatal(err)
		}
	}
	w := G.NewMatrix(g, tensor.Float32, G.WithShape(cols, 3), G.WithName("w"), G.WithValue(tensor.New(tensor.WithShape(cols, 3), tensor.WithBacking(make([]float32, cols*3)))))
	b := G.NewVector(g, tensor.Float32, G.WithShape(3), G.WithName("b"), G.WithValue(tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{1, 2, 3}))))
	l, err := ops.Linear(h, w, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ops.SoftmaxCrossEntropy(l); err != nil {
		t.Fatal(err)
	}
	st := NewStore(d)
	defer st.Close()
	e, err := NewExecutor(st, g, x)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	in := make([]float32, rows*cols)
	for i := range in {
		in[i] = float32(i%7) - 3
	}
	for range 2 {
		r, err := e.Run(in, []int{0, 1, 2, 0})
		if err != nil {
			t.Fatal(err)
		}
		// w is zero: logits are b on every row
		if r.Logits[0] != 1 || r.Logits[2] != 3 || r.Probs[2] < r.Probs[0] {
			t.Fatalf("logits %v, probs %v", r.Logits[:3], r.Probs[:3])
		}
	}
	if want := 2*rows*cols + rows*3; e.PeakElements > want {
		t.Errorf("pool peak %d elements, want at most %d (two chain values and the logits)", e.PeakElements, want)
	}
}
