package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/host/driver"
)

// resumeJob is a model's built-in job cut to two short epochs of 8 and 16
// steps whose learning rate decays inside the second (Paddle's step rule
// puts the boundary at 1 * (videos // batch + 1), one step into epoch 1),
// so that a resume must also get the schedule's position right.
type resumeJob struct {
	model string
	args  []string
}

var resumeJobs = []resumeJob{
	{"TSM", []string{"--batch-size", "4", "--set", "SYNTHETIC.train_videos=32", "--set", "TRAIN.total_videos=32"}},
	{"ResNet", []string{"--batch-size", "8", "--set", "SYNTHETIC.train_images=128", "--set", "TRAIN.total_images=128"}},
}

func (j resumeJob) train(save string, epochs int, extra ...string) []string {
	args := []string{"run", j.model, "train", "--save_dir", save, "--epoch", fmt.Sprint(epochs),
		"--valid-interval", "0", "--log_interval", "1", "--set", "TRAIN.decay_epochs=[1]"}
	args = append(args, j.args...)
	return append(args, extra...)
}

// TestExactResume: training two epochs in one go, training one epoch and
// resuming for the second, and training interrupted by SIGINT in the
// middle of each epoch and resumed twice end with the same bytes in every
// file of the last checkpoint (parameters, batch-norm statistics, Momentum
// velocities, zoo_state.json), for both bundled models' built-in jobs.
func TestExactResume(t *testing.T) {
	for _, j := range resumeJobs {
		t.Run(j.model, func(t *testing.T) {
			last := driver.CheckpointName(j.model, 1)

			straight := t.TempDir()
			mustRun(t, j.train(straight, 2))

			byEpoch := t.TempDir()
			mustRun(t, j.train(byEpoch, 1))
			mustRun(t, j.train(byEpoch, 2, "--resume", filepath.Join(byEpoch, driver.CheckpointName(j.model, 0))))
			sameFiles(t, filepath.Join(straight, last), filepath.Join(byEpoch, last))

			interrupted := t.TempDir()
			dir := interruptAt(t, j.train(interrupted, 2), 0)
			dir = interruptAt(t, j.train(interrupted, 2, "--resume", dir), 1)
			out := mustRun(t, j.train(interrupted, 2, "--resume", dir))
			if !regexp.MustCompile(`resuming \S+ at epoch 1, step [1-9]`).MatchString(out) {
				t.Errorf("the last resume did not start inside epoch 1:\n%s", out)
			}
			sameFiles(t, filepath.Join(straight, last), filepath.Join(interrupted, last))
		})
	}
}

// TestResumeRefusesAnotherSeed: the seed decides data order and dropout,
// so resuming with another one cannot continue the same run.
func TestResumeRefusesAnotherSeed(t *testing.T) {
	j := resumeJobs[1]
	save := t.TempDir()
	mustRun(t, j.train(save, 1))
	ckpt := filepath.Join(save, driver.CheckpointName(j.model, 0))
	r := zoo(t, nil, j.train(save, 2, "--resume", ckpt, "--seed", "7")...)
	oneLineError(t, r, 1, "trained with --seed 1, this run has --seed 7")
}

func mustRun(t *testing.T, args []string) string {
	t.Helper()
	r := zoo(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("zoo %s: exit %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// interruptAt runs zoo, sends it SIGINT once it has logged a step of the
// given epoch, and returns the checkpoint the interrupt saved, which must
// be inside that epoch (not at its end).
func interruptAt(t *testing.T, args []string, epoch int) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "zoo"), args...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_WEIGHTS_DIR="+t.TempDir(), "ZOO_OFFLINE=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A bound on a hang only, far above the few seconds a run takes.
	timer := time.AfterFunc(5*time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()
	want := fmt.Sprintf("Epoch %d, iter 1 ", epoch)
	var out strings.Builder
	sc := bufio.NewScanner(stdout)
	sent := false
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(sc.Text(), want) {
			cmd.Process.Signal(syscall.SIGINT)
			sent = true
		}
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Fatalf("zoo %s: %v, want exit 130\n%s\n%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	m := regexp.MustCompile(`interrupted: saved checkpoint (\S+) `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no interrupt checkpoint:\n%s\n%s", out.String(), errb.String())
	}
	var st struct {
		Epoch    int   `json:"epoch"`
		Complete bool  `json:"complete"`
		Step     int64 `json:"step"`
	}
	readJSON(t, filepath.Join(m[1], driver.StateFile), &st)
	if st.Complete || st.Epoch != epoch || st.Step < 1 {
		t.Fatalf("interrupt checkpoint state %+v, want inside epoch %d", st, epoch)
	}
	return m[1]
}

// sameFiles fails unless directories a and b hold the same files with the
// same bytes.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	list := func(dir string) map[string][]byte {
		out := map[string][]byte{}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if e.Name() == driver.StateFile {
				data = stateWithoutRun(t, data)
			}
			out[e.Name()] = data
		}
		return out
	}
	fa, fb := list(a), list(b)
	var differ, missing []string
	for name, da := range fa {
		db, ok := fb[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case !bytes.Equal(da, db):
			differ = append(differ, name)
		}
	}
	for name := range fb {
		if _, ok := fa[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(fa) < 10 || len(differ) > 0 || len(missing) > 0 {
		t.Errorf("%s and %s: %d files; %d differ (%s), %d in one only (%s)", a, b, len(fa),
			len(differ), strings.Join(first(differ, 5), " "), len(missing), strings.Join(first(missing, 5), " "))
	}
}

// stateWithoutRun is a zoo_state.json without what names the run (its id
// and save time): an uninterrupted run and a resumed one are other runs
// that must agree on everything else.
func stateWithoutRun(t *testing.T, data []byte) []byte {
	t.Helper()
	var st driver.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("%s: %v", driver.StateFile, err)
	}
	if st.RunID == "" || st.Saved.IsZero() {
		t.Errorf("%s lacks the run id or save time: %s", driver.StateFile, data)
	}
	st.RunID, st.Saved = "", time.Time{}
	out, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }
