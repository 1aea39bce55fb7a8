package convert

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/weights"
)

// resnet builds a state dict of a ResNet (1-channel tensors: only names
// matter here) in MIT's naming.
func mitNames(blocks []int, bottleneck bool) []*weights.Tensor {
	var ts []*weights.Tensor
	add := func(n string) { ts = append(ts, weights.NewFloat32(n, []int64{1}, []float32{1})) }
	p := "module.base_model."
	add(p + "conv1.weight")
	for _, f := range []string{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"} {
		if f == "num_batches_tracked" {
			ts = append(ts, &weights.Tensor{Name: p + "bn1." + f, DType: weights.Int64, Data: make([]byte, 8)})
			continue
		}
		add(p + "bn1." + f)
	}
	convs := []string{"conv1", "conv2"}
	if bottleneck {
		convs = append(convs, "conv3")
	}
	for s, n := range blocks {
		for i := range n {
			b := fmt.Sprintf("%slayer%d.%d.", p, s+1, i)
			for j, c := range convs {
				if j == 0 && s == 0 && i == 0 && !bottleneck {
					// a real shape: the identity projection takes its width
					ts = append(ts, weights.NewFloat32(b+c+".net.weight", []int64{2, 2, 3, 3}, make([]float32, 36)))
				} else if j == 0 {
					add(b + c + ".net.weight")
				} else {
					add(b + c + ".weight")
				}
				add(b + "bn" + c[4:] + ".weight")
			}
			if i == 0 && (bottleneck || s > 0) {
				add(b + "downsample.0.weight")
				add(b + "downsample.1.running_var")
			}
		}
	}
	ts = append(ts, weights.NewFloat32("module.new_fc.weight", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}))
	ts = append(ts, weights.NewFloat32("module.new_fc.bias", []int64{2}, []float32{7, 8}))
	return ts
}

func TestFromTorchMIT(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		blocks     []int
		bottleneck bool
		depth      int
		names      []string
	}{
		{[]int{3, 4, 6, 3}, true, 50, []string{"conv1_weights", "bn_conv1_variance", "res2a_branch2a_weights", "bn2a_branch2c_scale", "res2a_branch1_weights", "bn2a_branch1_variance", "res4f_branch2c_weights", "res5c_branch2b_weights"}},
		{[]int{3, 4, 23, 3}, true, 101, []string{"res4a_branch2a_weights", "res4b1_branch2a_weights", "res4b22_branch2c_weights", "bn4b22_branch2c_scale"}},
		{[]int{2, 2, 2, 2}, false, 18, []string{"res2a_branch2b_weights", "res2a_branch1_weights", "bn2a_branch1_variance", "res3a_branch1_weights"}},
	} {
		r, err := FromTorch("x.pth", mitNames(tc.blocks, tc.bottleneck))
		if err != nil {
			t.Fatal(err)
		}
		if r.Source != MIT || r.Depth != tc.depth || !r.Shift || r.Conventions != PyTorch {
			t.Errorf("depth %d: %+v", tc.depth, r)
		}
		for _, n := range tc.names {
			if _, ok := r.Tensors[n]; !ok {
				t.Errorf("depth %d: no %s", tc.depth, n)
			}
		}
		if tc.depth == 18 {
			w, _ := r.Tensors["res2a_branch1_weights"].Float32s()
			v, _ := r.Tensors["bn2a_branch1_variance"].Float32s()
			if fmt.Sprint(w) != "[1 0 0 1]" || v[0] != 1-1e-5 {
				t.Errorf("identity projection %v, variance %v", w, v)
			}
		}
		w, _ := r.Tensors["fc_0.w_0"].Float32s()
		if fmt.Sprint(r.Tensors["fc_0.w_0"].Dims, w) != "[3 2] [1 4 2 5 3 6]" {
			t.Errorf("fc_0.w_0 %v %v, want transposed", r.Tensors["fc_0.w_0"].Dims, w)
		}
	}
}

func TestFromTorchErrors(t *testing.T) {
	t.Parallel()
	r50 := func() []*weights.Tensor { return mitNames([]int{3, 4, 6, 3}, true) }
	for _, tc := range []struct {
		name string
		edit func([]*weights.Tensor) []*weights.Tensor
		want string
	}{
		{"foreign", func(ts []*weights.Tensor) []*weights.Tensor {
			ts[0].Name = "features.0.weight"
			return ts
		}, `tensor "features.0.weight" is neither`},
		{"no fc", func(ts []*weights.Tensor) []*weights.Tensor { return ts[:len(ts)-2] }, "no fc"},
		{"odd tensor", func(ts []*weights.Tensor) []*weights.Tensor {
			ts[3].Name = "module.base_model.layer1.0.attention.weight"
			return ts
		}, `"module.base_model.layer1.0.attention.weight" is not part of MIT's`},
		{"no depth", func(ts []*weights.Tensor) []*weights.Tensor {
			return append(ts, weights.NewFloat32("module.base_model.layer1.7.conv2.weight", []int64{1}, []float32{1}))
		}, "fit no ResNet depth"},
	} {
		_, err := FromTorch("x.pth", tc.edit(r50()))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "x.pth: ") {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestWriteConventionsWithParameters: Write's conventions file arrives in
// the same rename as the parameters, and a failed write leaves the old
// directory as it was, conventions and all.
func TestWriteConventionsWithParameters(t *testing.T) {
	t.Parallel()
	r, err := FromTorch("x.pth", mitNames([]int{2, 2, 2, 2}, false))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "tsm")
	if err := Write(dir, r); err != nil {
		t.Fatal(err)
	}
	if c, ok, err := ReadConventions(dir); err != nil || !ok || c != PyTorch {
		t.Fatalf("ReadConventions = %+v, %v, %v; want PyTorch's", c, ok, err)
	}
	boom := errors.New("boom")
	if err := weights.WriteDirWith(dir, r.Tensors, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("WriteDirWith = %v, want boom", err)
	}
	if c, ok, err := ReadConventions(dir); err != nil || !ok || c != PyTorch {
		t.Errorf("after a failed write: ReadConventions = %+v, %v, %v; want PyTorch's", c, ok, err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(dir)); len(entries) != 1 {
		t.Errorf("%d entries beside the directory, want only tsm (a temp directory left?)", len(entries))
	}
}
