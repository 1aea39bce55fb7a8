package main_test

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/results"
)

// writeImage writes a w x h image of horizontal stripes as PNG or JPEG.
func writeImage(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(30)
			if y/3%2 == 0 {
				v = 230
			}
			img.Set(x, y, color.RGBA{v, v, v / 2, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if filepath.Ext(path) == ".png" {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestResNetEndToEnd runs the real ResNet plugin through zoo: train, test
// and infer on the built-in dataset (shrunk), then test and infer on PNG
// and JPEG files with the checkpoint train saved.
func TestResNetEndToEnd(t *testing.T) {
	save := t.TempDir()
	small := []string{"--save_dir", save, "--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_images=64",
		"--set", "SYNTHETIC.valid_images=32", "--set", "SYNTHETIC.test_images=40", "--set", "SYNTHETIC.infer_images=3"}
	r := zoo(t, nil, append([]string{"run", "ResNet", "train", "--epoch", "1", "--log_interval", "1"}, small...)...)
	if r.code != 0 {
		t.Fatalf("train: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"[TRAIN] Epoch 0, iter 1  Loss:", "[VALID] Epoch 0", "saved checkpoint " + filepath.Join(save, "ResNet_epoch0")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "ResNet-18, 32x32, 4 classes, batch 32") {
		t.Errorf("no model note:\n%s", r.stderr)
	}
	r = zoo(t, nil, append([]string{"run", "ResNet", "test"}, small...)...)
	var tr results.TestResult
	readJSON(t, filepath.Join(save, "ResNet_test_result.json"), &tr)
	if r.code != 0 || tr.Videos != 40 || !(tr.Loss > 0) {
		t.Fatalf("test: %d %+v\n%s", r.code, tr, r.stderr)
	}
	r = zoo(t, nil, append([]string{"run", "ResNet", "infer", "--infer_topk", "2"}, small...)...)
	var recs []results.InferRecord
	readJSON(t, filepath.Join(save, "ResNet_infer_result.json"), &recs)
	if r.code != 0 || len(recs) != 3 || len(recs[0].Names) != 2 || !strings.Contains(strings.Join(recs[0].Names, ","), "stripes") {
		t.Fatalf("infer: %d %+v\n%s", r.code, recs, r.stderr)
	}

	// Real files: PNG and JPEG of several sizes, one broken, in a list.
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a.png"), 64, 48)
	writeImage(t, filepath.Join(dir, "b.jpg"), 40, 90)
	writeImage(t, filepath.Join(dir, "c.jpeg"), 50, 50)
	os.WriteFile(filepath.Join(dir, "broken.png"), []byte("no image here"), 0o644)
	list := filepath.Join(dir, "val.list")
	os.WriteFile(list, []byte("a.png 0\nbroken.png 1\nb.jpg 0\nc.jpeg 0\n"), 0o644)
	cfg := filepath.Join(dir, "small.txt")
	os.WriteFile(cfg, []byte("[MODEL]\nnum_classes = 4\nnum_layers = 18\nbase_width = 4\n\n[TEST]\nshort_size = 40\ntarget_size = 32\nbatch_size = 2\n\n[INFER]\nshort_size = 40\ntarget_size = 32\nbatch_size = 2\n"), 0o644)
	ckpt := filepath.Join(save, "ResNet_epoch0")
	out := t.TempDir()
	r = zoo(t, nil, "run", "ResNet", "test", "--config", cfg, "--weights", ckpt, "--filelist", list, "--save_dir", out)
	readJSON(t, filepath.Join(out, "ResNet_test_result.json"), &tr)
	if r.code != 0 || tr.Videos != 3 || !strings.Contains(r.stdout, "1 video(s) could not be read") || !strings.Contains(r.stderr, "val.list:2") {
		t.Fatalf("test on files: %d %+v\n%s\n%s", r.code, tr, r.stdout, r.stderr)
	}
	r = zoo(t, nil, "run", "ResNet", "infer", "--config", cfg, "--weights", ckpt, "--image_path", dir, "--save_dir", out, "--infer_topk", "1")
	readJSON(t, filepath.Join(out, "ResNet_infer_result.json"), &recs)
	var ids []string
	for _, rec := range recs {
		ids = append(ids, filepath.Base(rec.VideoID))
	}
	if r.code != 0 || fmt.Sprint(ids) != "[a.png b.jpg c.jpeg]" || recs[0].Names[0] == "" {
		t.Fatalf("infer on a directory: %d %v %+v\n%s", r.code, ids, recs, r.stderr)
	}
}

func TestImagePathFlag(t *testing.T) {
	r := zoo(t, nil, "run", "ResNet", "test", "--image_path", t.TempDir())
	oneLineError(t, r, 2, "--image_path is for infer")
	missing := filepath.Join(t.TempDir(), "nope.jpg")
	r = zoo(t, nil, "run", "ResNet", "infer", "--image-path", missing)
	oneLineError(t, r, 2, "--image_path "+missing+": no such file")
}
