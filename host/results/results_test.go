package results

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "TSM_test_result.json")
	if err := WriteJSON(path, TestResult{Videos: 3, Loss: 1.5, Top1: 0.5, Top5: 1}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := "{\n  \"videos\": 3,\n  \"loss\": 1.5,\n  \"top1\": 0.5,\n  \"top5\": 1\n}\n"
	if string(b) != want {
		t.Errorf("file = %q, want %q", b, want)
	}
	rec := []InferRecord{{VideoID: "v", Scores: []float32{0.5}, Labels: []int{2}, Names: []string{"abseiling"}}}
	if err := WriteJSON(path, rec); err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	b, _ = os.ReadFile(path)
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if keys := sortedKeys(back[0]); !reflect.DeepEqual(keys, []string{"labels", "names", "scores", "video_id"}) {
		t.Errorf("infer record keys = %v", keys)
	}
	if err := WriteJSON(path, math.NaN()); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteJSON(NaN) error = %v", err)
	}
}

func sortedKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestTopK(t *testing.T) {
	t.Parallel()
	nan := float32(math.NaN())
	tests := []struct {
		name     string
		scores   []float32
		k        int
		wantIdx  []int
		wantVals []float32
	}{
		{"basic", []float32{0.1, 0.7, 0.2}, 2, []int{1, 2}, []float32{0.7, 0.2}},
		{"ties lower index first", []float32{0.3, 0.5, 0.3, 0.5}, 4, []int{1, 3, 0, 2}, []float32{0.5, 0.5, 0.3, 0.3}},
		{"k larger than n", []float32{1, 2}, 20, []int{1, 0}, []float32{2, 1}},
		{"k zero", []float32{1, 2}, 0, []int{}, []float32{}},
		{"k negative", []float32{1, 2}, -1, []int{}, []float32{}},
		{"empty", nil, 5, []int{}, []float32{}},
		{"nan last", []float32{nan, -1, 2}, 3, []int{2, 1, 0}, nil},
		{"negative and inf", []float32{-3, float32(math.Inf(1)), -1}, 2, []int{1, 2}, []float32{float32(math.Inf(1)), -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx, vals := TopK(tt.scores, tt.k)
			if !reflect.DeepEqual(idx, tt.wantIdx) {
				t.Errorf("idx = %v, want %v", idx, tt.wantIdx)
			}
			if tt.wantVals != nil && !reflect.DeepEqual(vals, tt.wantVals) {
				t.Errorf("vals = %v, want %v", vals, tt.wantVals)
			}
			if len(vals) != len(idx) {
				t.Errorf("len(vals) %d != len(idx) %d", len(vals), len(idx))
			}
		})
	}
	// The returned indices must not alias a longer backing array that a
	// caller's append could clobber.
	idx, _ := TopK([]float32{3, 2, 1}, 1)
	if cap(idx) != 1 {
		t.Errorf("cap(idx) = %d, want 1", cap(idx))
	}
}

