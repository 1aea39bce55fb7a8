package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/weights"
)

// mpiEnv is what Open MPI needs to run as root in a container (CI is root;
// docs/distributed.md): mpirun refuses root without the first two, and the
// vader transport's single-copy mechanism (CMA) needs ptrace rights a
// container lacks.
var mpiEnv = []string{
	"OMPI_ALLOW_RUN_AS_ROOT=1",
	"OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
	"OMPI_MCA_btl_vader_single_copy_mechanism=none",
	"OMP_NUM_THREADS=1",
}

var mpiDir struct {
	once sync.Once
	dir  string
	err  error
}

// mpiBin returns a directory with zoo, zoo-plugin-tsm and zoo-plugin-resnet built with the
// tag mpi (what `make build` makes). It fails when mpirun or Open MPI's
// headers are missing: `make deps` installs them.
func mpiBin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		t.Fatalf("mpirun not found (%v): run `make deps` (Debian's openmpi-bin, libopenmpi-dev)", err)
	}
	mpiDir.once.Do(func() {
		dir := filepath.Join(binDir, "mpi")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			mpiDir.err = err
			return
		}
		for _, b := range [][]string{
			{"-o", filepath.Join(dir, "zoo"), "."},
			{"-tags", "openblas,mpi", "-o", filepath.Join(dir, "zoo-plugin-tsm"), "../../plugins/tsm/cmd/zoo-plugin-tsm"},
			{"-tags", "openblas,mpi", "-o", filepath.Join(dir, "zoo-plugin-resnet"), "../../plugins/resnet/cmd/zoo-plugin-resnet"},
		} {
			if out, err := exec.Command("go", append([]string{"build"}, b...)...).CombinedOutput(); err != nil {
				mpiDir.err = fmt.Errorf("go build %v: %v\n%s", b, err, out)
				return
			}
		}
		mpiDir.dir = dir
	})
	if mpiDir.err != nil {
		t.Fatal(mpiDir.err)
	}
	return mpiDir.dir
}

