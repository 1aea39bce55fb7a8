package main_test

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var onednnPlugin struct {
	once sync.Once
	err  error
	out  []byte
}

// onednnBundle is a directory with zoo and a zoo-plugin-tsm built with
// -tags onednn,openblas (TestMain builds the plugins without tags, as go
// install does).
func onednnBundle(t *testing.T) string {
	t.Helper()
	onednnPlugin.once.Do(func() {
		cmd := exec.Command("go", "build", "-tags", "onednn,openblas", "-o", filepath.Join(binDir, "tsm-onednn"), "../../plugins/tsm/cmd/zoo-plugin-tsm")
		onednnPlugin.out, onednnPlugin.err = cmd.CombinedOutput()
	})
	if onednnPlugin.err != nil {
		t.Fatalf("build zoo-plugin-tsm -tags onednn (make deps installs libdnnl-dev): %v\n%s", onednnPlugin.err, onednnPlugin.out)
	}
	return bundle(t, map[string]string{"zoo-plugin-tsm": "tsm-onednn"})
}

func argmax(p []float64) int {
	best := 0
	for i, v := range p {
		if v > p[best] {
			best = i
		}
	}
	return best
}

// TestOneDNNInfer: the TSM plugin built with oneDNN infers the real clips
// with PyTorch's probabilities (fp32, 1e-4, MIT's checkpoint of
// torch_test.go); with --set MODEL.precision=bf16 it keeps each clip's
// top-1 class and its probability within 0.05, and says so; a bad
// precision is a one-line error.
func TestOneDNNInfer(t *testing.T) {
	dir := onednnBundle(t)
	cfg, videos, g := torchSetup(t)
	mit, _ := filepath.Abs(filepath.Join("testdata", "torch", "mit_tsm_r50.pth"))
	fp32, _ := inferProbsAt(t, dir, cfg, videos, mit)
	if d := maxDiff(t, g, fp32, g.MIT); d > 1e-4 {
		t.Errorf("oneDNN fp32: probabilities %v differ from PyTorch's %v by %g", fp32, g.MIT, d)
	}
	bf16, r := inferProbsAt(t, dir, cfg, videos, mit, "--set", "MODEL.precision=bf16")
	if !strings.Contains(r.stderr, "precision bf16: inference convolutions in bfloat16") || !strings.Contains(r.stderr, "oneDNN") {
		t.Errorf("no bf16 note:\n%s", r.stderr)
	}
	same := true
	for _, v := range g.Videos {
		top := argmax(fp32[v])
		t.Logf("%s: fp32 top-1 %d p %.4f, bf16 top-1 %d p %.4f", v, top, fp32[v][top], argmax(bf16[v]), bf16[v][top])
		if argmax(bf16[v]) != top || !(math.Abs(bf16[v][top]-fp32[v][top]) <= 0.05) {
			t.Errorf("%s: bf16 top-1 %d (p %v), fp32 top-1 %d (p %v)", v, argmax(bf16[v]), bf16[v], top, fp32[v])
		}
		for c := range fp32[v] {
			same = same && bf16[v][c] == fp32[v][c]
		}
	}
	if same {
		t.Error("bf16 gave exactly the fp32 probabilities: it did not run in bf16")
	}
	r = zooAt(t, dir, nil, "run", "TSM", "infer", "--config", cfg, "--weights", mit, "--video_path", videos, "--save_dir", t.TempDir(), "--set", "MODEL.precision=fp16")
	oneLineError(t, r, 1, `MODEL.precision "fp16": must be fp32 or bf16`)
}

// TestPrecisionWithoutOneDNN: the plugin built without oneDNN (as go
// install builds it) refuses bf16 in one line naming the build.
func TestPrecisionWithoutOneDNN(t *testing.T) {
	cfg, videos, _ := torchSetup(t)
	mit, _ := filepath.Abs(filepath.Join("testdata", "torch", "mit_tsm_r50.pth"))
	r := zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", mit, "--video_path", videos, "--save_dir", t.TempDir(), "--set", "MODEL.precision=bf16")
	oneLineError(t, r, 1, "MODEL.precision: precision bf16 needs zoo built with oneDNN")
	if _, err := os.Stat(filepath.Join(binDir, "zoo-plugin-tsm")); err != nil {
		t.Fatal(err)
	}
}