func TestEventJSON(t *testing.T) {
	t.Parallel()
	e := Event{Phase: "train", Epoch: 3, Iter: 20, Loss: 1.25, Top1: 0.45, Top5: 0.9, LR: 0.01, ClipsPerS: 12.5}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"phase":"train","epoch":3,"iter":20,"loss":1.25,"top1":0.45,"top5":0.9,"lr":0.01,"clips_per_s":12.5}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, e) {
		t.Errorf("round trip = %+v, %v", back, err)
	}
	nan := Event{Phase: "train", Loss: math.NaN(), Top1: math.Inf(1)}
	b, err = json.Marshal(nan)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"loss":null`) || !strings.Contains(string(b), `"top1":null`) {
		t.Errorf("non-finite json = %s, want nulls", b)
	}
	if err := json.Unmarshal(b, &back); err != nil || !math.IsNaN(back.Loss) || !math.IsNaN(back.Top1) || back.Top5 != 0 {
		t.Errorf("non-finite round trip = %+v, %v", back, err)
	}
}

// TestEventJSONExtra: a step's extra metrics are fields of the line,
// after the fixed ones in name order, and read back into Extra; one named
// like a fixed field is dropped, a non-finite one is null.
func TestEventJSONExtra(t *testing.T) {
	t.Parallel()
	e := Event{Phase: "train", Epoch: 0, Iter: 1, Loss: 1, Top1: 0.5, Top5: 1, LR: 0.01,
		Extra: map[string]float64{"zeta": 2, "allreduce_s": 0.25, "loss": 7, "bad": math.Inf(1)}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"phase":"train","epoch":0,"iter":1,"loss":1,"top1":0.5,"top5":1,"lr":0.01,"clips_per_s":0,"allreduce_s":0.25,"bad":null,"zeta":2}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Extra["allreduce_s"] != 0.25 || back.Extra["zeta"] != 2 || !math.IsNaN(back.Extra["bad"]) || len(back.Extra) != 3 || back.Loss != 1 {
		t.Errorf("round trip = %+v", back)
	}
}

// TestInferSummaryJSON: an infer summary's plugin metrics are fields of
// the object after the fixed ones, in name order, and read back into
// Extra; one named like a fixed field is dropped, a non-finite one is null.
func TestInferSummaryJSON(t *testing.T) {
	t.Parallel()
	s := InferSummary{Videos: 5, Skipped: 1, Seconds: 2.5, ClipsPerS: 2,
		Extra: map[string]float64{"forward_s": 1.5, "decode_s": 0.75, "videos": 9, "bad": math.NaN()}}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"videos":5,"skipped":1,"seconds":2.5,"clips_per_s":2,"bad":null,"decode_s":0.75,"forward_s":1.5}`
	if string(b) != want {
		t.Errorf("json = %s, want %s", b, want)
	}
	var back InferSummary
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Videos != 5 || back.Skipped != 1 || back.Seconds != 2.5 || back.ClipsPerS != 2 || len(back.Extra) != 3 ||
		back.Extra["decode_s"] != 0.75 || back.Extra["forward_s"] != 1.5 || !math.IsNaN(back.Extra["bad"]) {
		t.Errorf("round trip = %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"videos":1,"decode_s":"fast"}`), &back); err == nil || !strings.Contains(err.Error(), "decode_s") {
		t.Errorf("a metric that is not a number: %v, want an error naming it", err)
	}
}

func TestMetricsLog(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), MetricsFile)
	events := []Event{
		{Phase: "train", Epoch: 0, Iter: 0, Loss: 2, Top1: 0.1, Top5: 0.5, LR: 0.01, ClipsPerS: 10},
		{Phase: "valid", Epoch: 0, Iter: 4, Loss: 1.5, Top1: 0.3, Top5: 0.8},
	}
	m, err := OpenMetricsLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Write(events[0]); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := m.Write(events[1]); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := m.Sync(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Sync after Close = %v, want ErrClosed", err)
	}
	// A resumed run appends.
	m, err = OpenMetricsLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Write(events[1]); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	got, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, events) {
		t.Errorf("ReadMetrics = %+v, want %+v", got, events)
	}
	b, _ := os.ReadFile(path)
	if n := bytes.Count(b, []byte("\n")); n != 2 {
		t.Errorf("file has %d lines, want 2", n)
	}
}

func TestReadMetrics(t *testing.T) {
	t.Parallel()
	line := `{"phase":"train","epoch":1,"iter":10,"loss":1,"top1":0.5,"top5":1,"lr":0.1,"clips_per_s":3}`
	tests := []struct {
		name    string
		content string
		want    int
		wantErr string
	}{
		{"two lines", line + "\n\n" + line + "\n", 2, ""},
		{"torn last line skipped", line + "\n" + `{"phase":"tr`, 1, ""},
		{"complete last line without newline", line + "\n" + line, 2, ""},
		{"bad line in the middle", line + "\n{oops\n" + line + "\n", 0, ":2: invalid character"},
		{"bad last line with newline", line + "\n{oops\n", 0, ":2: invalid character"},
		{"empty", "", 0, ""},
		{"line too long", strings.Repeat(" ", maxMetricsLine+1) + "\n", 0, ":1: line longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "m.jsonl")
			os.WriteFile(path, []byte(tt.content), 0o644)
			got, err := ReadMetrics(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), path+tt.wantErr) {
					t.Fatalf("error = %v, want %q", err, path+tt.wantErr)
				}
				return
			}
			if err != nil || len(got) != tt.want {
				t.Fatalf("got %d events, %v; want %d", len(got), err, tt.want)
			}
		})
	}
	if _, err := ReadMetrics(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file error = %v", err)
	}
}

func TestFormatLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Event
		want string
	}{
		{Event{Phase: "train", Epoch: 3, Iter: 20, Loss: 1.2345674, Top1: 0.45, Top5: 0.9},
			"[TRAIN] Epoch 3, iter 20  Loss: 1.234567, top1_acc: 45.00, top5_acc: 90.00"},
		{Event{Phase: "valid", Epoch: 0, Iter: 5, Loss: 0.5, Top1: 1, Top5: 1},
			"[VALID] Epoch 0, iter 5  Loss: 0.500000, top1_acc: 100.00, top5_acc: 100.00"},
		{Event{Phase: "test", Epoch: -1, Iter: 7, Loss: 2, Top1: 0.12345, Top5: 0.5},
			"[TEST] iter 7  Loss: 2.000000, top1_acc: 12.35, top5_acc: 50.00"},
		{Event{Epoch: 1, Iter: 1, Loss: math.NaN()},
			"[TRAIN] Epoch 1, iter 1  Loss: NaN, top1_acc: 0.00, top5_acc: 0.00"},
		{Event{Phase: "train", Epoch: 0, Iter: 2, Loss: 1, Extra: map[string]float64{"zeta": 2, "allreduce_s": 0.0125}},
			"[TRAIN] Epoch 0, iter 2  Loss: 1.000000, top1_acc: 0.00, top5_acc: 0.00, allreduce_s: 0.012500, zeta: 2.000000"},
	}
	for _, tt := range tests {
		if got := FormatLine(tt.e); got != tt.want {
			t.Errorf("FormatLine(%+v)\n got %q\nwant %q", tt.e, got, tt.want)
		}
	}
	if got := FormatTrainLine(tests[0].e); got != tests[0].want {
		t.Errorf("FormatTrainLine = %q", got)
	}
}

func TestPerEpoch(t *testing.T) {
	t.Parallel()
	events := []Event{
		{Phase: "train", Epoch: 1, Loss: 1, Top1: 0.2},
		{Phase: "train", Epoch: 0, Loss: 3, Top1: 0},
		{Phase: "train", Epoch: 0, Loss: 1, Top1: 0.5},
		{Phase: "train", Epoch: 1, Loss: math.NaN(), Top1: 0.4},
		{Phase: "valid", Epoch: 0, Loss: 9, Top1: 0.9},
	}
	got := PerEpoch(events, "train")
	want := []EpochMean{{0, 2, 0.25}, {1, 1, 0.30000000000000004}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PerEpoch(train) = %v, want %v", got, want)
	}
	if got := PerEpoch(events, "VALID"); len(got) != 1 || got[0].Loss != 9 {
		t.Errorf("PerEpoch(VALID) = %v", got)
	}
	if got := PerEpoch(events, "test"); got != nil {
		t.Errorf("PerEpoch(test) = %v, want nil", got)
	}
}

func TestPlot(t *testing.T) {
	t.Parallel()
	var events []Event
	for ep := range 6 {
		for it := 0; it < 40; it += 10 {
			events = append(events, Event{Phase: "train", Epoch: ep, Iter: it,
				Loss: 2.3 / float64(ep+1) * (1 + 0.1*float64(it%20)/10), Top1: math.Min(1, 0.15*float64(ep+1))})
		}
		events = append(events, Event{Phase: "valid", Epoch: ep, Loss: 2.5 / float64(ep+1), Top1: math.Min(1, 0.12*float64(ep+1))})
	}
	dir := t.TempDir()
	if os.Getenv("ZOO_PLOT_DIR") != "" {
		dir = os.Getenv("ZOO_PLOT_DIR") // to look at the image
	}
	path := filepath.Join(dir, PlotFile)
	if err := Plot(path, events); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 400 {
		t.Errorf("image is %v, want at least 400x400", b)
	}
	// Not blank: the curves put some coloured pixels in the image.
	colored := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y += 2 {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x += 2 {
			r, g, b, _ := img.At(x, y).RGBA()
			if r != g || g != b {
				colored++
			}
		}
	}
	if colored < 100 {
		t.Errorf("only %d coloured pixels: curves missing?", colored)
	}

	if err := Plot(filepath.Join(dir, "none.png"), nil); err == nil || !strings.Contains(err.Error(), "no train or valid events") {
		t.Errorf("Plot(nil) error = %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none.png")); !errors.Is(err, os.ErrNotExist) {
		t.Error("Plot(nil) left a file")
	}
	// A single epoch, and NaN losses, still plot.
	one := []Event{{Phase: "train", Epoch: 0, Loss: math.NaN(), Top1: 0.5}, {Phase: "train", Epoch: 0, Loss: 1, Top1: 0.5}}
	if err := Plot(filepath.Join(dir, "one.png"), one); err != nil {
		t.Errorf("Plot(one epoch) = %v", err)
	}
}
