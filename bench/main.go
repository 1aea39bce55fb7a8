// Command zoo-bench times zoo's TSM models on this machine and, when
// python3 with PyTorch is installed, the same TSM-ResNet-50 in PyTorch
// (bench/tsm_torch.py) in the same run, and prints the ratio. `make bench`
// runs it.
//
// Each case runs in a child process of its own (zoo-bench re-executes
// itself with -case), so the peak RSS reported for a forward pass holds no
// training buffers and no other case's. Every case reports wall and CPU
// (user+system, getrusage) seconds per clip: on a machine shared with other
// work wall time depends on the neighbours, CPU time much less. zoo and
// PyTorch run alternately, -rounds times each (zoo, torch, zoo, torch,
// ...), so a change of load hits both; the table has the medians and
// their ratio, stderr every round. The load average (/proc/loadavg) is
// printed before and after, and the kernel library and ISA of each side.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/zoo-ml/zoo/internal/procenv"
	"github.com/zoo-ml/zoo/nn/ops"
	"github.com/zoo-ml/zoo/nn/resnet"
)

// benchCase is one measurement: a model, a mode, a batch size and how
// many timed iterations (after one untimed warm-up, which builds the graph
// and allocates its buffers).
type benchCase struct {
	Name  string
	Cfg   resnet.Config
	Train bool
	Iters int
	// Torch is the tsm_torch.py arguments of the PyTorch peer, if any.
	Torch []string
}

func r50(batch int) resnet.Config {
	return resnet.Config{Depth: 50, NumClasses: 400, SegNum: 8, TemporalShift: true, BatchSize: batch, Height: 224, Width: 224}
}

// small is the geometry of plugins/tsm's DefaultJob, `zoo run TSM train`'s
// model: TSM-ResNet-18, base width 16, 8 segments of 32x32, batch 16.
func small() resnet.Config {
	return resnet.Config{Depth: 18, NumClasses: 10, SegNum: 8, TemporalShift: true, BaseWidth: 16, BatchSize: 16, Height: 32, Width: 32}
}

func cases(iters int) []benchCase {
	return []benchCase{
		{Name: "tsm-r50 forward b1", Cfg: r50(1), Iters: iters, Torch: []string{"--case", "fwd", "--batch", "1"}},
		{Name: "tsm-r50 forward b8", Cfg: r50(8), Iters: 1, Torch: []string{"--case", "fwd", "--batch", "8"}},
		{Name: "tsm-r50 train b1", Cfg: r50(1), Train: true, Iters: iters, Torch: []string{"--case", "train", "--batch", "1"}},
		{Name: "tsm-r18/16 32px forward b16", Cfg: small(), Iters: 2 * iters},
		{Name: "tsm-r18/16 32px train b16", Cfg: small(), Train: true, Iters: 2 * iters},
	}
}