// mpirun runs `mpirun -np n zoo ARGS` with mpi-built zoo and plugin,
// bounded by limit.
func mpirun(t *testing.T, n int, limit time.Duration, args ...string) result {
	t.Helper()
	dir := mpiBin(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// --bind-to none: each rank sees the CPUs one process sees, so Go and
	// the kernels split work (and round) as one process does and the
	// 2-rank model equals micro_batches 2 bitwise; bound to one core
	// (Open MPI's default for 2 ranks) they round differently, and the
	// difference, 3e-6 relative after 4 steps, grows chaotically
	// (docs/distributed.md).
	cmd := exec.CommandContext(ctx, "mpirun", append([]string{"-np", fmt.Sprint(n), "--oversubscribe", "--bind-to", "none", filepath.Join(dir, "zoo")}, args...)...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_WEIGHTS_DIR="+t.TempDir(), "ZOO_OFFLINE=1")
	cmd.Env = append(cmd.Env, mpiEnv...)
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mpirun -np %d zoo %v: still running after %v\nstdout: %s\nstderr: %s", n, args, limit, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// mpiJob is the built-in job made small: 4 steps of the global batch 16.
func mpiJob(save string) []string {
	return []string{"run", "TSM", "train", "--save_dir", save, "--log_interval", "1", "--valid_interval", "0",
		"--set", "TRAIN.epoch=1", "--set", "SYNTHETIC.train_videos=64"}
}

// TestMPITrainEqualsMicroBatches: `mpirun -np 2 zoo run TSM train` and one
// process with TRAIN.micro_batches=2 end the epoch with the same trainable
// parameters and Momentum velocities (batch-norm running statistics are
// per rank: not compared); rank 0 alone logs and writes the checkpoint.
func TestMPITrainEqualsMicroBatches(t *testing.T) {
	dp, one := t.TempDir(), t.TempDir()
	r := mpirun(t, 2, 5*time.Minute, mpiJob(dp)...)
	if r.code != 0 {
		t.Fatalf("mpirun -np 2: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stdout+r.stderr, "[TRAIN] Epoch 0, iter 0 "); n != 1 {
		t.Errorf("the first step is logged %d times, want once (rank 0 alone logs)\nstdout: %s\nstderr: %s", n, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stdout+r.stderr, "saved checkpoint"); n != 1 {
		t.Errorf("%d checkpoints saved, want 1 (rank 0's)\n%s", n, r.stderr)
	}
	r1 := zooAt(t, mpiBin(t), []string{"OMP_NUM_THREADS=1"}, append(mpiJob(one), "--set", "TRAIN.micro_batches=2")...)
	if r1.code != 0 {
		t.Fatalf("micro_batches=2: exit %d\nstdout: %s\nstderr: %s", r1.code, r1.stdout, r1.stderr)
	}
	compareTrainable(t, filepath.Join(dp, "TSM_epoch0"), filepath.Join(one, "TSM_epoch0"))
}

// compareTrainable checks that two checkpoints hold the same trainable
// parameters and velocities within 1e-4 relative (batch-norm running
// statistics, per rank, are not compared).
func compareTrainable(t *testing.T, dirA, dirB string) {
	t.Helper()
	a, err := weights.ReadParams(dirA, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := weights.ReadParams(dirB, nil)
	if err != nil {
		t.Fatal(err)
	}
	bs := map[string]*weights.Tensor{}
	for _, x := range b.Tensors {
		bs[x.Name] = x
	}
	compared, velocities := 0, 0
	for _, x := range a.Tensors {
		if strings.HasSuffix(x.Name, "_mean") || strings.HasSuffix(x.Name, "_variance") {
			continue // batch-norm running statistics: rank 0's
		}
		y := bs[x.Name]
		if y == nil {
			t.Errorf("%s is in the first checkpoint only", x.Name)
			continue
		}
		xv, err1 := x.Float32s()
		yv, err2 := y.Float32s()
		if err1 != nil || err2 != nil || len(xv) != len(yv) {
			t.Fatalf("%s: %v %v, %d and %d values", x.Name, err1, err2, len(xv), len(yv))
		}
		var d, m float64
		for i := range xv {
			d = math.Max(d, math.Abs(float64(xv[i]-yv[i])))
			m = math.Max(m, math.Abs(float64(yv[i])))
		}
		if d > 1e-4*math.Max(m, 1e-12) {
			t.Errorf("%s: %s and %s differ by %g (max |value| %g)", x.Name, dirA, dirB, d, m)
		}
		compared++
		if strings.HasSuffix(x.Name, "_velocity_0") {
			velocities++
		}
	}
	if compared < 20 || velocities < 10 {
		t.Errorf("compared %d tensors (%d velocities): the checkpoint lacks the trainable state", compared, velocities)
	}
}

// TestMPIBatchNotDivisible: ranks x micro_batches must divide the global
// batch; the job fails at start, saying so.
func TestMPIBatchNotDivisible(t *testing.T) {
	r := mpirun(t, 2, 3*time.Minute, append(mpiJob(t.TempDir()), "--batch_size", "15")...)
	if r.code == 0 {
		t.Fatalf("mpirun -np 2 with batch 15: exit 0\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "TRAIN.batch_size 15 is not divisible by 2 ranks x TRAIN.micro_batches 1") {
		t.Errorf("stderr does not say why:\n%s", r.stderr)
	}
}

// rankPlugin returns the pid of the running zoo-plugin-tsm of dir whose
// environment says OMPI_COMM_WORLD_RANK=rank (0 when there is none).
func rankPlugin(dir string, rank int) int {
	out, _ := exec.Command("pgrep", "-f", filepath.Join(dir, "zoo-plugin-tsm")).Output()
	for _, f := range strings.Fields(string(out)) {
		env, err := os.ReadFile("/proc/" + f + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == fmt.Sprintf("OMPI_COMM_WORLD_RANK=%d", rank) {
				var pid int
				fmt.Sscan(f, &pid)
				return pid
			}
		}
	}
	return 0
}

// TestMPIRankKilled: kill -9 of rank 1's plugin, or of rank 1's zoo, in
// the middle of training brings the whole job down within 60 s, non-zero,
// leaves no process behind and the last checkpoint intact; a killed
// plugin is named with its rank.
func TestMPIRankKilled(t *testing.T) {
	for _, victim := range []string{"plugin", "zoo"} {
		t.Run(victim, func(t *testing.T) { rankKilled(t, victim) })
	}
}

func rankKilled(t *testing.T, victim string) {
	dir := mpiBin(t)
	save := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"-np", "2", "--oversubscribe", "--bind-to", "none", filepath.Join(dir, "zoo"), "run", "TSM", "train", "--save_dir", save,
		"--log_interval", "1", "--valid_interval", "0", "--set", "TRAIN.epoch=50", "--set", "SYNTHETIC.train_videos=64"}
	cmd := exec.CommandContext(ctx, "mpirun", args...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_OFFLINE=1")
	cmd.Env = append(cmd.Env, mpiEnv...)
	var errb bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	// Wait for a checkpoint and the next epoch under way.
	var stdout bytes.Buffer
	buf := make([]byte, 4096)
	for !strings.Contains(stdout.String(), "Epoch 1, iter 1 ") {
		n, err := pr.Read(buf)
		stdout.Write(buf[:n])
		if err != nil {
			t.Fatalf("mpirun ended before training: %v\n%s\n%s", err, stdout.String(), errb.String())
		}
	}
	go func() { // drain the rest
		for {
			if _, err := pr.Read(buf); err != nil {
				return
			}
		}
	}()
	pid := rankPlugin(dir, 1)
	if pid == 0 {
		t.Fatal("no plugin process of rank 1")
	}
	if victim == "zoo" {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// pid (comm) state ppid ...: comm has no spaces here.
		f := strings.Fields(string(stat))
		fmt.Sscan(f[3], &pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cancel()
		<-done
		t.Fatalf("the job still ran 60 s after rank 1's %s was killed\n%s", victim, errb.String())
	}
	if err == nil {
		t.Errorf("mpirun exited 0 after rank 1's %s was killed", victim)
	}
	// zoo names a rank whose plugin died (in whatever call it was: a
	// step, or the helper's own save at an epoch's end); mpirun a rank
	// that died itself.
	want := map[string][]string{"plugin": {"zoo: rank 1 of 2: ", "plugin zoo-plugin-tsm exited"}, "zoo": {"process rank 1 with PID"}}[victim]
	for _, w := range want {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr does not name rank 1 (%v after the kill), want %q:\n%s", time.Since(killed), w, errb.String())
		}
	}
	if _, err := weights.ReadParams(filepath.Join(save, "TSM_epoch0"), nil); err != nil {
		t.Errorf("the last checkpoint: %v", err)
	}
	time.Sleep(time.Second)
	if b, _ := exec.Command("pgrep", "-f", filepath.Join(dir, "zoo")).Output(); len(bytes.TrimSpace(b)) > 0 {
		t.Errorf("processes left behind: %s", b)
	}
}

// TestMPIRanksDisagree: ranks started with different configs (mpirun's
// MPMD form) fail at start with one line naming what differs.
func TestMPIRanksDisagree(t *testing.T) {
	dir := mpiBin(t)
	save := t.TempDir()
	zooArgs := func(lr string) []string {
		return append([]string{"-np", "1", filepath.Join(dir, "zoo")}, append(mpiJob(save), "--learning_rate", lr)...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append(append(zooArgs("0.01"), ":"), zooArgs("0.02")...)
	cmd := exec.CommandContext(ctx, "mpirun", append([]string{"--oversubscribe"}, args...)...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_OFFLINE=1")
	cmd.Env = append(cmd.Env, mpiEnv...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("still running after 3 minutes:\n%s", out)
	}
	if err == nil {
		t.Fatalf("ranks with different learning rates: exit 0\n%s", out)
	}
	if !strings.Contains(string(out), "ranks disagree: rank 1's config differs from rank 0's") {
		t.Errorf("the error does not name what differs:\n%s", out)
	}
	if strings.Contains(string(out), "[TRAIN]") {
		t.Errorf("ranks that disagree trained:\n%s", out)
	}
}

// jsonClose compares two decoded JSON values, numbers within tol.
func jsonClose(a, b any, tol float64) bool {
	switch x := a.(type) {
	case float64:
		y, ok := b.(float64)
		return ok && math.Abs(x-y) <= tol
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonClose(x[i], y[i], tol) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !jsonClose(v, y[k], tol) {
				return false
			}
		}
		return true
	}
	return fmt.Sprint(a) == fmt.Sprint(b)
}

// TestMPITestInferGather: test and infer under 2 ranks split the list and
// rank 0 gathers: the result files equal one process's (same videos and
// order, numbers within 1e-5).
func TestMPITestInferGather(t *testing.T) {
	save := t.TempDir()
	tiny := []string{"--save_dir", save, "--set", "SYNTHETIC.train_videos=32", "--set", "SYNTHETIC.test_videos=40", "--set", "SYNTHETIC.infer_videos=7"}
	if r := zooAt(t, mpiBin(t), nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--valid_interval", "0"}, tiny...)...); r.code != 0 {
		t.Fatalf("train: exit %d\n%s", r.code, r.stderr)
	}
	for _, mode := range []string{"test", "infer"} {
		file := filepath.Join(save, "TSM_"+mode+"_result.json")
		if r := zooAt(t, mpiBin(t), nil, append([]string{"run", "TSM", mode}, tiny...)...); r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", mode, r.code, r.stderr)
		}
		one, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(file)
		if r := mpirun(t, 2, 3*time.Minute, append([]string{"run", "TSM", mode}, tiny...)...); r.code != 0 {
			t.Fatalf("mpirun -np 2 zoo run TSM %s: exit %d\n%s\n%s", mode, r.code, r.stdout, r.stderr)
		}
		two, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(one, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(two, &b); err != nil {
			t.Fatal(err)
		}
		if !jsonClose(a, b, 1e-5) {
			t.Errorf("%s: 2 ranks' %s differs from one process's:\none: %.600s\ntwo: %.600s", mode, filepath.Base(file), one, two)
		}
	}
}

// TestShardInfer: `--shard I/N` without MPI infers the I-th of N disjoint
// parts of the list into TSM_infer_result_I-of-N.json; the parts, in order,
// are one process's whole result. A bad --shard is a usage error.
func TestShardInfer(t *testing.T) {
	save := t.TempDir()
	tiny := []string{"--save_dir", save, "--set", "SYNTHETIC.train_videos=32", "--set", "SYNTHETIC.infer_videos=7", "--set", "SYNTHETIC.test_videos=9"}
	if r := zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--valid_interval", "0"}, tiny...)...); r.code != 0 {
		t.Fatalf("train: exit %d\n%s", r.code, r.stderr)
	}
	if r := zoo(t, nil, append([]string{"run", "TSM", "infer"}, tiny...)...); r.code != 0 {
		t.Fatalf("infer: exit %d\n%s", r.code, r.stderr)
	}
	var whole []any
	b, err := os.ReadFile(filepath.Join(save, "TSM_infer_result.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &whole); err != nil {
		t.Fatal(err)
	}
	var parts []any
	for i := range 2 {
		if r := zoo(t, nil, append([]string{"run", "TSM", "infer", "--shard", fmt.Sprintf("%d/2", i)}, tiny...)...); r.code != 0 {
			t.Fatalf("infer --shard %d/2: exit %d\n%s", i, r.code, r.stderr)
		}
		b, err := os.ReadFile(filepath.Join(save, fmt.Sprintf("TSM_infer_result_%d-of-2.json", i)))
		if err != nil {
			t.Fatal(err)
		}
		var p []any
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if len(p) == 0 || len(p) == len(whole) {
			t.Errorf("shard %d/2 holds %d of %d videos", i, len(p), len(whole))
		}
		parts = append(parts, p...)
	}
	if !jsonClose(any(whole), any(parts), 1e-6) {
		t.Errorf("the shards' results in order differ from one process's:\nwhole: %.500v\nparts: %.500v", whole, parts)
	}
	if r := zoo(t, nil, append([]string{"run", "TSM", "test", "--shard", "1/1"}, tiny...)...); true {
		oneLineError(t, r, 2, "--shard 1/1: want I/N with 0 <= I < N")
	}
	if r := zoo(t, nil, append([]string{"run", "TSM", "train", "--shard", "0/2"}, tiny...)...); true {
		oneLineError(t, r, 2, "--shard 0/2: shards split test and infer lists")
	}
}

// TestMPIResumeWithOtherWorldSize: a checkpoint saved by 2 ranks resumes
// in one process with micro_batches 2, and the schedule continues: the
// next epoch ends where one process running both epochs ends.
func TestMPIResumeWithOtherWorldSize(t *testing.T) {
	dp, one := t.TempDir(), t.TempDir()
	two := func(save string, epochs int) []string {
		return []string{"run", "TSM", "train", "--save_dir", save, "--valid_interval", "0",
			"--set", fmt.Sprintf("TRAIN.epoch=%d", epochs), "--set", "SYNTHETIC.train_videos=64", "--set", "TRAIN.decay_epochs=[1]", "--set", "TRAIN.total_videos=64"}
	}
	// 2 ranks train epoch 0 (the learning-rate schedule does not depend
	// on the number of epochs: decay_epochs and total_videos say it).
	r := mpirun(t, 2, 5*time.Minute, two(dp, 1)...)
	if r.code != 0 {
		t.Fatalf("mpirun -np 2: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zooAt(t, mpiBin(t), []string{"OMP_NUM_THREADS=1"}, append(two(dp, 2), "--resume", filepath.Join(dp, "TSM_epoch0"), "--set", "TRAIN.micro_batches=2")...)
	if r.code != 0 {
		t.Fatalf("resume with micro_batches 2: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = zooAt(t, mpiBin(t), []string{"OMP_NUM_THREADS=1"}, append(two(one, 2), "--set", "TRAIN.micro_batches=2")...)
	if r.code != 0 {
		t.Fatalf("micro_batches 2 straight through: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	compareTrainable(t, filepath.Join(dp, "TSM_epoch1"), filepath.Join(one, "TSM_epoch1"))
}

// TestMicroBatchesBadValue: micro_batches that cannot split the batch, or
// below 1, fail at open with one line naming the key.
func TestMicroBatchesBadValue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ set, want string }{
		{"TRAIN.micro_batches=3", "TRAIN.batch_size 16 is not divisible by 1 ranks x TRAIN.micro_batches 3: make it a multiple of 3"},
		{"TRAIN.micro_batches=0", "TRAIN.micro_batches 0: must be at least 1"},
	} {
		r := zoo(t, nil, append(mpiJob(t.TempDir()), "--set", tc.set)...)
		oneLineError(t, r, 1, tc.want)
	}
}
