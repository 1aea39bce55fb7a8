// Package convert maps PyTorch TSM checkpoints (MIT's
// temporal-shift-module and mmaction2's) onto Paddle's parameter names
// and records the conventions their frameworks run them with, which
// differ from Paddle's: the shift direction, dropout at inference and
// where the segment consensus sits. The source is detected from the
// names. Like the rest of weights/ it imports only the standard library
// and stdlib-only packages.
package convert

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/zoo-ml/zoo/internal/fsx"
	"github.com/zoo-ml/zoo/weights"
	"github.com/zoo-ml/zoo/weights/torch"
)

// Sources.
const (
	MIT       = "mit"       // mit-han-lab/temporal-shift-module
	MMAction2 = "mmaction2" // open-mmlab/mmaction2
)

// Conventions are the MODEL config keys of the behaviour a checkpoint was
// trained with. Paddle's values: shift_direction "paddle", infer_dropout
// "scale", consensus "features".
type Conventions struct {
	ShiftDirection string `json:"shift_direction"` // "paddle": fold 0 takes t-1; "pytorch": fold 0 takes t+1
	InferDropout   string `json:"infer_dropout"`   // "scale": x(1-p) at inference (fluid); "identity" (inverted dropout)
	Consensus      string `json:"consensus"`       // "features": mean over segments before the fc; "logits": after it
}

// Paddle are Paddle's conventions; PyTorch those of MIT's and mmaction2's TSM.
var (
	Paddle  = Conventions{ShiftDirection: "paddle", InferDropout: "scale", Consensus: "features"}
	PyTorch = Conventions{ShiftDirection: "pytorch", InferDropout: "identity", Consensus: "logits"}
)

// ConventionsFile is what Write puts beside the parameters of a converted
// checkpoint, so that --weights DIR runs them as their framework did.
const ConventionsFile = "zoo_conventions.json"

// Result is a checkpoint in Paddle's names.
type Result struct {
	Source      string
	Depth       int  // 18, 34, 50, 101 or 152, from the blocks per stage
	Shift       bool // the convs carry TSM's shift wrapper (TSN's do not)
	Conventions Conventions
	Tensors     map[string]*weights.Tensor // Paddle's names
	Ignored     []string                   // num_batches_tracked
}

var depths = map[string]int{"2,2,2,2/basic": 18, "3,4,6,3/basic": 34, "3,4,6,3/bottleneck": 50, "3,4,23,3/bottleneck": 101, "3,8,36,3/bottleneck": 152}

var (
	mitRe = regexp.MustCompile(`^(?:module\.)?base_model\.(?:(conv1|bn1)|layer([1-4])\.(\d+)\.(?:(conv[123])(\.net)?|(bn[123])|downsample\.([01])))\.(weight|bias|running_mean|running_var)$`)
	mmRe  = regexp.MustCompile(`^backbone\.(?:conv1\.(conv|bn)|layer([1-4])\.(\d+)\.(?:(conv[123])\.(?:conv(\.net)?|(bn))|downsample\.(conv|bn)))\.(weight|bias|running_mean|running_var)$`)
)

// unit is one conv+BN in torch's indexing: stage 0 is the stem.
type unit struct {
	stage, block int
	conv         string // "conv1".."conv3", "down"
}

