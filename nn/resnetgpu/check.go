//go:build zoocuda

package resnetgpu

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"time"

	"github.com/zoo-ml/zoo/nn/cuda"
	"github.com/zoo-ml/zoo/nn/resnet"
)

// Tolerance is the largest relative error Check accepts between the GPU
// and the CPU build (fp32 on both).
const Tolerance = 1e-3

// CheckResult is one configuration's comparison of the GPU model with the
// CPU one (resnet.Model's gorgonia graphs).
type CheckResult struct {
	Name string `json:"name"`
	// LogitsErr compares the eval logits, centred per row (the CPU's come
	// from its probabilities): max|gpu-cpu| / max|cpu|.
	LogitsErr float64 `json:"logits_rel_err"`
	LossErr   float64 `json:"train_loss_rel_err"`
	// UpdateErr is the worst, over parameters and running statistics, of
	// ||Δgpu - Δcpu||₂ / ||Δcpu||₂, Δ being one training step's change.
	UpdateErr  float64 `json:"update_rel_err"`
	WorstParam string  `json:"worst_param"`
	CPUSeconds float64 `json:"cpu_seconds"`
	GPUSeconds float64 `json:"gpu_seconds"`
	Pass       bool    `json:"pass"`
}

// CheckConfigs are the configurations `zoo-gpucheck` compares: the small
// demo TSM and TSM-R50 at Kinetics' shape, one clip.
func CheckConfigs() map[string]resnet.Config {
	small := resnet.SmallConfig(10)
	small.BatchSize = 2
	return map[string]resnet.Config{
		"small":   small,
		"tsm-r50": {Depth: 50, NumClasses: 400, SegNum: 8, TemporalShift: true, BatchSize: 1, Height: 224, Width: 224, Seed: 7},
	}
}

// Check runs cfg's eval forward and one training step on the CPU (nn/exec,
// resnet.Model's own executor) and on the device (the graph executor), each on its own
// resnet.Model made from cfg (the same parameters and dropout masks), on
// the same data, and compares them.
func Check(d *cuda.Device, name string, cfg resnet.Config, log io.Writer) (CheckResult, error) {
	res := CheckResult{Name: name}
	cpu, err := resnet.New(cfg)
	if err != nil {
		return res, err
	}
	defer cpu.Close()
	twin, err := resnet.New(cfg)
	if err != nil {
		return res, err
	}
	defer twin.Close()
	gpu, err := New(d, twin)
	if err != nil {
		return res, err
	}
	defer gpu.Close()
	r := rand.New(rand.NewSource(cfg.Seed + 99))
	input := make([]float32, cpu.Config().InputSize())
	for i := range input {
		input[i] = float32(r.NormFloat64())
	}
	labels := make([]int, cfg.BatchSize)
	for i := range labels {
		labels[i] = r.Intn(cfg.NumClasses)
	}
	before := map[string][]float32{}
	for _, p := range cpu.Params() {
		before[p.Name] = append([]float32(nil), p.Value.Float32s()...)
	}
	const lr = 0.01

	t0 := time.Now()
	ce, err := cpu.Forward(resnet.Eval, input, nil)
	if err != nil {
		return res, fmt.Errorf("cpu eval: %w", err)
	}
	ct, err := cpu.TrainStep(input, labels, lr)
	if err != nil {
		return res, fmt.Errorf("cpu train step: %w", err)
	}
	res.CPUSeconds = time.Since(t0).Seconds()
	fmt.Fprintf(log, "%s: cpu eval + train step %.1fs\n", name, res.CPUSeconds)

	t0 = time.Now()
	if _, err := gpu.Forward(resnet.Eval, input, nil); err != nil {
		return res, fmt.Errorf("gpu eval: %w", err)
	}
	gl := gpu.Logits()
	gt, err := gpu.TrainStep(input, labels, lr)
	if err != nil {
		return res, fmt.Errorf("gpu train step: %w", err)
	}
	res.GPUSeconds = time.Since(t0).Seconds()

	k := cfg.NumClasses
	res.LogitsErr = logitsErr(gl, ce.Probs, k)
	res.LossErr = math.Abs(gt.Loss-ct.Loss) / max(math.Abs(ct.Loss), 1e-12)
	if err := gpu.Download(twin); err != nil {
		return res, err
	}
	for _, p := range cpu.Params() {
		tp, _ := twin.Param(p.Name)
		g := tp.Value.Float32s()
		var num, den float64
		for i, b := range before[p.Name] {
			dc := float64(p.Value.Float32s()[i]) - float64(b)
			dg := float64(g[i]) - float64(b)
			num += (dg - dc) * (dg - dc)
			den += dc * dc
		}
		e := math.Sqrt(num) / max(math.Sqrt(den), 1e-30)
		if den == 0 && num == 0 {
			e = 0
		}
		if e > res.UpdateErr || math.IsNaN(e) {
			res.UpdateErr, res.WorstParam = e, p.Name
		}
	}
	res.Pass = res.LogitsErr <= Tolerance && res.LossErr <= Tolerance && res.UpdateErr <= Tolerance
	fmt.Fprintf(log, "%s: logits %.2e, loss %.2e, update %.2e (%s): pass %v\n", name, res.LogitsErr, res.LossErr, res.UpdateErr, res.WorstParam, res.Pass)
	return res, nil
}

