// Package classifier holds what zoo's ResNet-based classifier plugins
// (plugins/tsm, plugins/resnet) share: Paddle parameter files in and out of
// an nn/resnet model, the evaluation metrics and the padding of a short last
// batch. It is internal to plugins/: the host never imports it.
package classifier

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
	"github.com/zoo-ml/zoo/weights/convert"
	"github.com/zoo-ml/zoo/weights/torch"
)

// Specs lists the shapes of the model's kept parameters, as weights.Load
// checks them.
func Specs(m *resnet.Model, keep func(string) bool) map[string]weights.Spec {
	want := map[string]weights.Spec{}
	for _, p := range m.Params() {
		if !keep(p.Name) {
			continue
		}
		dims := make([]int64, len(p.Shape))
		for i, d := range p.Shape {
			dims[i] = int64(d)
		}
		want[p.Name] = weights.Spec{DType: weights.FP32, Dims: dims}
	}
	return want
}

// TensorSpecs lists the kept parameters of a model built from cfg as a
// weight set's tensors (FP32, as Paddle publishes them), for Describe: every
// variable the model reads from the set, so the host checks a set whole.
func TensorSpecs(cfg resnet.Config, keep func(string) bool) ([]sdk.TensorSpec, error) {
	shapes, err := cfg.ParamShapes()
	if err != nil {
		return nil, err
	}
	var out []sdk.TensorSpec
	for _, p := range shapes {
		if !keep(p.Name) {
			continue
		}
		dims := make([]int64, len(p.Shape))
		for i, d := range p.Shape {
			dims[i] = int64(d)
		}
		out = append(out, sdk.TensorSpec{Name: p.Name, DType: weights.FP32.String(), Shape: dims})
	}
	return out, nil
}

// VelocityName is Paddle's name of a parameter's Momentum accumulator.
func VelocityName(param string) string { return param + "_velocity_0" }

// NotFC keeps every parameter but the classifier head (fc_0.*), which a
// pretrained backbone initialises everything but.
func NotFC(name string) bool { return !strings.Contains(name, "fc_0") }

// All keeps every parameter.
func All(string) bool { return true }

// Load reads the kept parameters (and, with velocity, the optimizer state
// where the directory has it) into m from a Paddle parameter directory or
// a .pdparams file whose names are Paddle's fluid names (what
// paddle.static.save writes), and returns how many variables it read.
// Errors are CodeInvalidArgument and name the path and the variable.
func Load(m *resnet.Model, dir string, keep func(string) bool, velocity bool) (int, error) {
	n, _, err := load(m, dir, keep, velocity)
	return n, err
}

// load is Load, also returning how many variables the source has.
func load(m *resnet.Model, dir string, keep func(string) bool, velocity bool) (int, int, error) {
	want := Specs(m, keep)
	var ts map[string]*weights.Tensor
	var extra []string
	var err error
	if IsPdparams(dir) && torch.IsTorch(dir) {
		if velocity {
			return 0, 0, sdk.Errorf(sdk.CodeInvalidArgument, "%s: a PyTorch checkpoint has no optimizer state zoo reads; resume from a checkpoint directory", dir)
		}
		ts, extra, err = loadTorch(m.Config(), dir, want)
	} else if IsPdparams(dir) {
		if velocity {
			return 0, 0, sdk.Errorf(sdk.CodeInvalidArgument, "%s: a .pdparams file has no optimizer state; resume from a checkpoint directory", dir)
		}
		ts, extra, err = loadPdparams(dir, want)
	} else {
		ts, extra, err = weights.Load(dir, want)
	}
	if err != nil {
		return 0, 0, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
	}
	total := len(ts) + len(extra)
	for name, t := range ts {
		v, err := t.Float32s()
		if err != nil {
			return 0, 0, sdk.Errorf(sdk.CodeInvalidArgument, "%s in %s: %v", name, dir, err)
		}
		p, _ := m.Param(name)
		if err := m.SetParam(name, p.Shape, v); err != nil {
			return 0, 0, err
		}
	}
	n := len(ts)
	if velocity {
		var vs []string
		for name := range want {
			if slices.Contains(extra, VelocityName(name)) {
				vs = append(vs, VelocityName(name))
			}
		}
		vts, err := weights.ReadDir(dir, vs)
		if err != nil {
			return 0, 0, sdk.Errorf(sdk.CodeInvalidArgument, "optimizer state in %s: %v", dir, err)
		}
		for vn, t := range vts {
			name := strings.TrimSuffix(vn, "_velocity_0")
			p, _ := m.Param(name)
			v, err := t.Float32s()
			if err != nil || len(v) != p.Value.Shape().TotalSize() {
				return 0, 0, sdk.Errorf(sdk.CodeInvalidArgument, "%s in %s: wrong size for %s", vn, dir, name)
			}
			m.Optimizer().SetVelocity(name, tensor.New(tensor.WithShape(p.Shape...), tensor.WithBacking(v)))
		}
		n += len(vts)
	}
	return n, total, nil
}

