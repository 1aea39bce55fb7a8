package serve

import (
	"encoding/base64"
	"encoding/json"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestDecodeOverlapsInfer: with a plugin that has Decode, uploads are
// decoded while the worker's Infer runs (here held until released), their
// views' probabilities are averaged, a bad upload is a 400 naming the
// upload, and ?frames=1 adds the frames the model saw.
func TestDecodeOverlapsInfer(t *testing.T) {
	hs, _, cur, _ := newTestServerWith(t, Options{Window: time.Millisecond, Timeout: time.Minute, Decoders: 2}, true)
	f := cur.Load()
	block := make(chan struct{})
	f.block = block
	var wg sync.WaitGroup
	// A tensor request holds the worker in Infer.
	wg.Go(func() {
		body := `{"inputs":[{"name":"clip","shape":[1,2,3,1,1],"datatype":"FP32","data":[1,1,1,1,1,1]}]}`
		if code, b := post(t, hs.URL+"/v2/models/M/infer", "", []byte(body)); code != 200 {
			t.Errorf("infer: %d %s", code, b)
		}
	})
	// The uploads are posted only once the worker is inside Infer, so
	// decoding them proves the overlap.
	for end := time.Now().Add(time.Minute); f.blocked.Load() < 1 && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
	}
	if f.blocked.Load() != 1 {
		t.Fatal("the tensor request never reached Infer")
	}
	answers := make([]string, 2)
	for i := range answers {
		wg.Go(func() {
			code, b := post(t, hs.URL+"/v2/models/M/classify?topk=2&frames=1", "video/mp4", []byte("ok"))
			if code != 200 {
				t.Errorf("classify %d: %d %s", i, code, b)
			}
			answers[i] = b
		})
	}
	for end := time.Now().Add(time.Minute); f.decoded.Load() < 2 && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
	}
	if n, in := f.decoded.Load(), f.blocked.Load(); n != 2 || in != 1 {
		t.Errorf("%d uploads decoded with %d Infer calls running, want 2 while the held one ran", n, in)
	}
	close(block)
	wg.Wait()
	var res ClassifyResult
	if err := json.Unmarshal([]byte(answers[0]), &res); err != nil {
		t.Fatal(err)
	}
	// Views of six values, 0.1 and 0.3: the fake's class a is the sum,
	// 0.6 and 1.8, averaged 1.2; class b is 1.
	if res.Names[0] != "a" || res.Scores[0] < 1.1999 || res.Scores[0] > 1.2001 || res.Scores[1] != 1 {
		t.Errorf("classify: %+v, want a 1.2 (the views averaged) and b 1", res)
	}
	if len(res.Frames) != 2 || res.Frames[0].Index != 4 || res.Frames[1].Index != 9 {
		t.Fatalf("frames %+v, want the segments' frames 4 and 9", res.Frames)
	}
	b, _ := base64.StdEncoding.DecodeString(res.Frames[0].PNG)
	img, err := png.Decode(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The first view's 0.1, with mean 0 and std 1: 0.1 x 255 = 25.5.
	if r, g, b, _ := img.At(0, 0).RGBA(); img.Bounds().Dx() != 1 || r>>8 != 26 || g>>8 != 26 || b>>8 != 26 {
		t.Errorf("frame 0: %v, want one pixel of (26, 26, 26)", img.At(0, 0))
	}
	if code, b := post(t, hs.URL+"/v2/models/M/classify", "video/mp4", []byte("not a video")); code != 400 || !strings.Contains(b, "the uploaded video") || strings.Contains(b, f.dir) {
		t.Errorf("bad upload: %d %s, want 400 naming the upload", code, b)
	}
}

// TestBatchWaitsForDecodes: a batch that is not full waits for uploads
// still decoding (as an infer pass would have read them together) rather
// than running padded, window or not.
func TestBatchWaitsForDecodes(t *testing.T) {
	hs, _, cur, _ := newTestServerWith(t, Options{Window: time.Millisecond, Timeout: time.Minute, Decoders: 2}, true)
	f := cur.Load()
	f.together = 2
	var wg sync.WaitGroup
	for _, body := range []string{"ok", "slow"} {
		wg.Go(func() {
			if code, b := post(t, hs.URL+"/v2/models/M/classify", "video/mp4", []byte(body)); code != 200 {
				t.Errorf("classify %s: %d %s", body, code, b)
			}
		})
	}
	wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) != 1 || f.batches[0] != 4 {
		t.Errorf("Infer batches of %v rows, want one of 4 (two uploads of two views)", f.batches)
	}
}

// TestNoDecode: Options.NoDecode (--decoders 0) sends uploads to an infer
// pass even when the plugin has Decode.
func TestNoDecode(t *testing.T) {
	hs, _, cur, _ := newTestServerWith(t, Options{Window: time.Millisecond, Timeout: time.Minute, NoDecode: true}, true)
	if code, b := post(t, hs.URL+"/v2/models/M/classify?topk=1", "video/mp4", []byte("ok")); code != 200 || !strings.Contains(b, `"scores":[0.75]`) {
		t.Errorf("classify: %d %s, want the infer pass's answer", code, b)
	}
	if n := cur.Load().decoded.Load(); n != 0 {
		t.Errorf("%d uploads decoded, want 0", n)
	}
}
