package resnet

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/video"
	"github.com/zoo-ml/zoo/weights"
)

// tinyConfig is the built-in job shrunk further for unit tests.
func tinyConfig(over map[string]map[string]any) sdk.Config {
	c := sdk.Config{}
	for _, k := range mustSchema() {
		if c[k.Section] == nil {
			c[k.Section] = map[string]any{}
		}
		c[k.Section][k.Name] = k.Default
	}
	for sec, kv := range DefaultJob() {
		for k, v := range kv {
			c[sec][k] = v
		}
	}
	for _, sec := range []string{"TRAIN", "VALID", "TEST", "INFER"} {
		c[sec]["batch_size"] = 2
	}
	c["MODEL"]["base_width"] = 4
	c["SYNTHETIC"]["train_images"] = 4
	c["SYNTHETIC"]["valid_images"] = 3
	c["SYNTHETIC"]["test_images"] = 3
	c["SYNTHETIC"]["infer_images"] = 3
	for sec, kv := range over {
		for k, v := range kv {
			c[sec][k] = v
		}
	}
	return c
}

func openTiny(t *testing.T, mode string, over map[string]map[string]any, w map[string]string) *session {
	t.Helper()
	s, _, err := open(context.Background(), sdk.OpenRequest{Model: "ResNet", Mode: mode, Config: tinyConfig(over), Weights: w, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func collect(t *testing.T, s *session, req sdk.RunRequest) []sdk.Event {
	t.Helper()
	var evs []sdk.Event
	if err := s.Run(context.Background(), req, func(e sdk.Event) error { evs = append(evs, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestImageNetLabels(t *testing.T) {
	l, err := ImageNetLabels()
	if err != nil {
		t.Fatal(err)
	}
	// Spot checks against the ImageNet-1k synset order.
	for i, want := range map[int]string{0: "tench", 1: "goldfish", 281: "tabby", 999: "toilet tissue"} {
		if !strings.HasPrefix(l[i], want) {
			t.Errorf("label %d = %q, want %q...", i, l[i], want)
		}
	}
}

func TestSyntheticClassesAreBalanced(t *testing.T) {
	img := make([]float32, 3*32*32)
	count := make([]int, len(synthClasses))
	for i := 0; i < 400; i++ {
		count[synthImage(img, splitTrain, i, 32, 0.5)]++
	}
	for c, n := range count {
		if n < 70 {
			t.Errorf("class %d: %d of 400 images", c, n)
		}
	}
	a, b := make([]float32, len(img)), make([]float32, len(img))
	synthImage(a, splitValid, 3, 32, 0.5)
	synthImage(b, splitValid, 3, 32, 0.5)
	if !slices.Equal(a, b) {
		t.Error("synthetic images are not a pure function of (split, i)")
	}
}

func TestTrainValidTestInferPasses(t *testing.T) {
	s := openTiny(t, sdk.ModeTrain, nil, nil)
	evs := collect(t, s, sdk.RunRequest{Phase: sdk.PhaseTrain})
	if evs[0].Start == nil || evs[0].Start.Steps != 2 || evs[0].Start.Samples != 4 || len(evs) != 3 {
		t.Fatalf("train events: %d, start %+v", len(evs), evs[0].Start)
	}
	evs = collect(t, s, sdk.RunRequest{Phase: sdk.PhaseValid})
	if len(evs) != 3 || evs[2].Step.Samples != 1 {
		t.Fatalf("valid: %d events, last %+v", len(evs), evs[len(evs)-1].Step)
	}
	s = openTiny(t, sdk.ModeInfer, nil, nil)
	var n int
	for _, e := range collect(t, s, sdk.RunRequest{Phase: sdk.PhaseInfer}) {
		if p := e.Prediction; p != nil {
			n++
			if len(p.Scores.Data) != 4 {
				t.Errorf("%s: %d scores", p.ID, len(p.Scores.Data))
			}
		}
	}
	if n != 3 {
		t.Errorf("%d predictions, want 3", n)
	}
}

// writeStripes writes a w x h image of vertical stripes as PNG or JPEG.
func writeStripes(t *testing.T, path string, w, h int) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := uint8(40)
			if x/3%2 == 0 {
				v = 220
			}
			img.Set(x, y, color.RGBA{v, v / 2, 255 - v, 255})
		}
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if strings.HasSuffix(path, ".png") {
		err = png.Encode(f, img)
	} else {
		err = jpeg.Encode(f, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
}

// realImages writes two PNGs, two JPEGs (of other sizes and aspect ratios)
// and a broken file, and a "path label" list of them.
func realImages(t *testing.T) (dir, list string) {
	dir = t.TempDir()
	writeStripes(t, filepath.Join(dir, "a.png"), 48, 40)
	writeStripes(t, filepath.Join(dir, "b.jpg"), 40, 64)
	writeStripes(t, filepath.Join(dir, "c.jpeg"), 100, 45)
	writeStripes(t, filepath.Join(dir, "d.png"), 40, 40)
	os.WriteFile(filepath.Join(dir, "broken.jpg"), []byte("not an image"), 0o644)
	list = filepath.Join(dir, "test.list")
	os.WriteFile(list, []byte("# images\na.png 1\nb.jpg 1\nbroken.jpg 0\nc.jpeg 1\nd.png 1\n"), 0o644)
	return dir, list
}

func TestRealImageFiles(t *testing.T) {
	dir, list := realImages(t)
	reader := map[string]any{"filelist": list, "short_size": 40, "target_size": 32, "batch_size": 2, "num_reader_threads": 2}
	s := openTiny(t, sdk.ModeTest, map[string]map[string]any{"TEST": reader}, nil)
	var samples int64
	var warned []string
	for _, e := range collect(t, s, sdk.RunRequest{Phase: sdk.PhaseTest}) {
		if e.Step != nil {
			samples += e.Step.Samples
			if l := e.Step.Metrics["loss"]; !(l > 0) || math.IsInf(l, 0) {
				t.Errorf("loss %v", l)
			}
		}
		if e.Warning != nil {
			warned = append(warned, e.Warning.Path)
		}
	}
	if samples != 4 || len(warned) != 1 || !strings.HasSuffix(warned[0], "test.list:4") {
		t.Fatalf("evaluated %d images, warnings %v; want 4 and one for test.list:4", samples, warned)
	}

	// Infer over the directory: every image, each once, by path.
	s = openTiny(t, sdk.ModeInfer, map[string]map[string]any{"INFER": {"image_path": dir, "short_size": 40, "target_size": 32}}, nil)
	var ids []string
	for _, e := range collect(t, s, sdk.RunRequest{Phase: sdk.PhaseInfer}) {
		if e.Prediction != nil {
			ids = append(ids, filepath.Base(e.Prediction.ID))
		}
	}
	if !slices.Equal(ids, []string{"a.png", "b.jpg", "c.jpeg", "d.png"}) {
		t.Errorf("infer ids %v", ids)
	}

	// Training augments with the run's seed: the same seed, the same loss.
	train := map[string]map[string]any{"TRAIN": {"filelist": list, "short_size": 32, "target_size": 32, "batch_size": 2}}
	loss := func() float64 {
		s := openTiny(t, sdk.ModeTrain, train, nil)
		evs := collect(t, s, sdk.RunRequest{Phase: sdk.PhaseTrain})
		return evs[len(evs)-1].Step.Metrics["loss"]
	}
	if a, b := loss(), loss(); a != b || !(a > 0) {
		t.Errorf("seeded training losses %v and %v differ", a, b)
	}
}

func TestPreprocess(t *testing.T) {
	img := video.NewImage(100, 50)
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	if r := resizeShort(img, 32); r.W != 64 || r.H != 32 {
		t.Errorf("resize_short(100x50, 32) = %dx%d, want 64x32", r.W, r.H)
	}
	mean, std := [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225}
	dst := make([]float32, 3*24*24)
	if err := preprocess(dst, img, false, nil, 32, 24, mean, std); err != nil {
		t.Fatal(err)
	}
	for c := 0; c < 3; c++ {
		want := (float32(128)/255 - mean[c]) / std[c]
		if got := dst[c*24*24+100]; math.Abs(float64(got-want)) > 1e-6 {
			t.Errorf("channel %d: %v, want %v", c, got, want)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		if err := preprocess(dst, img, true, r, 32, 24, mean, std); err != nil {
			t.Fatalf("random resized crop %d: %v", i, err)
		}
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	s := openTiny(t, sdk.ModeTrain, nil, nil)
	collect(t, s, sdk.RunRequest{Phase: sdk.PhaseTrain})
	dir := t.TempDir()
	if err := s.Save(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	names, _ := weights.ListDir(dir)
	if !slices.Contains(names, "fc_0.w_0") || !slices.Contains(names, "conv1_weights_velocity_0") {
		t.Fatalf("checkpoint lacks fc_0.w_0 or a velocity: %v", names)
	}
	s2 := openTiny(t, sdk.ModeTrain, nil, nil)
	res, err := s2.Load(context.Background(), dir, sdk.LoadResume)
	if err != nil || res.Loaded != len(names) {
		t.Fatalf("resume loaded %d of %d: %v", res.Loaded, len(names), err)
	}
	openTiny(t, sdk.ModeTest, nil, map[string]string{sdk.UseWeights: dir})
	// Another depth: the error names the directory and a shape.
	_, _, err = open(context.Background(), sdk.OpenRequest{Model: "ResNet", Mode: sdk.ModeTest,
		Config: tinyConfig(map[string]map[string]any{"MODEL": {"base_width": 8}}), Weights: map[string]string{sdk.UseWeights: dir}})
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "shape [") {
		t.Fatalf("wrong shapes: %v", err)
	}
}

// TestResNet50StemLoadsByName loads the real Paddle ResNet-50 files into
// the plugin's ImageNet ResNet-50 (1000 classes): every file present fills
// its variable exactly; the variables the stem lacks are missing by name.
func TestResNet50StemLoadsByName(t *testing.T) {
	dir := filepath.Join(shareddata.Dir(t), "paddle", "resnet50_stem")
	s := openTiny(t, sdk.ModeTest, map[string]map[string]any{
		"MODEL": {"num_layers": 50, "base_width": 64, "num_classes": 1000},
		"TEST":  {"batch_size": 1, "target_size": 32, "short_size": 32},
	}, nil)
	want := classifier.Specs(s.model, classifier.All)
	if fc := want["fc_0.w_0"].Dims; !slices.Equal(fc, []int64{2048, 1000}) {
		t.Fatalf("fc_0.w_0 %v, want [2048 1000] as in ResNet50_pretrained", fc)
	}
	_, err := weights.Check(dir, want)
	var me *weights.MismatchError
	if !errors.As(err, &me) || len(me.Wrong) != 0 {
		t.Fatalf("Check = %v, want only missing variables", err)
	}
	files, _ := weights.ListDir(dir)
	if len(me.Missing)+len(files) != len(want) || !slices.Contains(me.Missing, "fc_0.w_0") {
		t.Errorf("%d missing + %d present != %d variables, or fc_0.w_0 not missing", len(me.Missing), len(files), len(want))
	}
	n, err := classifier.Load(s.model, dir, func(name string) bool { return slices.Contains(files, name) }, false)
	if err != nil || n != len(files) {
		t.Fatalf("load %d of %d: %v", n, len(files), err)
	}
	ts, _ := weights.ReadDir(dir, []string{"conv1_weights", "bn_conv1_mean"})
	for name, tt := range ts {
		v, _ := tt.Float32s()
		p, _ := s.model.Param(name)
		if !slices.Equal(p.Value.Float32s(), v) {
			t.Errorf("%s not loaded exactly", name)
		}
	}
}

func TestBadInputIsInvalidArgument(t *testing.T) {
	dir, _ := realImages(t)
	bad := filepath.Join(dir, "bad.list")
	os.WriteFile(bad, []byte("a.png one\n"), 0o644)
	cases := map[string]struct {
		mode string
		over map[string]map[string]any
		want string
	}{
		"depth":      {sdk.ModeTrain, map[string]map[string]any{"MODEL": {"num_layers": 20}}, "MODEL.num_layers 20"},
		"batch":      {sdk.ModeTrain, map[string]map[string]any{"TRAIN": {"batch_size": 0}}, "TRAIN.batch_size 0"},
		"unknown":    {sdk.ModeTrain, map[string]map[string]any{"MODEL": {"bogus": 1}}, "bogus"},
		"crop":       {sdk.ModeTest, map[string]map[string]any{"TEST": {"short_size": 16}}, "short_size 16"},
		"list label": {sdk.ModeTest, map[string]map[string]any{"TEST": {"filelist": bad}}, "bad.list:1"},
		"no image":   {sdk.ModeInfer, map[string]map[string]any{"INFER": {"image_path": filepath.Join(dir, "nope.png")}}, "nope.png"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			s, _, err := open(context.Background(), sdk.OpenRequest{Model: "ResNet", Mode: c.mode, Config: tinyConfig(c.over)})
			if err == nil {
				phase := map[string]string{sdk.ModeTest: sdk.PhaseTest, sdk.ModeInfer: sdk.PhaseInfer, sdk.ModeTrain: sdk.PhaseTrain}[c.mode]
				err = s.Run(context.Background(), sdk.RunRequest{Phase: phase}, func(sdk.Event) error { return nil })
				s.Close()
			}
			if code := sdk.CodeOf(err); (code != sdk.CodeInvalidArgument && code != sdk.CodeNotFound) || !strings.Contains(fmt.Sprint(err), c.want) {
				t.Errorf("err = %v (code %v), want a user error naming %q", err, sdk.CodeOf(err), c.want)
			}
		})
	}
}