// FromTorch maps a checkpoint's tensors onto Paddle's names.
func FromTorch(file string, ts []*weights.Tensor) (*Result, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("%s: no tensors", file)
	}
	r := &Result{Tensors: map[string]*weights.Tensor{}, Conventions: PyTorch}
	switch first := ts[0].Name; {
	case strings.HasPrefix(first, "module.base_model.") || strings.HasPrefix(first, "base_model."):
		r.Source = MIT
	case strings.HasPrefix(first, "backbone."):
		r.Source = MMAction2
	default:
		return nil, fmt.Errorf("%s: tensor %q is neither MIT's TSM (module.base_model.*, module.new_fc.*) nor mmaction2's (backbone.*, cls_head.fc_cls.*)", file, first)
	}
	type param struct {
		u    unit
		kind string // weights, scale, offset, mean, variance
		t    *weights.Tensor
	}
	var ps []param
	blocks := map[int]int{}
	bottleneck, shifted, plain := false, 0, 0
	var fcW, fcB *weights.Tensor
	for _, t := range ts {
		n := t.Name
		if strings.HasSuffix(n, ".num_batches_tracked") {
			r.Ignored = append(r.Ignored, n)
			continue
		}
		switch n {
		case "module.new_fc.weight", "new_fc.weight", "cls_head.fc_cls.weight":
			fcW = t
			continue
		case "module.new_fc.bias", "new_fc.bias", "cls_head.fc_cls.bias":
			fcB = t
			continue
		}
		var u unit
		var field string
		var isBN, net bool
		if r.Source == MIT {
			m := mitRe.FindStringSubmatch(n)
			if m == nil {
				return nil, fmt.Errorf("%s: tensor %q is not part of MIT's TSM-ResNet", file, n)
			}
			field = m[8]
			switch {
			case m[1] != "":
				u, isBN = unit{conv: "conv1"}, m[1] == "bn1"
			default:
				u.stage, _ = strconv.Atoi(m[2])
				u.block, _ = strconv.Atoi(m[3])
				switch {
				case m[4] != "":
					u.conv, net = m[4], m[5] != ""
				case m[6] != "":
					u.conv, isBN = "conv"+m[6][2:], true
				default:
					u.conv, isBN = "down", m[7] == "1"
				}
			}
		} else {
			m := mmRe.FindStringSubmatch(n)
			if m == nil {
				return nil, fmt.Errorf("%s: tensor %q is not part of mmaction2's TSM-ResNet", file, n)
			}
			field = m[8]
			switch {
			case m[1] != "":
				u, isBN = unit{conv: "conv1"}, m[1] == "bn"
			default:
				u.stage, _ = strconv.Atoi(m[2])
				u.block, _ = strconv.Atoi(m[3])
				switch {
				case m[4] != "":
					u.conv, net, isBN = m[4], m[5] != "", m[6] != ""
				default:
					u.conv, isBN = "down", m[7] == "bn"
				}
			}
		}
		kind := "weights"
		if isBN {
			kind = map[string]string{"weight": "scale", "bias": "offset", "running_mean": "mean", "running_var": "variance"}[field]
		} else if field != "weight" {
			return nil, fmt.Errorf("%s: tensor %q: a conv with a bias (zoo's ResNet convs have none)", file, n)
		}
		if u.stage > 0 {
			blocks[u.stage] = max(blocks[u.stage], u.block+1)
			if u.conv == "conv3" {
				bottleneck = true
			}
			if u.conv == "conv1" && kind == "weights" {
				if net {
					shifted++
				} else {
					plain++
				}
			}
		}
		ps = append(ps, param{u, kind, t})
	}
	if fcW == nil || fcB == nil {
		return nil, fmt.Errorf("%s: no fc (module.new_fc.* or cls_head.fc_cls.*): not a classifier checkpoint", file)
	}
	counts := fmt.Sprintf("%d,%d,%d,%d/basic", blocks[1], blocks[2], blocks[3], blocks[4])
	if bottleneck {
		counts = strings.Replace(counts, "basic", "bottleneck", 1)
	}
	d, ok := depths[counts]
	if !ok {
		return nil, fmt.Errorf("%s: blocks per stage %s fit no ResNet depth (18, 34, 50, 101, 152)", file, counts)
	}
	r.Depth = d
	if shifted > 0 && plain > 0 {
		return nil, fmt.Errorf("%s: some blocks carry the temporal shift and some do not", file)
	}
	r.Shift = shifted > 0
	for _, p := range ps {
		name := paddleConv(d, bottleneck, p.u)
		if p.kind == "weights" {
			name += "_weights"
		} else {
			name = bnName(name) + "_" + p.kind
		}
		if _, dup := r.Tensors[name]; dup {
			return nil, fmt.Errorf("%s: tensor %q maps onto %s twice", file, p.t.Name, name)
		}
		v, err := p.t.Float32s()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, p.t.Name, err)
		}
		r.Tensors[name] = weights.NewFloat32(name, p.t.Dims, v)
	}
	if len(fcW.Dims) != 2 || len(fcB.Dims) != 1 || fcW.Dims[0] != fcB.Dims[0] {
		return nil, fmt.Errorf("%s: fc %s %v with bias %v", file, fcW.Name, fcW.Dims, fcB.Dims)
	}
	w, err := transpose(fcW)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	r.Tensors["fc_0.w_0"] = w
	bv, err := fcB.Float32s()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	r.Tensors["fc_0.b_0"] = weights.NewFloat32("fc_0.b_0", fcB.Dims, bv)
	if !bottleneck {
		addIdentityProjection(r)
	}
	return r, nil
}