// logitsErr compares the GPU's logits with the CPU's, which resnet.Model
// exposes only as float64 probabilities: log p is the logits less a
// per-row constant, so both are centred on the mean over the row's classes
// whose CPU probability did not underflow (with BN's running statistics at
// their initial values an untrained eval pass can have a logit range of
// hundreds). Returns max|gpu-cpu| / max|cpu| over those entries.
func logitsErr(logits []float32, probs []float64, k int) float64 {
	var num, den float64
	for i := 0; i < len(probs); i += k {
		var mc, mg float64
		n := 0
		for j, p := range probs[i : i+k] {
			if p > 1e-300 {
				mc += math.Log(p)
				mg += float64(logits[i+j])
				n++
			}
		}
		mc, mg = mc/float64(n), mg/float64(n)
		for j, p := range probs[i : i+k] {
			if p > 1e-300 {
				c := math.Log(p) - mc
				num = max(num, math.Abs(float64(logits[i+j])-mg-c))
				den = max(den, math.Abs(c))
			}
		}
	}
	if math.IsNaN(num) {
		return math.Inf(1)
	}
	return num / max(den, 1e-12)
}

// BenchResult is the GPU model's speed at one batch size (clips of SegNum
// frames).
type BenchResult struct {
	Batch      int     `json:"batch"`
	ForwardMS  float64 `json:"forward_ms"`
	TrainMS    float64 `json:"train_step_ms"`
	ClipsPerS  float64 `json:"train_clips_per_s"`
	Iterations int     `json:"iterations"`
	// PoolPeakMiB is the most device memory the executors' value pools
	// (intermediate values, reused by liveness) held at once, eval and
	// train graphs together; parameters, velocities and per-op state
	// come on top.
	PoolPeakMiB float64 `json:"value_pool_peak_mib"`
}

// Bench times TSM-R50 (224x224, 8 segments, 400 classes) eval forward and
// training step at the given batch size, after warm-up.
func Bench(d *cuda.Device, batch, iters int) (BenchResult, error) {
	cfg := resnet.Config{Depth: 50, NumClasses: 400, SegNum: 8, TemporalShift: true, BatchSize: batch, Height: 224, Width: 224}
	cpu, err := resnet.New(cfg)
	if err != nil {
		return BenchResult{}, err
	}
	gpu, err := New(d, cpu)
	if err != nil {
		return BenchResult{}, err
	}
	defer gpu.Close()
	input := make([]float32, cfg.InputSize())
	r := rand.New(rand.NewSource(1))
	for i := range input {
		input[i] = float32(r.NormFloat64())
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = r.Intn(400)
	}
	time1 := func(f func() error) (float64, error) {
		for i := 0; i < 2; i++ { // warm-up
			if err := f(); err != nil {
				return 0, err
			}
		}
		t0 := time.Now()
		for i := 0; i < iters; i++ {
			if err := f(); err != nil {
				return 0, err
			}
		}
		return time.Since(t0).Seconds() * 1000 / float64(iters), nil
	}
	res := BenchResult{Batch: batch, Iterations: iters}
	if res.ForwardMS, err = time1(func() error { _, err := gpu.Forward(resnet.Eval, input, nil); return err }); err != nil {
		return res, err
	}
	if res.TrainMS, err = time1(func() error { _, err := gpu.TrainStep(input, labels, 0.001); return err }); err != nil {
		return res, err
	}
	res.ClipsPerS = float64(batch) / (res.TrainMS / 1000)
	res.PoolPeakMiB = float64(gpu.PeakElements()) * 4 / (1 << 20)
	return res, nil
}

// Report is what zoo-gpucheck writes as JSON.
type Report struct {
	Device string        `json:"device"`
	Checks []CheckResult `json:"checks"`
	Bench  []BenchResult `json:"bench"`
	Pass   bool          `json:"pass"`
}

// WriteJSON writes r indented.
func (r Report) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(r)
}
