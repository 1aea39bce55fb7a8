package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/sdk"
)

// fake is a Session in process: a clip's "probabilities" are [sum of its
// values, 1]; a video is readable when its bytes say "ok".
type fake struct {
	dir     string
	mu      sync.Mutex
	batches []int
	dead    atomic.Bool
	block   chan struct{} // when set, Infer waits for it or its ctx
	blocked atomic.Int32  // Infer calls waiting on block
	// decodes: the plugin has Decode (an "ok" upload is two views of
	// [2, 3, 1, 1], 0.1 and 0.3 everywhere); else it answers Unimplemented.
	decodes bool
	decoded atomic.Int32
	// together: each Decode waits until this many have started; a "slow"
	// upload then takes 200ms more.
	together int32
	entered  atomic.Int32
}

func (f *fake) Decode(ctx context.Context, path string) (sdk.Decoded, error) {
	if !f.decodes {
		return sdk.Decoded{}, sdk.ErrUnimplemented
	}
	b, err := os.ReadFile(path)
	if f.entered.Add(1); f.together > 0 {
		for end := time.Now().Add(time.Minute); f.entered.Load() < f.together && time.Now().Before(end); time.Sleep(time.Millisecond) {
		}
	}
	if string(b) == "slow" {
		time.Sleep(200 * time.Millisecond)
		b = []byte("ok")
	}
	if err != nil || string(b) != "ok" {
		return sdk.Decoded{}, sdk.Errorf(sdk.CodeInvalidArgument, "decode %s: invalid data", path)
	}
	in := make([]float32, 12)
	for i := range in {
		in[i] = 0.1 + 0.2*float32(i/6)
	}
	f.decoded.Add(1)
	return sdk.Decoded{Input: sdk.Tensor{Shape: []int64{2, 2, 3, 1, 1}, Data: in}, Frames: []int64{4, 9}, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}}, nil
}

func (f *fake) Infer(ctx context.Context, in sdk.Tensor) (sdk.Tensor, error) {
	if f.block != nil {
		f.blocked.Add(1)
		defer f.blocked.Add(-1)
		select {
		case <-f.block:
		case <-ctx.Done():
			return sdk.Tensor{}, ctx.Err()
		}
	}
	n := int(in.Shape[0])
	f.mu.Lock()
	f.batches = append(f.batches, n)
	f.mu.Unlock()
	size := len(in.Data) / n
	out := make([]float32, 0, 2*n)
	for i := range n {
		s := float32(0)
		for _, v := range in.Data[i*size : (i+1)*size] {
			s += v
		}
		out = append(out, s, 1)
	}
	return sdk.Tensor{Shape: []int64{int64(n), 2}, Data: out}, nil
}

func (f *fake) Run(_ context.Context, _ sdk.RunRequest) iter.Seq2[sdk.Event, error] {
	return func(yield func(sdk.Event, error) bool) {
		ents, _ := os.ReadDir(f.dir)
		f.mu.Lock()
		f.batches = append(f.batches, len(ents))
		f.mu.Unlock()
		for _, e := range ents {
			p := filepath.Join(f.dir, e.Name())
			b, _ := os.ReadFile(p)
			ev := sdk.Event{Warning: &sdk.Warning{Path: p, Message: "decode " + p + ": invalid data"}}
			if string(b) == "ok" {
				ev = sdk.Event{Prediction: &sdk.Prediction{ID: p, Scores: sdk.Tensor{Shape: []int64{2}, Data: []float32{0.25, 0.75}}}}
			}
			if !yield(ev, nil) {
				return
			}
		}
	}
}

func (f *fake) Exited() bool { return f.dead.Load() }
func (f *fake) Close()       {}

func (f *fake) maxBatch() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := 0
	for _, b := range f.batches {
		m = max(m, b)
	}
	return m
}

func newTestServer(t *testing.T, window time.Duration) (*httptest.Server, *Server, *atomic.Pointer[fake], *atomic.Int32) {
	return newTestServerOpts(t, Options{Window: window, Timeout: time.Minute})
}

func newTestServerOpts(t *testing.T, opts Options) (*httptest.Server, *Server, *atomic.Pointer[fake], *atomic.Int32) {
	return newTestServerWith(t, opts, false)
}