// paddleConv is nn/resnet's conv name of a torch unit.
func paddleConv(depth int, bottleneck bool, u unit) string {
	if u.stage == 0 {
		return "conv1"
	}
	s, i := u.stage-1, u.block
	block := fmt.Sprintf("res%d%c", s+2, 'a'+i)
	if (depth == 101 || depth == 152) && s == 2 && i > 0 {
		block = fmt.Sprintf("res4b%d", i)
	}
	branch := map[string]string{"conv1": "_branch2a", "conv2": "_branch2b", "conv3": "_branch2c", "down": "_branch1"}[u.conv]
	return block + branch
}

func bnName(conv string) string {
	if conv == "conv1" {
		return "bn_conv1"
	}
	return "bn" + strings.TrimPrefix(conv, "res")
}

// addIdentityProjection: PaddleCV's basic-block ResNets (18, 34) project
// the first block's shortcut although channels and stride match;
// torchvision's use the identity there. A 1x1 identity conv with a BN
// that passes its input (scale 1, offset 0, mean 0, variance 1-eps) is
// that identity.
func addIdentityProjection(r *Result) {
	w, ok := r.Tensors["res2a_branch2a_weights"]
	if !ok || len(w.Dims) != 4 || w.Dims[1] != w.Dims[0] {
		return
	}
	if _, ok := r.Tensors["res2a_branch1_weights"]; ok {
		return
	}
	c := int(w.Dims[0])
	eye := make([]float32, c*c)
	ones, zeros, vari := make([]float32, c), make([]float32, c), make([]float32, c)
	for i := range c {
		eye[i*c+i] = 1
		ones[i] = 1
		vari[i] = 1 - 1e-5
	}
	dims := []int64{int64(c)}
	r.Tensors["res2a_branch1_weights"] = weights.NewFloat32("res2a_branch1_weights", []int64{int64(c), int64(c), 1, 1}, eye)
	r.Tensors["bn2a_branch1_scale"] = weights.NewFloat32("bn2a_branch1_scale", dims, ones)
	r.Tensors["bn2a_branch1_offset"] = weights.NewFloat32("bn2a_branch1_offset", dims, zeros)
	r.Tensors["bn2a_branch1_mean"] = weights.NewFloat32("bn2a_branch1_mean", dims, zeros)
	r.Tensors["bn2a_branch1_variance"] = weights.NewFloat32("bn2a_branch1_variance", dims, vari)
}

// transpose turns torch's fc weight [out, in] into Paddle's [in, out],
// as FP32.
func transpose(t *weights.Tensor) (*weights.Tensor, error) {
	v, err := t.Float32s()
	if err != nil {
		return nil, err
	}
	out, in := int(t.Dims[0]), int(t.Dims[1])
	w := make([]float32, len(v))
	for o := range out {
		for i := range in {
			w[i*out+o] = v[o*in+i]
		}
	}
	return weights.NewFloat32("fc_0.w_0", []int64{int64(in), int64(out)}, w), nil
}

// Read reads a torch checkpoint and maps it.
func Read(file string) (*Result, error) {
	c, err := torch.Read(file)
	if err != nil {
		return nil, err
	}
	return FromTorch(file, c.Tensors)
}

// Write writes r as a Paddle parameter directory (one file per variable)
// with its conventions in ConventionsFile, which arrives with the
// parameters or not at all: a directory without it reads as Paddle's.
func Write(dir string, r *Result) error {
	b, err := json.MarshalIndent(struct {
		Source string `json:"source"`
		Depth  int    `json:"num_layers"`
		Conventions
	}{r.Source, r.Depth, r.Conventions}, "", "  ")
	if err != nil {
		return err
	}
	return weights.WriteDirWith(dir, r.Tensors, func(tmp string) error {
		return fsx.WriteBytes(filepath.Join(tmp, ConventionsFile), fsx.Options{}, append(b, '\n'))
	})
}

// ReadConventions returns the conventions recorded beside a converted
// directory's parameters, and false when there are none (Paddle's own
// weights).
func ReadConventions(dir string) (Conventions, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, ConventionsFile))
	if errors.Is(err, os.ErrNotExist) {
		return Conventions{}, false, nil
	}
	if err != nil {
		return Conventions{}, false, err
	}
	var c Conventions
	if err := json.Unmarshal(b, &c); err != nil {
		return Conventions{}, false, fmt.Errorf("%s: %w", filepath.Join(dir, ConventionsFile), err)
	}
	return c, true, nil
}
