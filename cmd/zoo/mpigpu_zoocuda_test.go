//go:build zoocuda

package main_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/weights"
)

// gpuMPIBin returns a folder with zoo and the CUDA build of
// zoo-plugin-tsm with MPI (tags openblas,mpi,zoocuda).
func gpuMPIBin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("mpirun not found (%v): run `make deps`", err)
	}
	dir := filepath.Join(binDir, "mpigpu")
	for _, b := range [][]string{
		{"-o", filepath.Join(dir, "zoo"), "."},
		{"-tags", "openblas,mpi,zoocuda", "-o", filepath.Join(dir, "zoo-plugin-tsm"), "../../plugins/tsm/cmd/zoo-plugin-tsm"},
	} {
		if out, err := exec.Command("go", append([]string{"build"}, b...)...).CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", b, err, out)
		}
	}
	return dir
}

// gpuJob is the built-in job made tiny for the kernel emulator: 2 steps
// of the global batch 4 on a TSM-R18 of base width 4.
func gpuJob(save string, extra ...string) []string {
	return append([]string{"run", "TSM", "train", "--save_dir", save, "--log_interval", "1", "--valid_interval", "0",
		"--batch_size", "4", "--set", "TRAIN.epoch=1", "--set", "SYNTHETIC.train_videos=8", "--set", "MODEL.base_width=4"}, extra...)
}

// TestMPIGPUEqualsMicroBatches: `mpirun -np 2 zoo run TSM train
// --use_gpu` (the CUDA build on nn/cuda's kernel emulator) allreduces the
// GPU ranks' gradients through host memory and ends the epoch with the
// trainable parameters and velocities of one GPU process with
// TRAIN.micro_batches=2 (within 1e-4), and of the CPU with micro_batches
// 2 within the GPU-against-CPU tolerance (1e-3, docs/gpu.md). Before,
// Open refused --use_gpu with ranks or micro-batches.
func TestMPIGPUEqualsMicroBatches(t *testing.T) {
	dir := gpuMPIBin(t)
	emu := []string{"ZOO_CUDA_EMULATOR=" + t.TempDir(), "OMP_NUM_THREADS=1"}
	dp, one, cpu := t.TempDir(), t.TempDir(), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "mpirun", append([]string{"-np", "2", "--oversubscribe", "--bind-to", "none", filepath.Join(dir, "zoo")}, gpuJob(dp, "--use_gpu")...)...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_WEIGHTS_DIR="+t.TempDir(), "ZOO_OFFLINE=1")
	cmd.Env = append(append(cmd.Env, mpiEnv...), emu...)
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("mpirun -np 2 --use_gpu: %v (%v)\nstdout: %s\nstderr: %s", err, ctx.Err(), out.String(), errb.String())
	}
	for _, run := range []struct {
		save string
		args []string
	}{
		{one, []string{"--use_gpu", "--set", "TRAIN.micro_batches=2"}},
		{cpu, []string{"--set", "TRAIN.micro_batches=2"}},
	} {
		if r := zooAt(t, dir, emu, gpuJob(run.save, run.args...)...); r.code != 0 {
			t.Fatalf("zoo %v: exit %d\nstdout: %s\nstderr: %s", run.args, r.code, r.stdout, r.stderr)
		}
	}
	ranks, mb, cp := filepath.Join(dp, "TSM_epoch0"), filepath.Join(one, "TSM_epoch0"), filepath.Join(cpu, "TSM_epoch0")
	compareTrainable(t, ranks, mb)
	if n, d := trainableDiff(t, ranks, mb); n > 0 {
		t.Logf("2 GPU ranks against GPU micro_batches=2: largest relative difference %.2g over %d tensors", d, n)
	}
	n, d := trainableDiff(t, ranks, cp)
	t.Logf("2 GPU ranks against CPU micro_batches=2: largest relative difference %.2g over %d tensors", d, n)
	if n < 20 || d > 1e-3 {
		t.Errorf("2 GPU ranks against the CPU: %d tensors, largest relative difference %.2g (bound 1e-3)", n, d)
	}
}

// trainableDiff returns how many trainable tensors (parameters and
// velocities, not batch-norm running statistics) two checkpoints share
// and their largest difference relative to each tensor's largest value.
func trainableDiff(t *testing.T, a, b string) (int, float64) {
	t.Helper()
	pa, err := weights.ReadParams(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := weights.ReadParams(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := map[string]*weights.Tensor{}
	for _, x := range pb.Tensors {
		bs[x.Name] = x
	}
	n, worst := 0, 0.0
	for _, x := range pa.Tensors {
		if strings.HasSuffix(x.Name, "_mean") || strings.HasSuffix(x.Name, "_variance") {
			continue
		}
		y := bs[x.Name]
		if y == nil {
			continue
		}
		xv, err1 := x.Float32s()
		yv, err2 := y.Float32s()
		if err1 != nil || err2 != nil || len(xv) != len(yv) {
			t.Fatalf("%s: %v %v", x.Name, err1, err2)
		}
		var d, m float64
		for i := range xv {
			d = math.Max(d, math.Abs(float64(xv[i]-yv[i])))
			m = math.Max(m, math.Abs(float64(yv[i])))
		}
		worst = math.Max(worst, d/math.Max(m, 1e-12))
		n++
	}
	return n, worst
}