// LoadKind is a Session.Load of a Paddle directory into m: pretrain skips
// fc_0, resume also reads the Momentum velocities. A GPU twin goes back to
// the host first and is made again, from the loaded weights, on the next
// Runner call.
func (d *Device) LoadKind(m *resnet.Model, dir, kind string) (sdk.LoadResult, error) {
	if err := d.Sync(m, true); err != nil {
		return sdk.LoadResult{}, err
	}
	keep := All
	if kind == sdk.UsePretrain {
		keep = NotFC
	}
	n, total, err := load(m, dir, keep, kind == sdk.LoadResume)
	if err != nil {
		return sdk.LoadResult{}, err
	}
	return sdk.LoadResult{Loaded: n, Ignored: total - n}, nil
}

// IsPdparams reports whether path is a file rather than a directory of
// parameter files: the host passes only those two, and a file is a
// .pdparams.
func IsPdparams(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// loadPdparams is weights.Load for a .pdparams file.
func loadPdparams(path string, want map[string]weights.Spec) (map[string]*weights.Tensor, []string, error) {
	ts, err := weights.ReadPdparams(path)
	if err != nil {
		return nil, nil, err
	}
	return keepWanted(path, ts, want)
}

// keepWanted checks ts against want and drops what want does not name.
func keepWanted(path string, ts map[string]*weights.Tensor, want map[string]weights.Spec) (map[string]*weights.Tensor, []string, error) {
	extra, err := weights.CheckTensors(path, ts, want)
	if err != nil {
		return nil, extra, err
	}
	for name := range ts {
		if _, ok := want[name]; !ok {
			delete(ts, name)
		}
	}
	return ts, extra, nil
}

// loadTorch is weights.Load for a PyTorch checkpoint (MIT's or
// mmaction2's TSM), mapped onto Paddle's names.
func loadTorch(cfg resnet.Config, path string, want map[string]weights.Spec) (map[string]*weights.Tensor, []string, error) {
	r, err := convert.Read(path)
	if err != nil {
		return nil, nil, err
	}
	if r.Depth != cfg.Depth {
		return nil, nil, fmt.Errorf("%s is a ResNet-%d checkpoint (%s), the config's num_layers is %d: set MODEL.num_layers = %d", path, r.Depth, r.Source, cfg.Depth, r.Depth)
	}
	if cfg.TemporalShift && !r.Shift {
		return nil, nil, fmt.Errorf("%s is not a TSM checkpoint (its blocks' conv1 carry no temporal shift): set MODEL.temporal_shift = False to run it as TSN", path)
	}
	return keepWanted(path, r.Tensors, want)
}

// Save writes every parameter of m and its Momentum velocity in Paddle's
// one-file-per-variable format into dir, after a GPU twin's copy back.
func (d *Device) Save(m *resnet.Model, dir string) error {
	if err := d.Sync(m, false); err != nil {
		return err
	}
	for _, p := range m.Params() {
		if err := writeDense(dir, p.Name, p.Shape, p.Value); err != nil {
			return err
		}
		if v := m.Optimizer().Velocity(p.Name); v != nil {
			if err := writeDense(dir, VelocityName(p.Name), p.Shape, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeDense(dir, name string, shape []int, d *tensor.Dense) error {
	dims := make([]int64, len(shape))
	for i, v := range shape {
		dims[i] = int64(v)
	}
	var vals []float32
	switch d.Dtype() {
	case tensor.Float32:
		vals = d.Float32s()
	case tensor.Float64:
		for _, v := range d.Float64s() {
			vals = append(vals, float32(v))
		}
	default:
		return fmt.Errorf("save %s: dtype %v", name, d.Dtype())
	}
	return weights.WriteFile(filepath.Join(dir, name), weights.NewFloat32(name, dims, vals))
}

// EvalMetrics is the mean cross entropy and the top-1/top-5 fractions of
// the first len(labels) rows of probs ([rows, k]).
func EvalMetrics(probs []float64, k int, labels []int) (loss, top1, top5 float64) {
	for i, l := range labels {
		row := probs[i*k : (i+1)*k]
		loss -= math.Log(math.Max(row[l], 1e-20))
		rank := 0
		for j, p := range row {
			if p > row[l] || (p == row[l] && j < l) {
				rank++
			}
		}
		if rank == 0 {
			top1++
		}
		if rank < 5 {
			top5++
		}
	}
	n := float64(len(labels))
	return loss / n, top1 / n, top5 / n
}

// Pad returns data grown with zeros to graphBatch samples of sampleSize
// values, so that a short last batch runs through a fixed-size graph; the
// padding's outputs are dropped by the caller (evaluation uses stored
// batch-norm statistics, so each sample's output is independent of the
// others).
func Pad(data []float32, graphBatch, sampleSize int) []float32 {
	if len(data) >= graphBatch*sampleSize {
		return data
	}
	out := make([]float32, graphBatch*sampleSize)
	copy(out, data)
	return out
}

// Scores is row i of probs ([rows, k]) as a float32 tensor.
func Scores(probs []float64, k, i int) sdk.Tensor {
	scores := make([]float32, k)
	for j := range scores {
		scores[j] = float32(probs[i*k+j])
	}
	return sdk.Tensor{Shape: []int64{int64(k)}, Data: scores}
}

// Depths are the ResNet depths nn/resnet builds.
var Depths = []int{18, 34, 50, 101, 152}

// CheckDepth is a CodeInvalidArgument error unless d is one of Depths.
func CheckDepth(d int) error {
	if slices.Contains(Depths, d) {
		return nil
	}
	return sdk.Errorf(sdk.CodeInvalidArgument, "MODEL.num_layers %d: use 18, 34, 50, 101 or 152", d)
}

// Warnings collects the inputs a pass skipped (unreadable videos or
// images) until Run drains them into its event stream.
type Warnings []sdk.Warning

// Add is the readers' warn callback: it records path's failure.
func (w *Warnings) Add(path string, err error) {
	*w = append(*w, sdk.Warning{Path: path, Message: err.Error()})
}

// Flush emits the warnings collected since the last call.
func (w *Warnings) Flush(emit func(sdk.Event) error) error {
	for _, x := range *w {
		if err := emit(sdk.Event{Warning: &x}); err != nil {
			return err
		}
	}
	*w = (*w)[:0]
	return nil
}

// EmitTrainExtra reports one training step's result for a batch of n
// samples, with extra metrics where there are any (e.g. allreduce_s, a
// data-parallel step's gradient allreduce seconds).
func EmitTrainExtra(emit func(sdk.Event) error, iter int64, n int, res resnet.Result, lr float64, extra map[string]float64) error {
	m := map[string]float64{"loss": res.Loss, "top1": float64(res.Top1) / float64(n), "top5": float64(res.Top5) / float64(n), "lr": lr}
	for k, v := range extra {
		m[k] = v
	}
	return emit(sdk.Event{Step: &sdk.Step{Iter: iter, Samples: int64(n), Metrics: m}})
}

// EmitEval reports an evaluation batch: one Prediction per sample in the
// infer phase, else one Step with the batch's loss and accuracies. probs
// holds at least len(labels) rows of k classes (padding rows are ignored).
func EmitEval(emit func(sdk.Event) error, phase string, iter int64, probs []float64, k int, ids []string, labels []int) error {
	if phase == sdk.PhaseInfer {
		for i := range labels {
			p := &sdk.Prediction{ID: ids[i], Scores: Scores(probs, k, i), Label: labels[i]}
			if err := emit(sdk.Event{Prediction: p}); err != nil {
				return err
			}
		}
		return nil
	}
	loss, top1, top5 := EvalMetrics(probs, k, labels)
	m := map[string]float64{"loss": loss, "top1": top1, "top5": top5}
	return emit(sdk.Event{Step: &sdk.Step{Iter: iter, Samples: int64(len(labels)), Metrics: m}})
}

// WeightConventions tells the conventions weights were trained with: a
// PyTorch checkpoint's (MIT's and mmaction2's share them), those a
// converted directory records (convert.ConventionsFile), else Paddle's.
func WeightConventions(path string) (convert.Conventions, error) {
	if IsPdparams(path) {
		if torch.IsTorch(path) {
			return convert.PyTorch, nil
		}
		return convert.Paddle, nil
	}
	c, ok, err := convert.ReadConventions(path)
	if err != nil {
		return convert.Conventions{}, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
	}
	if !ok {
		return convert.Paddle, nil
	}
	return c, nil
}

// Infer runs in's samples (in.Shape[0] of them, the caller has checked
// the rest of its shape) through m's fixed-batch evaluation graph on the
// device, in chunks of the graph's batch, the last one padded, and returns
// their probabilities [N, num_classes]: the Infer RPC of every classifier
// (stored batch-norm statistics make each sample's output independent of
// the others).
func (d *Device) Infer(ctx context.Context, m *resnet.Model, in sdk.Tensor) (sdk.Tensor, error) {
	c := m.Config()
	n, batch, sampleSize, k := int(in.Shape[0]), c.BatchSize, c.InputSize()/c.BatchSize, c.NumClasses
	if len(in.Data) != n*sampleSize {
		return sdk.Tensor{}, sdk.Errorf(sdk.CodeInvalidArgument, "input shape %v holds %d values, data has %d", in.Shape, n*sampleSize, len(in.Data))
	}
	r, err := d.Runner(m)
	if err != nil {
		return sdk.Tensor{}, err
	}
	out := make([]float32, 0, n*k)
	for i := 0; i < n; i += batch {
		if err := ctx.Err(); err != nil {
			return sdk.Tensor{}, err
		}
		j := min(i+batch, n)
		res, err := r.Forward(resnet.Eval, Pad(in.Data[i*sampleSize:j*sampleSize], batch, sampleSize), nil)
		if err != nil {
			return sdk.Tensor{}, err
		}
		for _, p := range res.Probs[:(j-i)*k] {
			out = append(out, float32(p))
		}
	}
	return sdk.Tensor{Shape: []int64{int64(n), int64(k)}, Data: out}, nil
}