// measurement is what one case's child process reports.
type measurement struct {
	WallPerClip float64 `json:"wall_s_per_clip"`
	CPUPerClip  float64 `json:"cpu_s_per_clip"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`
	// AllocMBPerClip is the Go heap allocated per clip in the timed
	// iterations: buffers reused across steps keep it small.
	AllocMBPerClip float64 `json:"alloc_mb_per_clip"`
	Iters          int     `json:"iters"`
	Threads        int     `json:"threads"`
	Kernels        string  `json:"kernels"`
	// ArenaMB is the memory zoo's planned graphs hold (nn/exec: values
	// and the shared scratch), part of PeakRSSMB.
	ArenaMB float64 `json:"arena_mb,omitempty"`
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("zoo-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	iters := fs.Int("iters", 3, "timed iterations per case (forward b8: 1), after one warm-up")
	only := fs.String("only", "", "run only the cases whose name contains one of these comma-separated strings")
	python := fs.String("python", "", "python3 with torch for the PyTorch peer (default: the first of python3, /usr/bin/python3 that imports torch); \"none\" skips it")
	rounds := fs.Int("rounds", 3, "runs of each case per side, zoo and PyTorch alternately; the table has the medians")
	precision := fs.String("precision", "fp32", "fp32, or bf16: zoo's convolutions in bfloat16 (oneDNN; training: forward, backward data and weights, fp32 master weights), PyTorch's forward (training: forward and loss, backward outside) under torch.autocast('cpu', dtype=torch.bfloat16)")
	child := fs.String("case", "", "internal: run this one case and print its measurement as JSON")
	cpuprofile := fs.String("cpuprofile", "", "with -case: write a Go CPU profile of the timed iterations to this file (go tool pprof)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rounds < 1 || *iters < 1 {
		fmt.Fprintf(stderr, "zoo-bench: -rounds %d, -iters %d: both must be at least 1\n", *rounds, *iters)
		return 2
	}
	if err := ops.SetPrecision(*precision); err != nil {
		fmt.Fprintf(stderr, "zoo-bench: -precision: %v\n", err)
		return 2
	}
	if *cpuprofile != "" && *child == "" {
		fmt.Fprintln(stderr, "zoo-bench: -cpuprofile needs -case NAME (one case in this process)")
		return 2
	}
	if *child != "" {
		return runChild(*child, *iters, *cpuprofile, stdout, stderr)
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "zoo-bench: %v\n", err)
		return 1
	}
	py := findPython(*python)
	script := filepath.Join(sourceDir(), "tsm_torch.py")
	if _, err := os.Stat(script); py != "" && err != nil {
		fmt.Fprintf(stderr, "zoo-bench: no PyTorch peer: %v\n", err)
		py = ""
	}
	fmt.Fprintf(stdout, "# %s  load %s  GOMAXPROCS %d  BLAS %s  precision %s  rounds %d\n", time.Now().UTC().Format(time.RFC3339), loadavg(), runtime.GOMAXPROCS(0), resnet.BLAS(), *precision, *rounds)
	fmt.Fprintf(stdout, "# zoo kernels: %s\n", ops.Kernels())
	if py == "" {
		fmt.Fprintln(stdout, "# PyTorch: skipped or not found (install python3-torch), zoo only")
	}
	if hint := kernelHint(resnet.BLAS()); hint != "" {
		fmt.Fprintln(stdout, "# "+hint)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tzoo s/clip\tzoo cpu-s/clip\tzoo GFLOP/s\tzoo RSS MB\tzoo alloc MB/clip\ttorch s/clip\ttorch cpu-s/clip\ttorch RSS MB\tratio wall\tratio cpu\t")
	failed := false
	var rss []string // peak RSS side by side, for the memory targets
	torchKernels := ""
	for _, c := range cases(*iters) {
		if !selected(c.Name, *only) {
			continue
		}
		zargs := []string{"-case", c.Name, "-iters", fmt.Sprint(*iters), "-precision", *precision}
		targs := append(append([]string{script}, c.Torch...), "--precision", *precision)
		var zs, ts []measurement
		for r := 0; r < *rounds; r++ {
			fmt.Fprintf(stderr, "zoo-bench: %s, round %d: zoo ...", c.Name, r+1)
			zc := exec.Command(self, zargs...)
			// zoo's cases run as a plugin does under zoo (procenv.Plugin:
			// OMP_WAIT_POLICY=passive unless set); PyTorch keeps its defaults.
			zc.Env = append(os.Environ(), procenv.Plugin(os.Environ())...)
			z, err := runJSON(zc, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "\nzoo-bench: %s: %v\n", c.Name, err)
				failed = true
				break
			}
			zs = append(zs, z)
			fmt.Fprintf(stderr, " %.3f s/clip (cpu %.3f)", z.WallPerClip, z.CPUPerClip)
			if py != "" && c.Torch != nil {
				fmt.Fprint(stderr, ", PyTorch ...")
				t, err := runJSON(exec.Command(py, append(targs, "--iters", fmt.Sprint(z.Iters))...), stderr)
				if err != nil {
					fmt.Fprintf(stderr, "\nzoo-bench: %s (PyTorch): %v\n", c.Name, err)
				} else {
					ts = append(ts, t)
					torchKernels = t.Kernels
					fmt.Fprintf(stderr, " %.3f s/clip (cpu %.3f)", t.WallPerClip, t.CPUPerClip)
				}
			}
			fmt.Fprintf(stderr, "  [load %s]\n", loadavg())
		}
		if len(zs) == 0 {
			continue
		}
		z := medianOf(zs)
		fwd, train := c.Cfg.FLOPs()
		flops := fwd
		if c.Train {
			flops = train
		}
		row := fmt.Sprintf("%s\t%.3f\t%.3f\t%.1f\t%.0f\t%.1f\t", c.Name, z.WallPerClip, z.CPUPerClip, float64(flops)/z.WallPerClip/1e9, z.PeakRSSMB, z.AllocMBPerClip)
		if len(ts) > 0 {
			t := medianOf(ts)
			row += fmt.Sprintf("%.3f\t%.3f\t%.0f\t%.2f\t%.2f\t", t.WallPerClip, t.CPUPerClip, t.PeakRSSMB, z.WallPerClip/t.WallPerClip, z.CPUPerClip/t.CPUPerClip)
			rss = append(rss, rssLine(c.Name, z, t))
		} else {
			row += "-\t-\t-\t-\t-\t"
		}
		fmt.Fprintln(tw, row)
	}
	tw.Flush()
	for _, l := range rss {
		fmt.Fprintln(stdout, l)
	}
	if torchKernels != "" {
		fmt.Fprintf(stdout, "# PyTorch kernels: %s\n", torchKernels)
	}
	fmt.Fprintf(stdout, "# load at the end %s; medians of %d rounds; GFLOP/s counts convolutions and fc (resnet.Config.FLOPs), on wall time; ratio: zoo/PyTorch of the medians\n", loadavg(), *rounds)
	if failed {
		return 1
	}
	return 0
}

