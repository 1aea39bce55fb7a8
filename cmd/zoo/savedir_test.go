package main_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/host/driver"
	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/weights"
)

// running is a zoo run in the background, in its own process group so that
// the test can kill it and its plugin however the host side behaves.
type running struct {
	cmd   *exec.Cmd
	lines chan string
	out   strings.Builder
	errb  bytes.Buffer
	done  chan struct{}
}

func startZoo(t *testing.T, args ...string) *running {
	t.Helper()
	r := &running{lines: make(chan string, 1024), done: make(chan struct{})}
	r.cmd = exec.Command(filepath.Join(binDir, "zoo"), args...)
	r.cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_WEIGHTS_DIR="+t.TempDir(), "ZOO_OFFLINE=1")
	r.cmd.Dir = t.TempDir()
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Stderr = &r.errb
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
	}()
	t.Cleanup(func() { r.kill() })
	return r
}

// waitFor reads the run's stdout until a line contains want; false when
// the run ended first or after a generous bound for a loaded machine.
func (r *running) waitFor(want string) bool {
	timeout := time.After(3 * time.Minute)
	for {
		select {
		case l, ok := <-r.lines:
			if !ok {
				return false
			}
			r.out.WriteString(l + "\n")
			if strings.Contains(l, want) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// kill ends the run with SIGKILL, as an OOM killer or a scheduler would:
// zoo cannot release anything. Its plugin is killed too (by the group, and
// by its parent PID should the plugin live in a group of its own).
func (r *running) kill() {
	select {
	case <-r.done:
		return
	default:
	}
	pid := r.cmd.Process.Pid
	children, _ := exec.Command("pgrep", "-P", strconv.Itoa(pid)).Output()
	syscall.Kill(-pid, syscall.SIGKILL)
	for _, c := range strings.Fields(string(children)) {
		if n, err := strconv.Atoi(c); err == nil {
			syscall.Kill(n, syscall.SIGKILL)
		}
	}
	for range r.lines {
	}
	r.cmd.Wait()
	close(r.done)
}

// interrupt sends SIGINT and waits for the run to end; it returns the exit
// code.
func (r *running) interrupt() int {
	r.cmd.Process.Signal(syscall.SIGINT)
	// A run that ignores the signal is killed rather than hang the tests.
	stop := time.AfterFunc(3*time.Minute, func() { syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL) })
	defer stop.Stop()
	for l := range r.lines {
		r.out.WriteString(l + "\n")
	}
	err := r.cmd.Wait()
	close(r.done)
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

// TestSaveDirLock: a second run on a save dir in use exits at once with one
// line naming the first run's PID, without touching the directory; once the
// first is killed (kill -9), the next run takes its lock over with a note.
func TestSaveDirLock(t *testing.T) {
	save := t.TempDir()
	first := startZoo(t, "run", "alpha", "train", "--save_dir", save, "--log_interval", "1",
		"--set", "TRAIN.sleep_ms=50", "--set", "TRAIN.steps=100000")
	if !first.waitFor("[TRAIN] Epoch 0, iter 1 ") {
		t.Fatalf("the first run did not start training:\n%s\n%s", first.out.String(), first.errb.String())
	}
	pid := first.cmd.Process.Pid
	busy := fmt.Sprintf("save dir %s is in use by another zoo run (PID %d, zoo run Alpha train, started ", save, pid)
	r := zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--epoch", "1")
	oneLineError(t, r, 1, busy)
	if !strings.Contains(r.stderr, "pass another --save_dir") {
		t.Errorf("the error says nothing about what to do: %s", r.stderr)
	}
	// test and infer write into the save dir too.
	r = zoo(t, nil, "run", "alpha", "test", "--save_dir", save)
	oneLineError(t, r, 1, busy)
	if entries, _ := filepath.Glob(filepath.Join(save, "Alpha_*")); len(entries) > 0 {
		t.Errorf("the refused runs wrote %v", entries)
	}

	first.kill()
	r = zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--epoch", "1")
	if r.code != 0 {
		t.Fatalf("the run after a killed one: %d\n%s", r.code, r.stderr)
	}
	if want := fmt.Sprintf("note: took over the lock of PID %d, zoo run Alpha train", pid); !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(save, driver.LockFile)); err == nil {
		t.Errorf("%s left after the run ended", driver.LockFile)
	}
	// A run after a run that ended normally has nothing to take over.
	r = zoo(t, nil, "run", "alpha", "test", "--save_dir", save)
	if r.code != 0 || strings.Contains(r.stderr, "took over") {
		t.Errorf("test after a finished run: %d\n%s", r.code, r.stderr)
	}
}

// TestLeftoversCleaned: what a run killed while writing leaves (a temp
// checkpoint directory, a result's temp file, a checkpoint moved aside) is
// removed by the next run on the directory and said so, and the temp
// checkpoint, though of a later epoch, is never used.
func TestLeftoversCleaned(t *testing.T) {
	save := t.TempDir()
	r := zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--epoch", "1")
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	tmp := filepath.Join(save, ".Alpha_epoch9.tmp-123")
	os.Mkdir(tmp, 0o755)
	if err := weights.WriteFile(filepath.Join(tmp, "w"), weights.NewFloat32("w", []int64{1}, []float32{42})); err != nil {
		t.Fatal(err)
	}
	var st driver.State
	readJSON(t, filepath.Join(save, "Alpha_epoch0", driver.StateFile), &st)
	st.Epoch, st.Saved = 9, st.Saved.Add(time.Hour)
	results.WriteJSON(filepath.Join(tmp, driver.StateFile), st)
	os.WriteFile(filepath.Join(save, ".Alpha_test_result.json.tmp-55"), []byte(`{"vid`), 0o644)
	os.Mkdir(filepath.Join(save, ".Alpha_epoch0.old"), 0o755)

	r = zoo(t, nil, "run", "alpha", "test", "--save_dir", save)
	if r.code != 0 {
		t.Fatalf("test: %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"using checkpoint " + filepath.Join(save, "Alpha_epoch0"),
		"note: removed what an interrupted run left in " + save + ": .Alpha_epoch0.old, .Alpha_epoch9.tmp-123, .Alpha_test_result.json.tmp-55"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "w=42") {
		t.Errorf("test loaded the temp checkpoint:\n%s", r.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(save, ".*")); len(left) > 0 {
		t.Errorf("left in the save dir: %v", left)
	}
}

// smallTSM is the built-in TSM job shrunk to seconds.
var smallTSM = []string{"--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_videos=32",
	"--set", "SYNTHETIC.valid_videos=8", "--set", "SYNTHETIC.test_videos=8", "--set", "SYNTHETIC.infer_videos=3"}

// TestRunsDoNotMix is the reproduction: TSN trained 3 epochs, then
// a fresh 1-epoch TSM run in the same save dir. test uses the fresh run's
// checkpoint, metrics.jsonl and metrics.png hold the fresh run only, and the
// TSN run's metrics are kept beside them.
func TestRunsDoNotMix(t *testing.T) {
	save := t.TempDir()
	args := func(a ...string) []string { return append(append(a, "--save_dir", save), smallTSM...) }
	r := zoo(t, nil, args("run", "TSM", "train", "--epoch", "3", "--set", "MODEL.temporal_shift=False")...)
	if r.code != 0 {
		t.Fatalf("TSN train: %d\n%s", r.code, r.stderr)
	}
	var tsn driver.State
	readJSON(t, filepath.Join(save, "TSM_epoch2", driver.StateFile), &tsn)
	r = zoo(t, nil, args("run", "TSM", "train", "--epoch", "1")...)
	if r.code != 0 {
		t.Fatalf("TSM train: %d\n%s", r.code, r.stderr)
	}
	var tsm driver.State
	readJSON(t, filepath.Join(save, "TSM_epoch0", driver.StateFile), &tsm)
	if tsm.RunID == "" || tsm.RunID == tsn.RunID {
		t.Errorf("run ids: TSN %q, TSM %q", tsn.RunID, tsm.RunID)
	}
	events, err := results.ReadMetrics(filepath.Join(save, results.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	valid := 0
	for _, e := range events {
		if e.Run != tsm.RunID || e.Epoch != 0 {
			t.Errorf("metrics.jsonl holds an event of another run or epoch: %+v", e)
		}
		if e.Phase == "valid" {
			valid++
		}
	}
	if valid != 1 {
		t.Errorf("metrics.jsonl has %d validation events, want the fresh run's 1", valid)
	}
	old, err := results.ReadMetrics(filepath.Join(save, "metrics."+tsn.RunID+".jsonl"))
	if err != nil || len(old) == 0 || old[len(old)-1].Epoch != 2 {
		t.Errorf("the TSN run's metrics are not kept aside: %v (%d events)", err, len(old))
	}
	if want := "note: " + save + " holds checkpoints of earlier runs (TSM_epoch0, TSM_epoch1, TSM_epoch2)"; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
	if !strings.Contains(r.stderr, "moved to "+filepath.Join(save, "metrics."+tsn.RunID+".jsonl")) {
		t.Errorf("moving the earlier run's metrics aside is not reported:\n%s", r.stderr)
	}
	for _, f := range []string{results.PlotFile, "metrics." + tsn.RunID + ".png"} {
		if _, err := os.Stat(filepath.Join(save, f)); err != nil {
			t.Errorf("plot: %v", err)
		}
	}

	r = zoo(t, nil, args("run", "TSM", "test")...)
	if r.code != 0 || !strings.Contains(r.stderr, "using checkpoint "+filepath.Join(save, "TSM_epoch0")) {
		t.Errorf("test did not use the fresh run's checkpoint: %d\n%s", r.code, r.stderr)
	}
}

// TestInterruptedRunsCheckpoints: test never takes an interrupted
// checkpoint nor an older run's later epoch; a latest run with nothing
// complete is an error that says what to do.
func TestInterruptedRunsCheckpoints(t *testing.T) {
	save := t.TempDir()
	r := zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--epoch", "3")
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	interruptIn := func(epoch int) {
		t.Helper()
		run := startZoo(t, "run", "alpha", "train", "--save_dir", save, "--epoch", "3", "--log_interval", "1",
			"--set", "TRAIN.sleep_ms=50", "--set", "TRAIN.steps=200")
		if !run.waitFor(fmt.Sprintf("[TRAIN] Epoch %d, iter 1 ", epoch)) {
			t.Fatalf("no epoch %d:\n%s\n%s", epoch, run.out.String(), run.errb.String())
		}
		if code := run.interrupt(); code != 130 {
			t.Fatalf("interrupted run: %d\n%s\n%s", code, run.out.String(), run.errb.String())
		}
	}
	// A second run, interrupted in epoch 1: its epoch 0, not its
	// interrupted epoch 1 nor the first run's epoch 2.
	interruptIn(1)
	r = zoo(t, nil, "run", "alpha", "test", "--save_dir", save)
	if r.code != 0 || !strings.Contains(r.stderr, "using checkpoint "+filepath.Join(save, "Alpha_epoch0")) {
		t.Errorf("test: %d\n%s", r.code, r.stderr)
	}
	// A third, interrupted in epoch 0: nothing complete to test.
	interruptIn(0)
	r = zoo(t, nil, "run", "alpha", "test", "--save_dir", save)
	oneLineError(t, r, 1, fmt.Sprintf("the latest Alpha run in %s has no complete checkpoint: Alpha_epoch0 was interrupted in epoch 0; continue it with `zoo run Alpha train --save_dir %s --resume %s`, or pass --weights DIR",
		save, save, filepath.Join(save, "Alpha_epoch0")))
}

// TestEvalNothingRead: test and infer where every input failed, or that had
// none, exit 1 instead of writing empty results.
func TestEvalNothingRead(t *testing.T) {
	w := t.TempDir()
	if err := weights.WriteFile(filepath.Join(w, "w"), weights.NewFloat32("w", []int64{1}, []float32{3})); err != nil {
		t.Fatal(err)
	}
	save := t.TempDir()
	r := zoo(t, nil, "run", "alpha", "test", "--weights", w, "--save_dir", save, "--set", "TEST.videos=0")
	oneLineError(t, r, 1, "test failed: none of the 1 input(s) could be read (the warnings above say why); no result was written")
	r = zoo(t, nil, "run", "alpha", "infer", "--weights", w, "--save_dir", save, "--set", "INFER.videos=0")
	oneLineError(t, r, 1, "infer failed: the plugin found no inputs")
	if left, _ := filepath.Glob(filepath.Join(save, "Alpha_*")); len(left) > 0 {
		t.Errorf("result files written: %v", left)
	}

	// The real TSM plugin on a video it cannot decode.
	r = zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--save_dir", save}, smallTSM...)...)
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "small.txt")
	os.WriteFile(cfg, []byte("[MODEL]\nname = \"TSM\"\nnum_classes = 4\nnum_layers = 18\nbase_width = 4\nseg_num = 8\n\n[INFER]\nshort_size = 40\ntarget_size = 32\nbatch_size = 2\n"), 0o644)
	broken := filepath.Join(dir, "broken.mp4")
	os.WriteFile(broken, []byte("this is not a video\n"), 0o644)
	r = zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", filepath.Join(save, "TSM_epoch0"), "--video_path", broken, "--save_dir", save)
	oneLineError(t, r, 1, "infer failed: none of the 1 input(s) could be read")
}

// TestResumeFinishedRun: --resume of a run's last checkpoint says the run
// is finished and exits 0.
func TestResumeFinishedRun(t *testing.T) {
	save := t.TempDir()
	r := zoo(t, nil, "run", "alpha", "train", "--save_dir", save)
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	last := filepath.Join(save, "Alpha_epoch1")
	r = zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--resume", last)
	if r.code != 0 || !strings.Contains(r.stdout, "Alpha run finished: "+last+" ends epoch 1 of 2 (epochs count from 0); nothing to train (to train on, pass --epoch N with N > 2)") {
		t.Errorf("resume of a finished run: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}
