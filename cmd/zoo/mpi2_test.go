package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/internal/shareddata"
)

// videoJob writes a small TSM job on real videos (ResNet-18 of width 4,
// 32x32, batch 4, one epoch) whose train list holds the shared videos
// n times over (labels 0 and 1), and, with broken, an unreadable video
// too. It returns the config and the train list.
func videoJob(t *testing.T, n int, broken bool) (cfg, list string) {
	t.Helper()
	videos := filepath.Join(shareddata.Dir(t), "videos")
	dir := t.TempDir()
	files := []string{"archery.avi", "arm_wrestling.mp4", "test.avi", "test.mp4"}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s %d\n", filepath.Join(videos, files[i%len(files)]), i%2)
		if broken && i == n/2 {
			bad := filepath.Join(dir, "broken.mp4")
			if err := os.WriteFile(bad, []byte("not a video"), 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s 1\n", bad)
		}
	}
	list = filepath.Join(dir, "train.list")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "small.txt")
	if err := os.WriteFile(cfg, []byte(`[MODEL]
name = "TSM"
num_classes = 2
num_layers = 18
base_width = 4
seg_num = 8

[TRAIN]
epoch = 1
short_size = 40
target_size = 32
batch_size = 4
num_reader_threads = 1
filelist = "`+list+`"

[VALID]
short_size = 40
target_size = 32
batch_size = 4
filelist = "`+list+`"

[TEST]
short_size = 40
target_size = 32
batch_size = 4
filelist = "`+list+`"

[INFER]
short_size = 40
target_size = 32
batch_size = 4
filelist = "`+list+`"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, list
}

// TestMPIReaderShare: under `mpirun -np 2` each rank decodes only its
// share of every global batch of a video list (the step metric
// clips_per_rank, the most clips a rank decoded for the step, is 2 of the
// global batch of 4), the global batches
// hold the clips one process reads (the model equals one process's with
// micro_batches 2, with an unreadable video in the list too, which rank
// 0 reports once), and the train log and metrics.jsonl show each step's
// allreduce seconds.
func TestMPIReaderShare(t *testing.T) {
	for _, broken := range []bool{false, true} {
		t.Run(fmt.Sprintf("broken=%v", broken), func(t *testing.T) {
			cfg, _ := videoJob(t, 8, broken)
			job := func(save string) []string {
				return []string{"run", "TSM", "train", "--config", cfg, "--pretrain", "none", "--save_dir", save,
					"--log_interval", "1", "--valid_interval", "0"}
			}
			dp, one := t.TempDir(), t.TempDir()
			r := mpirun(t, 2, 3*time.Minute, job(dp)...)
			if r.code != 0 {
				t.Fatalf("mpirun -np 2: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			// clips_per_rank: the most clips a rank decoded for the step.
			for _, it := range []string{"0", "1"} {
				re := regexp.MustCompile(`\[TRAIN\] Epoch 0, iter ` + it + `  Loss: \S+, top1_acc: \S+, top5_acc: \S+, allreduce_s: \d+\.\d{6}, clips_per_rank: (\d+)\.000000\n`)
				m := re.FindStringSubmatch(r.stdout)
				if m == nil {
					t.Errorf("the log line of step %s does not show allreduce_s and clips_per_rank:\n%s", it, r.stdout)
				} else if !broken && m[1] != "2" {
					t.Errorf("step %s: a rank decoded %s clips, want 2 (its share of 4)", it, m[1])
				}
			}
			if broken {
				if n := strings.Count(r.stderr, "warning: "); n != 1 || !strings.Contains(r.stderr, "broken.mp4") {
					t.Errorf("the unreadable video is reported %d times by rank 0, want once\n%s", n, r.stderr)
				}
			}
			b, err := os.ReadFile(filepath.Join(dp, "metrics.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			steps := 0
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				var ev map[string]any
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatal(err)
				}
				if ev["phase"] == "train" && ev["clips_per_s"] == 0.0 {
					steps++
					if v, ok := ev["allreduce_s"].(float64); !ok || v < 0 {
						t.Errorf("metrics.jsonl step without allreduce_s: %s", line)
					}
				}
			}
			if steps != 2 {
				t.Errorf("metrics.jsonl holds %d steps, want 2:\n%s", steps, b)
			}
			r1 := zooAt(t, mpiBin(t), []string{"OMP_NUM_THREADS=1"}, append(job(one), "--set", "TRAIN.micro_batches=2")...)
			if r1.code != 0 {
				t.Fatalf("micro_batches=2: exit %d\nstdout: %s\nstderr: %s", r1.code, r1.stdout, r1.stderr)
			}
			compareTrainable(t, filepath.Join(dp, "TSM_epoch0"), filepath.Join(one, "TSM_epoch0"))
		})
	}
}

// TestMPIEmptyEvalShare: test and infer of a one-video list under
// `mpirun -np 2` (rank 1's share is empty) succeed, and rank 0's result
// files equal one process's.
func TestMPIEmptyEvalShare(t *testing.T) {
	cfg, list := videoJob(t, 4, false)
	save := t.TempDir()
	r := zooAt(t, mpiBin(t), nil, "run", "TSM", "train", "--config", cfg, "--pretrain", "none", "--save_dir", save, "--valid_interval", "0")
	if r.code != 0 {
		t.Fatalf("train: exit %d\n%s", r.code, r.stderr)
	}
	b, err := os.ReadFile(list)
	if err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(t.TempDir(), "one.list")
	if err := os.WriteFile(single, []byte(strings.SplitAfter(string(b), "\n")[0]), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"test", "infer"} {
		args := []string{"run", "TSM", mode, "--config", cfg, "--filelist", single, "--save_dir", save, "--weights", filepath.Join(save, "TSM_epoch0")}
		file := filepath.Join(save, "TSM_"+mode+"_result.json")
		if r := zooAt(t, mpiBin(t), nil, args...); r.code != 0 {
			t.Fatalf("%s: exit %d\n%s", mode, r.code, r.stderr)
		}
		one, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(file)
		if r := mpirun(t, 2, 3*time.Minute, args...); r.code != 0 {
			t.Fatalf("mpirun -np 2 zoo run TSM %s of one video: exit %d\n%s\n%s", mode, r.code, r.stdout, r.stderr)
		}
		two, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var a, c any
		if err := json.Unmarshal(one, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(two, &c); err != nil {
			t.Fatal(err)
		}
		if !jsonClose(a, c, 1e-5) {
			t.Errorf("%s: 2 ranks' result differs from one process's:\none: %.600s\ntwo: %.600s", mode, one, two)
		}
	}
}

// imageList writes n 32x32 PNG images (labels 0 and 1) and, with broken,
// an unreadable one among them, and returns their list.
func imageList(t *testing.T, n int, broken bool) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, 32, 32))
		for y := range 32 {
			for x := range 32 {
				v := uint8((x*(i+1) + y*(7-i%7)) * 4)
				img.Set(x, y, color.RGBA{v, uint8(i * 30), 255 - v, 255})
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("img%d.png", i))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		fmt.Fprintf(&b, "%s %d\n", path, i%2)
		if broken && i == 2 {
			bad := filepath.Join(dir, "broken.png")
			if err := os.WriteFile(bad, []byte("not an image"), 0o644); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "%s 1\n", bad)
		}
	}
	list := filepath.Join(dir, "train.list")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return list
}

// TestMPIResNetTrainEqualsMicroBatches: `mpirun -np 2 zoo run ResNet
// train` trains what one process with TRAIN.micro_batches=2 trains
// (trainable parameters and velocities within 1e-4), on the built-in
// dataset and on an image list with an unreadable image (each rank reads
// its share; the batch that lost the image is refilled as one process
// refills it); the log shows allreduce_s.
func TestMPIResNetTrainEqualsMicroBatches(t *testing.T) {
	for _, data := range []string{"synthetic", "list"} {
		t.Run(data, func(t *testing.T) {
			job := func(save string) []string {
				args := []string{"run", "ResNet", "train", "--save_dir", save, "--epoch", "1", "--log_interval", "1", "--valid_interval", "0",
					"--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_images=64"}
				if data == "list" {
					list := imageList(t, 8, true)
					args = append(args, "--set", "TRAIN.filelist="+list, "--set", "VALID.filelist="+list, "--batch_size", "4")
				}
				return args
			}
			dp, one := t.TempDir(), t.TempDir()
			r := mpirun(t, 2, 3*time.Minute, job(dp)...)
			if r.code != 0 {
				t.Fatalf("mpirun -np 2: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if !regexp.MustCompile(`\[TRAIN\] Epoch 0, iter 1  Loss: \S+, top1_acc: \S+, top5_acc: \S+, allreduce_s: \d+\.\d{6}\n`).MatchString(r.stdout) {
				t.Errorf("the log does not show allreduce_s:\n%s", r.stdout)
			}
			if n := strings.Count(r.stdout+r.stderr, "saved checkpoint"); n != 1 {
				t.Errorf("%d checkpoints saved, want 1 (rank 0's)\n%s", n, r.stdout)
			}
			if data == "list" && strings.Count(r.stderr, "warning: ") != 1 {
				t.Errorf("the unreadable image is not reported once by rank 0:\n%s", r.stderr)
			}
			r1 := zooAt(t, mpiBin(t), []string{"OMP_NUM_THREADS=1"}, append(job(one), "--set", "TRAIN.micro_batches=2")...)
			if r1.code != 0 {
				t.Fatalf("micro_batches=2: exit %d\nstdout: %s\nstderr: %s", r1.code, r1.stdout, r1.stderr)
			}
			compareTrainable(t, filepath.Join(dp, "ResNet_epoch0"), filepath.Join(one, "ResNet_epoch0"))
		})
	}
}

// startMPI starts `mpirun -np n zoo ARGS` (mpi-built zoo and plugins) with
// extra environment, its stdout readable line by line.
func startMPI(t *testing.T, n int, env []string, args ...string) (*exec.Cmd, *bufio.Reader, *bytes.Buffer) {
	t.Helper()
	dir := mpiBin(t)
	cmd := exec.Command("mpirun", append([]string{"-np", fmt.Sprint(n), "--oversubscribe", "--bind-to", "none", filepath.Join(dir, "zoo")}, args...)...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_OFFLINE=1")
	cmd.Env = append(append(cmd.Env, mpiEnv...), env...)
	cmd.Dir = t.TempDir()
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
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		pr.Close()
	})
	return cmd, bufio.NewReader(pr), &errb
}

// TestMPIResumeMidEpochAcrossWorldSizes: a 2-rank run (micro_batches 2:
// 4 parts of the batch 16) stopped in the middle of its epoch by SIGTERM
// to every rank's zoo (what Slurm's scancel does; the ranks agree on the
// step they stop at) saves an interrupted checkpoint; it resumes in one
// process (micro_batches 4), under `mpirun -np 2` again and under
// `mpirun -np 4` (micro_batches 1), the schedule and the data order
// continue, and each ends the epoch where one process with micro_batches
// 4 running it uninterrupted ends (trainable parameters and velocities
// within 1e-4). The layouts sum the 4 parts' gradients in one order, as a
// tree (classifier.Stepper); summed in another order, the rounding
// differences grow past 1e-4 within 4 steps of these 96x96 frames.
func TestMPIResumeMidEpochAcrossWorldSizes(t *testing.T) {
	// Steps slow enough (96x96 frames) that the signal lands inside the
	// epoch. The learning rate decays at step 4 (total_videos 64,
	// decay_epochs [1]), so the resumed part runs on the decayed schedule.
	const steps = 10
	job := func(save string) []string {
		return []string{"run", "TSM", "train", "--save_dir", save, "--log_interval", "1", "--valid_interval", "0",
			"--set", "TRAIN.epoch=1", "--set", "SYNTHETIC.train_videos=" + fmt.Sprint(16*steps), "--set", "TRAIN.decay_epochs=[1]", "--set", "TRAIN.total_videos=64",
			"--set", "TRAIN.target_size=96", "--set", "TRAIN.short_size=96", "--set", "VALID.target_size=96", "--set", "VALID.short_size=96"}
	}
	save := t.TempDir()
	cmd, out, errb := startMPI(t, 2, nil, append(job(save), "--set", "TRAIN.micro_batches=2")...)
	var stdout strings.Builder
	for !strings.Contains(stdout.String(), "[TRAIN] Epoch 0, iter 1 ") {
		line, err := out.ReadString('\n')
		stdout.WriteString(line)
		if err != nil {
			t.Fatalf("mpirun ended before step 2: %v\n%s\n%s", err, stdout.String(), errb.String())
		}
	}
	b, _ := exec.Command("pgrep", "-P", fmt.Sprint(cmd.Process.Pid), "-f", filepath.Join(mpiBin(t), "zoo")+" run").Output()
	ranks := strings.Fields(string(b))
	if len(ranks) != 2 {
		t.Fatalf("mpirun's zoo processes: %q, want 2", ranks)
	}
	for _, p := range ranks {
		var pid int
		fmt.Sscan(p, &pid)
		syscall.Kill(pid, syscall.SIGTERM)
	}
	rest, _ := io.ReadAll(out)
	stdout.Write(rest)
	err := cmd.Wait()
	ckpt := filepath.Join(save, "TSM_epoch0")
	var st struct {
		Complete bool  `json:"complete"`
		Step     int64 `json:"step"`
	}
	readJSON(t, filepath.Join(ckpt, "zoo_state.json"), &st)
	if st.Complete || st.Step < 2 || st.Step >= steps {
		t.Fatalf("the checkpoint after SIGTERM: complete %v at step %d, want an interrupted one inside the epoch of %d steps\n%s\n%s", st.Complete, st.Step, steps, stdout.String(), errb.String())
	}
	if err == nil {
		t.Errorf("mpirun exited 0 after SIGTERM")
	}
	if !strings.Contains(stdout.String(), "interrupted: saved checkpoint") {
		t.Errorf("rank 0 did not say it saved:\n%s", stdout.String())
	}
	t.Logf("interrupted at step %d", st.Step)
	// The uninterrupted reference: one process, the same 4 parts per batch.
	ref := t.TempDir()
	if r := zooAt(t, mpiBin(t), []string{"OMP_NUM_THREADS=1"}, append(job(ref), "--set", "TRAIN.micro_batches=4")...); r.code != 0 {
		t.Fatalf("uninterrupted: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, tc := range []struct {
		name string
		run  func(save, ckpt string) result
	}{
		{"1 process", func(save, ckpt string) result {
			return zooAt(t, mpiBin(t), []string{"OMP_NUM_THREADS=1"}, append(job(save), "--resume", ckpt, "--set", "TRAIN.micro_batches=4")...)
		}},
		{"mpirun -np 2", func(save, ckpt string) result {
			return mpirun(t, 2, 3*time.Minute, append(job(save), "--resume", ckpt, "--set", "TRAIN.micro_batches=2")...)
		}},
		{"mpirun -np 4", func(save, ckpt string) result {
			return mpirun(t, 4, 3*time.Minute, append(job(save), "--resume", ckpt)...)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			mine := filepath.Join(dir, "interrupted")
			if err := exec.Command("cp", "-r", ckpt, mine).Run(); err != nil {
				t.Fatal(err)
			}
			r := tc.run(dir, mine)
			if r.code != 0 {
				t.Fatalf("resume: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if want := fmt.Sprintf("[TRAIN] Epoch 0, iter %d ", st.Step); !strings.Contains(r.stdout, want) || strings.Contains(r.stdout, fmt.Sprintf("[TRAIN] Epoch 0, iter %d ", st.Step-1)) {
				t.Errorf("the resumed run does not continue at step %d:\n%s", st.Step, r.stdout)
			}
			compareTrainable(t, filepath.Join(dir, "TSM_epoch0"), filepath.Join(ref, "TSM_epoch0"))
		})
	}
}
