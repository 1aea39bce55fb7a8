package main_test

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
)

// The checkpoints and probabilities of testdata/torch come from
// testdata/torch/gen.py (python3-torch 1.13, on zoo's own input of the
// two videos): a narrow TSM-ResNet-50 as MIT saves it (legacy format) and
// as mmaction2 does (zip, float16).

const torchConfig = `[MODEL]
name = "TSM"
num_classes = 10
num_layers = 50
base_width = 8
seg_num = 8

[INFER]
short_size = 256
target_size = 224
batch_size = 2
num_reader_threads = 2
`

type torchGolden struct {
	Videos    []string    `json:"videos"`
	MIT       [][]float64 `json:"mit"`
	MMAction2 [][]float64 `json:"mmaction2"`
	MITViews  [][]float64 `json:"mit_views_2x3"`
}

// torchSetup writes the config and a directory holding the golden videos.
func torchSetup(t *testing.T) (cfg, videos string, g torchGolden) {
	t.Helper()
	readJSON(t, filepath.Join("testdata", "torch", "probs.json"), &g)
	dir := t.TempDir()
	cfg = filepath.Join(dir, "tsm.txt")
	if err := os.WriteFile(cfg, []byte(torchConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	videos = filepath.Join(dir, "videos")
	os.Mkdir(videos, 0o755)
	for _, v := range g.Videos {
		if err := os.Symlink(filepath.Join(shareddata.Dir(t), "videos", v), filepath.Join(videos, v)); err != nil {
			t.Fatal(err)
		}
	}
	return cfg, videos, g
}

// inferProbs runs zoo run TSM infer and returns every class's probability
// per video (by base name).
func inferProbs(t *testing.T, cfg, videos, weights string, extra ...string) (map[string][]float64, result) {
	t.Helper()
	return inferProbsAt(t, binDir, cfg, videos, weights, extra...)
}

// inferProbsAt is inferProbs with the zoo of dir (binDir for the default build).
func inferProbsAt(t *testing.T, dir, cfg, videos, weights string, extra ...string) (map[string][]float64, result) {
	t.Helper()
	save := t.TempDir()
	args := append([]string{"run", "TSM", "infer", "--config", cfg, "--weights", weights, "--video_path", videos, "--save_dir", save, "--infer_topk", "10"}, extra...)
	r := zooAt(t, dir, nil, args...)
	if r.code != 0 {
		t.Fatalf("zoo %s: %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	var recs []struct {
		VideoID string    `json:"video_id"`
		Scores  []float64 `json:"scores"`
		Labels  []int     `json:"labels"`
	}
	readJSON(t, filepath.Join(save, "TSM_infer_result.json"), &recs)
	out := map[string][]float64{}
	for _, rec := range recs {
		p := make([]float64, 10)
		for i, l := range rec.Labels {
			p[l] = rec.Scores[i]
		}
		out[filepath.Base(rec.VideoID)] = p
	}
	return out, r
}

// maxDiff is the largest |got - want| over the golden videos.
func maxDiff(t *testing.T, g torchGolden, got map[string][]float64, want [][]float64) float64 {
	t.Helper()
	d := 0.0
	for i, v := range g.Videos {
		p, ok := got[v]
		if !ok {
			t.Fatalf("no result for %s: %v", v, got)
		}
		for c := range want[i] {
			d = math.Max(d, math.Abs(p[c]-want[i][c]))
		}
	}
	return d
}

// TestTorchCheckpoints: MIT's legacy checkpoint and mmaction2's zip one
// infer through --weights FILE.pth with PyTorch's probabilities (1e-4),
// and again after zoo weights convert; Paddle's conventions forced with
// --set give other probabilities.
func TestTorchCheckpoints(t *testing.T) {
	cfg, videos, g := torchSetup(t)
	for _, tc := range []struct {
		file string
		want [][]float64
	}{
		{"mit_tsm_r50.pth", g.MIT},
		{"mmaction2_tsm_r50.pth", g.MMAction2},
	} {
		t.Run(tc.file, func(t *testing.T) {
			src, err := filepath.Abs(filepath.Join("testdata", "torch", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			got, r := inferProbs(t, cfg, videos, src)
			if d := maxDiff(t, g, got, tc.want); d > 1e-4 {
				t.Errorf("--weights %s: probabilities %v differ from PyTorch's %v by %g", tc.file, got, tc.want, d)
			}
			if !strings.Contains(r.stderr, "conventions: shift_direction pytorch, infer_dropout identity, consensus logits") {
				t.Errorf("no conventions note:\n%s", r.stderr)
			}

			dir := filepath.Join(t.TempDir(), "converted")
			cr := zoo(t, nil, "weights", "convert", src, dir)
			if cr.code != 0 || !strings.Contains(cr.stdout, "TSM-ResNet-50, 267 variables written") {
				t.Fatalf("convert: %d\n%s\n%s", cr.code, cr.stdout, cr.stderr)
			}
			got, _ = inferProbs(t, cfg, videos, dir)
			if d := maxDiff(t, g, got, tc.want); d > 1e-4 {
				t.Errorf("converted %s: probabilities differ from PyTorch's by %g", tc.file, d)
			}

			// Each convention matters: Paddle's shift direction, or its
			// dropout, moves the probabilities far beyond the tolerance.
			for _, set := range []string{"MODEL.shift_direction=paddle", "MODEL.infer_dropout=scale"} {
				got, _ = inferProbs(t, cfg, videos, src, "--set", set)
				if d := maxDiff(t, g, got, tc.want); d < 1e-3 {
					t.Errorf("--set %s: probabilities within %g of PyTorch's", set, d)
				}
			}
			// The consensus is the fc's place: the same up to rounding.
			got, _ = inferProbs(t, cfg, videos, src, "--set", "MODEL.consensus=features")
			if d := maxDiff(t, g, got, tc.want); d > 1e-4 {
				t.Errorf("--set MODEL.consensus=features: %g from PyTorch's", d)
			}
		})
	}
}

// TestTorchMismatch: the wrong depth, a state dict that is no TSM, a
// checkpoint without fc and a hostile pickle are one-line errors naming
// the file and what differs.
func TestTorchMismatch(t *testing.T) {
	cfg, videos, _ := torchSetup(t)
	mit, _ := filepath.Abs(filepath.Join("testdata", "torch", "mit_tsm_r50.pth"))
	evil, _ := filepath.Abs(filepath.Join("..", "..", "weights", "torch", "testdata", "evil.pth"))
	other, _ := filepath.Abs(filepath.Join("..", "..", "weights", "torch", "testdata", "legacy.pth"))
	run := func(weights string, extra ...string) result {
		return zoo(t, nil, append([]string{"run", "TSM", "infer", "--config", cfg, "--weights", weights, "--video_path", videos, "--save_dir", t.TempDir()}, extra...)...)
	}
	oneLineError(t, run(mit, "--set", "MODEL.num_layers=101"), 1, "is a ResNet-50 checkpoint (mit), the config's num_layers is 101")
	oneLineError(t, run(mit, "--set", "MODEL.num_classes=400"), 1, "fc_0.b_0")
	oneLineError(t, run(other), 1, `tensor "w32" is neither MIT's TSM`)
	oneLineError(t, run(evil), 1, "global posix.system is not allowed")
	oneLineError(t, run(mit, "--set", "MODEL.shift_direction=up"), 1, `MODEL.shift_direction "up": must be paddle, pytorch or auto`)
	oneLineError(t, zoo(t, nil, "weights", "convert", filepath.Join(t.TempDir(), "none.pth"), t.TempDir()), 2, "none.pth: no such file")
	oneLineError(t, zoo(t, nil, "weights", "convert", evil, filepath.Join(t.TempDir(), "d")), 1, "global posix.system is not allowed")

	// zoo weights inspect lists a checkpoint's tensors as saved.
	r := zoo(t, nil, "weights", "inspect", mit)
	if r.code != 0 || !strings.Contains(r.stdout, "module.base_model.layer1.0.conv1.net.weight") || !strings.Contains(r.stdout, "torch legacy") {
		t.Errorf("inspect: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestTorchMultiView: INFER.num_clips 2 and num_crops 3 run the six views
// of each video in one batch and average their probabilities, as PyTorch
// does on the same views; TEST takes the keys too.
func TestTorchMultiView(t *testing.T) {
	cfg, videos, g := torchSetup(t)
	mit, _ := filepath.Abs(filepath.Join("testdata", "torch", "mit_tsm_r50.pth"))
	got, r := inferProbs(t, cfg, videos, mit, "--set", "INFER.num_clips=2", "--set", "INFER.num_crops=3")
	if d := maxDiff(t, g, got, g.MITViews); d > 1e-4 {
		t.Errorf("2x3 views: probabilities %v differ from PyTorch's %v by %g", got, g.MITViews, d)
	}
	if !strings.Contains(r.stderr, "views: 2 clips x 3 crops per video, batch of 12") {
		t.Errorf("no views note:\n%s", r.stderr)
	}
	if d := maxDiff(t, g, got, g.MIT); d < 1e-3 {
		t.Errorf("2x3 views within %g of one view's", d)
	}

	dir := t.TempDir()
	list := filepath.Join(dir, "test.list")
	os.WriteFile(list, []byte(filepath.Join(videos, g.Videos[0])+" 8\n"+filepath.Join(videos, g.Videos[1])+" 5\n"), 0o644)
	r = zoo(t, nil, "run", "TSM", "test", "--config", cfg, "--weights", mit, "--filelist", list, "--save_dir", dir,
		"--set", "TEST.num_clips=2", "--set", "TEST.num_crops=3", "--set", "TEST.batch_size=1", "--set", "TEST.short_size=256", "--set", "TEST.target_size=224")
	if r.code != 0 || !strings.Contains(r.stderr, "views: 2 clips x 3 crops per video, batch of 6") {
		t.Fatalf("test with views: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	oneLineError(t, zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", mit, "--video_path", videos, "--save_dir", dir, "--set", "INFER.num_crops=2"), 1, "INFER.num_crops 2: must be 1 or 3")
}

// TestTorchPretrain: --pretrain FILE.pth initialises everything but the
// fc from a PyTorch checkpoint and trains with its conventions.
func TestTorchPretrain(t *testing.T) {
	mit, _ := filepath.Abs(filepath.Join("testdata", "torch", "mit_tsm_r50.pth"))
	save := t.TempDir()
	r := zoo(t, nil, "run", "TSM", "train", "--pretrain", mit, "--epoch", "1", "--save_dir", save,
		"--set", "MODEL.num_layers=50", "--set", "MODEL.base_width=8", "--set", "SYNTHETIC.train_videos=16",
		"--set", "SYNTHETIC.valid_videos=4", "--set", "TRAIN.batch_size=4", "--set", "VALID.batch_size=4")
	if r.code != 0 {
		t.Fatalf("train --pretrain .pth: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"pretrained: 265 variables from " + mit + " (fc_0 left initialised)",
		"conventions: shift_direction pytorch, infer_dropout identity, consensus logits"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("no %q:\n%s", want, r.stderr)
		}
	}
}