func newTestServerWith(t *testing.T, opts Options, decodes bool) (*httptest.Server, *Server, *atomic.Pointer[fake], *atomic.Int32) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "videos")
	os.MkdirAll(dir, 0o700)
	var cur atomic.Pointer[fake]
	var starts atomic.Int32
	start := func(context.Context) (Session, sdk.OpenResult, error) {
		starts.Add(1)
		f := &fake{dir: dir, decodes: decodes}
		cur.Store(f)
		return f, sdk.OpenResult{Labels: []string{"a", "b"}}, nil
	}
	s := New(opts, hclog.NewNullLogger())
	sess, res, _ := start(context.Background())
	m := Model{Name: "M", Version: "1", Input: []int64{2, 3}, MaxBatch: 4, VideoDir: dir, Start: start}
	if decodes {
		m.Input = []int64{2, 3, 1, 1} // two segments of one RGB pixel
	}
	if err := s.Add(m, sess, res.Labels); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
	})
	return hs, s, &cur, &starts
}

func post(t *testing.T, url, ctype string, body []byte) (int, string) {
	t.Helper()
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBatchAnswersEachRequest: concurrent requests meet in batches of more
// than one clip, and each gets its own rows back.
func TestBatchAnswersEachRequest(t *testing.T) {
	hs, _, cur, _ := newTestServer(t, 2*time.Second)
	var wg sync.WaitGroup
	for i := range 8 {
		clips := 1 + i%2
		wg.Go(func() {
			data := make([]float32, clips*6)
			for j := range data {
				data[j] = float32(i)
			}
			body, _ := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "clip", "shape": []int{clips, 2, 3}, "datatype": "FP32", "data": data}}})
			code, b := post(t, hs.URL+"/v2/models/M/infer", "application/json", body)
			var a struct {
				Outputs []struct {
					Shape []int64
					Data  []float32
				}
			}
			json.Unmarshal([]byte(b), &a)
			want := []float32{}
			for range clips {
				want = append(want, float32(6*i), 1)
			}
			if code != 200 || len(a.Outputs) != 1 || fmt.Sprint(a.Outputs[0].Data) != fmt.Sprint(want) {
				t.Errorf("request %d: %d %s, want data %v", i, code, b, want)
			}
		})
	}
	wg.Wait()
	if m := cur.Load().maxBatch(); m < 2 || m > 4 {
		t.Errorf("largest batch %d clips, want 2 to 4 (max batch 4)", m)
	}
}

// TestClassifyBatch: uploads read in one pass; a bad one is a 400 of its
// own and does not fail the others.
func TestClassifyBatch(t *testing.T) {
	hs, _, cur, _ := newTestServer(t, 2*time.Second)
	var wg sync.WaitGroup
	for i, body := range []string{"ok", "not a video", "ok"} {
		wg.Go(func() {
			code, b := post(t, hs.URL+"/v2/models/M/classify?topk=1", "video/mp4", []byte(body))
			if body == "ok" && (code != 200 || !strings.Contains(b, `"labels":[1],"scores":[0.75],"names":["b"]`)) {
				t.Errorf("upload %d: %d %s", i, code, b)
			}
			if body != "ok" && (code != 400 || !strings.Contains(b, "the uploaded video") || strings.Contains(b, cur.Load().dir)) {
				t.Errorf("bad upload: %d %s, want 400 naming the upload, not the server's path", code, b)
			}
		})
	}
	wg.Wait()
	if m := cur.Load().maxBatch(); m < 2 {
		t.Errorf("largest classify pass %d videos, want at least 2", m)
	}
	if ents, _ := os.ReadDir(cur.Load().dir); len(ents) != 0 {
		t.Errorf("uploads left behind: %v", ents)
	}
}

// TestRestart: a dead session turns the model not ready and is started
// again.
func TestRestart(t *testing.T) {
	hs, _, cur, starts := newTestServer(t, time.Millisecond)
	cur.Load().dead.Store(true)
	for end := time.Now().Add(time.Minute); starts.Load() < 2 && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
	}
	if starts.Load() != 2 {
		t.Fatalf("%d starts, want 2", starts.Load())
	}
	for end := time.Now().Add(time.Minute); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get(hs.URL + "/v2/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			return
		}
	}
	t.Fatal("not ready again after the restart")
}

// TestDeadline: a request the model does not answer within --timeout is
// a 504, and the server goes on answering.
func TestDeadline(t *testing.T) {
	hs, _, cur, _ := newTestServerOpts(t, Options{Window: time.Millisecond, Timeout: 300 * time.Millisecond})
	block := make(chan struct{})
	cur.Load().block = block
	body := []byte(`{"inputs":[{"name":"clip","shape":[1,2,3],"datatype":"FP32","data":[1,1,1,1,1,1]}]}`)
	if code, b := post(t, hs.URL+"/v2/models/M/infer", "", body); code != 504 || !strings.Contains(b, "no answer within 300ms") {
		t.Errorf("blocked model: %d %s, want 504", code, b)
	}
	close(block)
	if code, b := post(t, hs.URL+"/v2/models/M/infer", "", body); code != 200 {
		t.Errorf("after the deadline: %d %s", code, b)
	}
}
