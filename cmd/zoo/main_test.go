package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/host/driver"
	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/internal/testplugins"
	"github.com/zoo-ml/zoo/weights"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "zoo-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := testplugins.Build(dir, true); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	for _, p := range []string{"tsm", "resnet"} {
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "zoo-plugin-"+p), "../../plugins/"+p+"/cmd/zoo-plugin-"+p)
		if b, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build zoo-plugin-%s: %v\n%s", p, err, b)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	// zoo's own directory holds the plugins a CLI test may use; the broken
	// ones are placed by the tests that need them (plugins_test.go) or
	// tested in registry.
	for _, n := range []string{"badversion", "empty", "hang"} {
		os.Rename(filepath.Join(dir, "zoo-plugin-"+n), filepath.Join(dir, "broken-"+n))
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func zoo(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return zooAt(t, binDir, env, args...)
}

// zooAt runs the zoo binary of dir, whose bundled plugins are dir's.
func zooAt(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "zoo"), args...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_WEIGHTS_DIR="+t.TempDir(), "ZOO_OFFLINE=1")
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// oneLineError checks a failed run: the exit code, one "zoo: " line on
// stderr (plus at most a usage hint), the text, and no Go panic.
func oneLineError(t *testing.T, r result, code int, want string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if strings.HasPrefix(last, "Run '") && len(lines) > 1 {
		last = lines[len(lines)-2]
	}
	if !strings.HasPrefix(last, "zoo: ") || !strings.Contains(last, want) {
		t.Errorf("error line %q, want a \"zoo: \" line containing %q\nstderr: %s", last, want, r.stderr)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		t.Errorf("a Go panic reached the user:\n%s", r.stderr)
	}
}

func TestList(t *testing.T) {
	r := zoo(t, nil, "list")
	if r.code != 0 {
		t.Fatalf("zoo list: %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{"MODEL", "Alpha", "zoo-plugin-two", "1.0.0", "train,test,infer", "alpha_w", "Beta", "Crashy", "TSM", "tsm_kinetics",
		"ResNet", "zoo-plugin-resnet", "ResNet50_pretrained", "Oldie"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("zoo list lacks %q:\n%s", want, r.stdout)
		}
	}
	r = zoo(t, nil, "list", "--json")
	var rows []struct {
		Name  string   `json:"name"`
		Tasks []string `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 6 || rows[0].Name != "Alpha" {
		t.Fatalf("zoo list --json = %v %+v\n%s", err, rows, r.stdout)
	}
}

// TestPluginLogsFollowLogLevel: a plugin's hclog lines reappear in the
// host's log under the plugin's name, and only at the host's level.
func TestPluginLogsFollowLogLevel(t *testing.T) {
	r := zoo(t, nil, "list", "--log-level", "debug")
	if !strings.Contains(r.stderr, "[DEBUG] zoo.zoo-plugin-two: plugin address") {
		t.Errorf("no plugin debug log at --log-level debug:\n%s", r.stderr)
	}
	r = zoo(t, []string{"ZOO_LOG_LEVEL=warn"}, "list")
	if strings.Contains(r.stderr, "[DEBUG]") {
		t.Errorf("debug logs at warn level:\n%s", r.stderr)
	}
}

func TestInfoAndHelp(t *testing.T) {
	r := zoo(t, nil, "info", "alpha")
	for _, want := range []string{"Alpha 1.0.0", "TRAIN.learning_rate", "alpha_w", "labels:  3 (zero ... two)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("zoo info lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, args := range [][]string{{"--help"}, {"list", "--help"}, {"info", "--help"}, {"run", "--help"}, {"plugins", "--help"}, {"plugins", "install", "--help"}, {"plugins", "list", "--help"},
		{"weights", "--help"}, {"weights", "fetch", "--help"}, {"weights", "list", "--help"}, {"weights", "path", "--help"},
		{"weights", "verify", "--help"}, {"weights", "import", "--help"}, {"weights", "rm", "--help"}} {
		r := zoo(t, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || (args[0] == "weights" && !strings.Contains(r.stdout, "Examples:")) {
			t.Errorf("zoo %v: code %d\n%s", args, r.code, r.stdout)
		}
	}
}

func TestBadInput(t *testing.T) {
	cfgDir := t.TempDir()
	badKey := filepath.Join(cfgDir, "bad.txt")
	os.WriteFile(badKey, []byte("[TRAIN]\nlearning_rat = 0.1\n"), 0o644)
	badSyntax := filepath.Join(cfgDir, "syntax.txt")
	os.WriteFile(badSyntax, []byte("[TRAIN]\nepoch = 2\nbatch_size = [1, 2\n"), 0o644)
	badType := filepath.Join(cfgDir, "type.txt")
	os.WriteFile(badType, []byte("[TRAIN]\nepoch = 'many'\n"), 0o644)
	aFile := filepath.Join(cfgDir, "a-file")
	os.WriteFile(aFile, []byte("x"), 0o644)

	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown model", []string{"run", "gamma", "train"}, 1, `unknown model "gamma": known models are Alpha, Beta, Crashy, Oldie, ResNet, TSM`},
		{"unknown mode", []string{"run", "alpha", "dance"}, 2, `unknown mode "dance": use train, test or infer`},
		{"mode the model lacks", []string{"run", "beta", "train"}, 2, "model Beta does not support train"},
		{"missing args", []string{"run", "alpha"}, 2, "run needs a model and a mode"},
		{"unknown flag", []string{"run", "alpha", "train", "--bogus"}, 2, "unknown flag: --bogus"},
		{"config key", []string{"run", "alpha", "train", "--config", badKey}, 1, `unknown key "learning_rat" in [TRAIN]; did you mean "learning_rate"?`},
		{"config syntax", []string{"run", "alpha", "train", "--config", badSyntax}, 1, "syntax.txt:3"},
		{"config type", []string{"run", "alpha", "train", "--config", badType}, 1, "TRAIN.epoch"},
		{"config missing", []string{"run", "alpha", "train", "--config", "nope.txt"}, 2, "--config nope.txt: no such file"},
		{"weights missing", []string{"run", "alpha", "test", "--weights", "/nonexistent"}, 2, "--weights /nonexistent: no such directory"},
		{"resume missing", []string{"run", "alpha", "train", "--resume", "/nonexistent"}, 2, "--resume /nonexistent: no such directory"},
		{"resume not a checkpoint", []string{"run", "alpha", "train", "--resume", cfgDir}, 1, "not a zoo checkpoint"},
		{"set unknown key", []string{"run", "alpha", "train", "--set", "TRAIN.epochs=3"}, 2, `did you mean "epoch"?`},
		{"set malformed", []string{"run", "alpha", "train", "--set", "epoch"}, 2, "want SECTION.key=value"},
		{"bad batch size", []string{"run", "alpha", "train", "--batch_size", "0"}, 2, "--batch_size 0: must be at least 1"},
		{"save dir is a file", []string{"run", "alpha", "train", "--save_dir", aFile}, 1, "save dir " + aFile + " cannot be created"},
		{"test before train", []string{"run", "alpha", "test"}, 1, "no Alpha checkpoint in checkpoints: run `zoo run Alpha train` first"},
		{"no weights offline", []string{"run", "alpha", "test", "--config", filepath.Join(cfgDir, "ok.txt")}, 1, "alpha_w"},
		{"bad log level", []string{"list", "--log-level", "loud"}, 2, `--log-level "loud"`},
	}
	os.WriteFile(filepath.Join(cfgDir, "ok.txt"), []byte("[TRAIN]\nepoch = 1\n"), 0o644)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oneLineError(t, zoo(t, nil, tc.args...), tc.code, tc.want)
		})
	}
}

func TestPluginCrash(t *testing.T) {
	r := zoo(t, nil, "run", "crashy", "train", "--save_dir", t.TempDir())
	oneLineError(t, r, 1, "plugin zoo-plugin-crash exited: crashy: out of cheese at step 1")
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestTrainTestInfer(t *testing.T) {
	save := t.TempDir()
	// Underscore spellings, as Paddle's scripts write them.
	r := zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--log_interval", "2", "--learning_rate", "0.25")
	if r.code != 0 {
		t.Fatalf("train: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// w: 0 -> 1.5 -> 2.25 ...: loss before each update is 9, 2.25, 0.5625...
	for _, want := range []string{
		"[TRAIN] Epoch 0, iter 0  Loss: 9.000000, top1_acc: 10.00, top5_acc: 100.00",
		"[TRAIN] Epoch 0, iter 2  Loss: 0.562500",
		"[TRAIN] Epoch 1, iter 0",
		"[VALID] Epoch 1",
		"saved checkpoint " + filepath.Join(save, "Alpha_epoch1"),
	} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("train output lacks %q:\n%s\n%s", want, r.stdout, r.stderr)
		}
	}
	var st driver.State
	readJSON(t, filepath.Join(save, "Alpha_epoch1", driver.StateFile), &st)
	if st.RunID == "" || st.Saved.IsZero() {
		t.Errorf("state lacks the run id or the time: %+v", st)
	}
	if st.Seed == nil || *st.Seed != 1 {
		t.Errorf("state seed = %v, want the default --seed 1", st.Seed)
	}
	st.RunID, st.Saved, st.Seed = "", time.Time{}, nil
	if st != (driver.State{Model: "Alpha", Epoch: 1, Complete: true, GlobalStep: 10}) {
		t.Errorf("state = %+v", st)
	}
	events, err := results.ReadMetrics(filepath.Join(save, results.MetricsFile))
	if err != nil || len(events) == 0 || events[0].Loss != 9 || events[0].Phase != "train" {
		t.Fatalf("metrics: %v %+v", err, events)
	}
	if fi, err := os.Stat(filepath.Join(save, results.PlotFile)); err != nil || fi.Size() < 1000 {
		t.Errorf("plot: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(save, ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temp files left in save dir: %v", leftovers)
	}

	r = zoo(t, nil, "run", "alpha", "test", "--save_dir", save)
	if r.code != 0 {
		t.Fatalf("test: %d\n%s", r.code, r.stderr)
	}
	var tr results.TestResult
	readJSON(t, filepath.Join(save, "Alpha_test_result.json"), &tr)
	// 7 videos in batches 3, 3, 1 with losses 0, 1, 2 and top1 1, 0, 1.
	if tr.Videos != 7 || !near(tr.Loss, 5.0/7) || !near(tr.Top1, 4.0/7) || tr.Top5 != 1 {
		t.Errorf("test result = %+v, want 7 videos, loss 5/7, top1 4/7", tr)
	}
	if !strings.Contains(r.stdout, "1 video(s) could not be read") || !strings.Contains(r.stderr, "broken.mp4") {
		t.Errorf("the skipped video is not reported:\n%s\n%s", r.stdout, r.stderr)
	}

	r = zoo(t, nil, "run", "alpha", "infer", "--save_dir", save, "--infer_topk", "2")
	if r.code != 0 {
		t.Fatalf("infer: %d\n%s", r.code, r.stderr)
	}
	var recs []results.InferRecord
	readJSON(t, filepath.Join(save, "Alpha_infer_result.json"), &recs)
	if len(recs) != 2 || recs[0].VideoID != "video0" || fmt.Sprint(recs[0].Labels) != "[1 2]" || fmt.Sprint(recs[1].Names) != "[zero two]" {
		t.Errorf("infer records = %+v", recs)
	}
	if _, err := os.Stat(filepath.Join(save, "Alpha_infer_result")); err != nil {
		t.Errorf("pickle: %v", err)
	}

	// Resume from the first checkpoint and train one more epoch than before.
	r = zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--resume", filepath.Join(save, "Alpha_epoch0"), "--epoch", "3", "--learning_rate", "0.25")
	if r.code != 0 || !strings.Contains(r.stdout, "resuming Alpha at epoch 1 (global step 5)") {
		t.Fatalf("resume: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	readJSON(t, filepath.Join(save, "Alpha_epoch2", driver.StateFile), &st)
	if st.Epoch != 2 || st.GlobalStep != 15 {
		t.Errorf("state after resume = %+v", st)
	}

	r = zoo(t, nil, "run", "alpha", "infer", "--save_dir", save, "--set", "INFER.bad_tensor=True")
	oneLineError(t, r, 1, "malformed prediction for video0")
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestNaNInTestMetrics(t *testing.T) {
	w := t.TempDir()
	if err := weights.WriteFile(filepath.Join(w, "w"), weights.NewFloat32("w", []int64{1}, []float32{3})); err != nil {
		t.Fatal(err)
	}
	r := zoo(t, nil, "run", "alpha", "test", "--weights", w, "--save_dir", t.TempDir(), "--set", "TEST.nan_at=1")
	oneLineError(t, r, 1, "test stopped: the plugin reported loss = NaN at iter 1")
}

func TestNaNStops(t *testing.T) {
	save := t.TempDir()
	r := zoo(t, nil, "run", "alpha", "train", "--save_dir", save, "--set", "TRAIN.nan_at=7")
	oneLineError(t, r, 1, "loss is NaN at epoch 1, iter 2; the last good checkpoint is "+filepath.Join(save, "Alpha_epoch0"))
	if _, err := os.Stat(filepath.Join(save, "Alpha_epoch1")); err == nil {
		t.Error("a checkpoint was saved after the NaN")
	}
}

func TestEnvOverride(t *testing.T) {
	save := filepath.Join(t.TempDir(), "from-env")
	r := zoo(t, []string{"ZOO_SAVE_DIR=" + save, "ZOO_EPOCH=1"}, "run", "alpha", "train")
	if r.code != 0 {
		t.Fatalf("%d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(save, "Alpha_epoch0")); err != nil {
		t.Errorf("ZOO_SAVE_DIR ignored: %v", err)
	}
	if _, err := os.Stat(filepath.Join(save, "Alpha_epoch1")); err == nil {
		t.Errorf("ZOO_EPOCH=1 ignored")
	}
}

func TestInterruptSavesAndExits(t *testing.T) {
	save := t.TempDir()
	cmd := exec.Command(filepath.Join(binDir, "zoo"), "run", "alpha", "train", "--save_dir", save, "--log_interval", "1",
		"--set", "TRAIN.sleep_ms=100", "--set", "TRAIN.steps=100")
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=")
	stdout, _ := cmd.StdoutPipe()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(io.MultiReader(stdout))
	var out strings.Builder
	sent := false
	go func() {
		time.Sleep(30 * time.Second)
		cmd.Process.Kill()
	}()
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !sent && strings.Contains(out.String(), "iter 2") {
			cmd.Process.Signal(syscall.SIGINT)
			sent = true
		}
	}
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 130 {
		t.Fatalf("exit code %d, want 130\n%s\n%s", code, out.String(), errb.String())
	}
	var st driver.State
	readJSON(t, filepath.Join(save, "Alpha_epoch0", driver.StateFile), &st)
	if st.Complete || st.Epoch != 0 || st.GlobalStep != 0 {
		t.Errorf("interrupt checkpoint state = %+v", st)
	}
	if !strings.Contains(out.String(), "interrupted: saved checkpoint") {
		t.Errorf("no interrupt message:\n%s", out.String())
	}
	// The plugin must be gone too: it was zoo's child; look for any
	// zoo-plugin-two process whose parent was that zoo.
	time.Sleep(200 * time.Millisecond)
	if b, _ := exec.Command("pgrep", "-f", filepath.Join(binDir, "zoo-plugin-two")).Output(); len(bytes.TrimSpace(b)) > 0 {
		t.Errorf("plugin still running after zoo exited: pids %s", b)
	}
}