// rssLine compares zoo's peak RSS with PyTorch's for one case: the
// memory target is zoo at most PyTorch's.
func rssLine(name string, z, t measurement) string {
	verdict := "zoo <= PyTorch"
	if z.PeakRSSMB > t.PeakRSSMB {
		verdict = "zoo > PyTorch"
	}
	return fmt.Sprintf("# peak RSS %s: zoo %.0f MB (planned arena %.0f MB), PyTorch %.0f MB, ratio %.2f: %s", name, z.PeakRSSMB, z.ArenaMB, t.PeakRSSMB, z.PeakRSSMB/t.PeakRSSMB, verdict)
}

func selected(name, only string) bool {
	if only == "" {
		return true
	}
	for _, s := range strings.Split(only, ",") {
		if s != "" && strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// runChild runs one case in this process and prints its measurement.
func runChild(name string, iters int, cpuprofile string, stdout, stderr io.Writer) int {
	for _, c := range cases(iters) {
		if c.Name != name {
			continue
		}
		m, err := measure(c, cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "zoo-bench: %s: %v\n", name, err)
			return 1
		}
		if err := json.NewEncoder(stdout).Encode(m); err != nil {
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "zoo-bench: no case %q\n", name)
	return 2
}

func measure(c benchCase, cpuprofile string) (measurement, error) {
	m, err := resnet.New(c.Cfg)
	if err != nil {
		return measurement{}, err
	}
	defer m.Close()
	rng := rand.New(rand.NewSource(1))
	in := make([]float32, c.Cfg.InputSize())
	for i := range in {
		in[i] = float32(rng.NormFloat64())
	}
	labels := make([]int, c.Cfg.BatchSize)
	step := func() error {
		if c.Train {
			_, err := m.TrainStep(in, labels, 0.01)
			return err
		}
		_, err := m.Forward(resnet.Eval, in, nil)
		return err
	}
	if err := step(); err != nil { // builds the graph, allocates buffers
		return measurement{}, err
	}
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return measurement{}, fmt.Errorf("-cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return measurement{}, fmt.Errorf("-cpuprofile %s: %w", cpuprofile, err)
		}
		defer pprof.StopCPUProfile()
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	cpu0, t0 := cpuSeconds(), time.Now()
	for i := 0; i < c.Iters; i++ {
		if err := step(); err != nil {
			return measurement{}, err
		}
	}
	wall, cpu := time.Since(t0).Seconds(), cpuSeconds()-cpu0
	runtime.ReadMemStats(&ms1)
	clips := float64(c.Iters * c.Cfg.BatchSize)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	_, arena := m.MemoryPlan(resnet.Eval)
	return measurement{WallPerClip: wall / clips, CPUPerClip: cpu / clips, PeakRSSMB: float64(ru.Maxrss) / 1024,
		AllocMBPerClip: float64(ms1.TotalAlloc-ms0.TotalAlloc) / clips / (1 << 20), Iters: c.Iters, Threads: runtime.GOMAXPROCS(0), Kernels: ops.Kernels(),
		ArenaMB: float64(arena) / (1 << 20)}, nil
}

// medianOf is the element-wise median of the measurements' figures (the
// lower middle one for an even count).
func medianOf(ms []measurement) measurement {
	med := func(f func(measurement) float64) float64 {
		v := make([]float64, len(ms))
		for i, m := range ms {
			v[i] = f(m)
		}
		sort.Float64s(v)
		return v[(len(v)-1)/2]
	}
	out := ms[0]
	out.WallPerClip = med(func(m measurement) float64 { return m.WallPerClip })
	out.CPUPerClip = med(func(m measurement) float64 { return m.CPUPerClip })
	out.PeakRSSMB = med(func(m measurement) float64 { return m.PeakRSSMB })
	out.AllocMBPerClip = med(func(m measurement) float64 { return m.AllocMBPerClip })
	return out
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// runJSON runs cmd and decodes the last line of its stdout.
func runJSON(cmd *exec.Cmd, stderr io.Writer) (measurement, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, stderr
	if err := cmd.Run(); err != nil {
		return measurement{}, err
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var m measurement
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &m); err != nil {
		return measurement{}, fmt.Errorf("read measurement %q: %w", lines[len(lines)-1], err)
	}
	if m.Iters == 0 {
		return measurement{}, errors.New("measurement without iterations")
	}
	return m, nil
}

func findPython(flagValue string) string {
	switch flagValue {
	case "none":
		return ""
	case "":
	default:
		return flagValue
	}
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import torch").Run() == nil {
			return path
		}
	}
	return ""
}

// sourceDir is where tsm_torch.py is looked for: $ZOO_BENCH_DIR, else
// bench/ under the working directory (make bench runs from the repository
// root), else the executable's directory.
func sourceDir() string {
	if d := os.Getenv("ZOO_BENCH_DIR"); d != "" {
		return d
	}
	if _, err := os.Stat(filepath.Join("bench", "tsm_torch.py")); err == nil {
		return "bench"
	}
	self, _ := os.Executable()
	return filepath.Dir(self)
}

// kernelHint says when OpenBLAS runs AVX2 kernels on a CPU with AVX-512:
// OPENBLAS_CORETYPE=Haswell in the environment does that, and halves
// sgemm's speed.
func kernelHint(blas string) string {
	if !strings.Contains(blas, "Haswell") || !cpu.X86.HasAVX512F || !cpu.X86.HasAVX512BW || !cpu.X86.HasAVX512DQ || !cpu.X86.HasAVX512VL {
		return ""
	}
	return fmt.Sprintf("note: OpenBLAS runs its AVX2 (Haswell) kernels on this AVX-512 CPU (OPENBLAS_CORETYPE=%q); OPENBLAS_CORETYPE=SkylakeX doubles sgemm speed here", os.Getenv("OPENBLAS_CORETYPE"))
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
