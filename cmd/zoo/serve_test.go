package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/internal/shareddata"
	"github.com/zoo-ml/zoo/video"
)

// server is a running `zoo serve`.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	errb bytes.Buffer
	// exited is closed when zoo serve has exited, with err its Wait's.
	exited chan struct{}
	err    error
}

func (s *server) stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errb.String()
}

// startServe starts `zoo serve ARGS --addr 127.0.0.1:0` and waits for the
// line with its address; the cleanup stops it (SIGTERM, then SIGKILL).
func startServe(t *testing.T, args ...string) *server {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "zoo"), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "ZOO_HOME="+t.TempDir(), "ZOO_PLUGIN_PATH=", "ZOO_WEIGHTS_DIR="+t.TempDir(), "ZOO_OFFLINE=1")
	cmd.Dir = t.TempDir()
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		re := regexp.MustCompile(`on (http://\S+) `)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.errb.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	go func() {
		<-done
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
			return
		default:
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-s.exited
		}
	})
	select {
	case s.url = <-addr:
	case <-s.exited:
		t.Fatalf("zoo serve exited: %v\n%s", s.err, s.stderr())
	case <-time.After(120 * time.Second):
		t.Fatalf("zoo serve did not start in 2 minutes:\n%s", s.stderr())
	}
	return s
}

// call sends a request and returns the status and the body.
func (s *server) call(method, path, ctype string, body []byte) (int, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v\n%s", method, path, err, s.stderr())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metric is the value of one sample line of /metrics (0 when absent).
func (s *server) metric(line string) float64 {
	s.t.Helper()
	_, b := s.call("GET", "/metrics", "", nil)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, line+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return 0
}

// eventually polls cond for up to two minutes (generous on a loaded
// machine; the only bound is that it happens at all).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s did not happen within 2 minutes", what)
}

const serveConfig = `[MODEL]
name = "TSM"
num_classes = 4
num_layers = 18
base_width = 4
seg_num = 8

[INFER]
short_size = 40
target_size = 32
batch_size = 4
`

// servedTSM trains a one-epoch TSM-ResNet-18 of width 4 on the built-in
// dataset and writes a config that reads real videos with it; it returns
// the config and the checkpoint.
func servedTSM(t *testing.T) (cfg, ckpt string) {
	t.Helper()
	save := t.TempDir()
	r := zoo(t, nil, "run", "TSM", "train", "--epoch", "1", "--save_dir", save, "--set", "MODEL.base_width=4",
		"--set", "SYNTHETIC.train_videos=16", "--set", "SYNTHETIC.valid_videos=4")
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	cfg = filepath.Join(t.TempDir(), "small.txt")
	if err := os.WriteFile(cfg, []byte(serveConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, filepath.Join(save, "TSM_epoch0")
}

// runInfer is `zoo run TSM infer --video_path` on one video, all classes.
func runInfer(t *testing.T, cfg, ckpt, path string) results.InferRecord {
	t.Helper()
	save := t.TempDir()
	r := zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", ckpt, "--video_path", path, "--infer_topk", "4", "--save_dir", save)
	var recs []results.InferRecord
	readJSON(t, filepath.Join(save, "TSM_infer_result.json"), &recs)
	if r.code != 0 || len(recs) != 1 {
		t.Fatalf("zoo run infer %s: %d %+v\n%s", path, r.code, recs, r.stderr)
	}
	return recs[0]
}

// clipOf reads a video as TSM's infer reader does with serveConfig:
// the tensor a client of the v2 infer endpoint would send.
func clipOf(t *testing.T, path string) []float32 {
	t.Helper()
	r, err := video.NewReader(video.Config{Mode: video.Infer, SegNum: 8, SegLen: 1, ShortSize: 40, TargetSize: 32,
		Mean: [3]float32{0.485, 0.456, 0.406}, Std: [3]float32{0.229, 0.224, 0.225}, BatchSize: 1, Workers: 1, BufSize: 1},
		[]video.Item{{Path: path, Label: video.NoLabel, Where: path}})
	if err != nil {
		t.Fatal(err)
	}
	e := r.Epoch(context.Background(), 0)
	defer e.Close()
	b, err := e.Next(context.Background())
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b.Data
}

func sameScores(t *testing.T, what string, got, want []float32, gotLabels, wantLabels []int) {
	t.Helper()
	if fmt.Sprint(gotLabels) != fmt.Sprint(wantLabels) || len(got) != len(want) {
		t.Errorf("%s: labels %v scores %v, zoo run infer %v %v", what, gotLabels, got, wantLabels, want)
		return
	}
	for i := range got {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Errorf("%s: scores %v, zoo run infer %v", what, got, want)
			return
		}
	}
}

type classifyAnswer struct {
	Labels []int     `json:"labels"`
	Scores []float32 `json:"scores"`
	Names  []string  `json:"names"`
	Error  string    `json:"error"`
}

type inferAnswer struct {
	Outputs []struct {
		Name  string    `json:"name"`
		Shape []int64   `json:"shape"`
		Data  []float32 `json:"data"`
	} `json:"outputs"`
	Error string `json:"error"`
}

func inferBody(t *testing.T, shape []int64, datatype string, data []float32) []byte {
	b, err := json.Marshal(map[string]any{"inputs": []map[string]any{{"name": "clip", "shape": shape, "datatype": datatype, "data": data}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestServe starts `zoo serve` on a tiny trained TSM and calls every
// endpoint over real HTTP: the numbers of classify (the plugin's reader)
// and of infer (a tensor read here as the reader reads it) against `zoo
// run infer`, concurrent requests batched, bad inputs answered 4xx while
// the server stays ready, a killed plugin restarted, and SIGTERM draining
// a request in flight before exit 0.
func TestServe(t *testing.T) {
	cfg, ckpt := servedTSM(t)
	videos := filepath.Join(shareddata.Dir(t), "videos")
	names := []string{"test.mp4", "archery.avi", "arm_wrestling.mp4"}
	want := map[string]results.InferRecord{}
	for _, n := range names {
		want[n] = runInfer(t, cfg, ckpt, filepath.Join(videos, n))
	}
	// A long window makes concurrent requests meet in one batch however
	// slowly the machine schedules them; a batch of 4 does not wait.
	s := startServe(t, "TSM", "--config", cfg, "--weights", ckpt, "--window", "2s", "--max-body", "2000000")

	for _, c := range []struct{ path, want string }{
		{"/v2/health/live", `{"live":true}`},
		{"/v2/health/ready", `{"ready":true}`},
		{"/v2/models/TSM/ready", `{"name":"TSM","ready":true}`},
		{"/v2/models/TSM", `"inputs":[{"name":"clip","shape":[-1,8,3,32,32],"datatype":"FP32"}]`},
		{"/v2", `"models":["TSM"]`},
		{"/", `<script>`},
	} {
		code, b := s.call("GET", c.path, "", nil)
		if code != 200 || !strings.Contains(string(b), c.want) {
			t.Errorf("GET %s: %d %s, want 200 with %s", c.path, code, b, c.want)
		}
	}

	// Classify: the three videos at once, one pass of the plugin's reader.
	var wg sync.WaitGroup
	got := make([]classifyAnswer, len(names))
	for i, n := range names {
		body, err := os.ReadFile(filepath.Join(videos, n))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctype := "video/mp4"
			if strings.HasSuffix(n, ".avi") {
				ctype = "video/x-msvideo"
			}
			code, b := s.call("POST", "/v2/models/TSM/classify?topk=4", ctype, body)
			if err := json.Unmarshal(b, &got[i]); err != nil || code != 200 {
				t.Errorf("classify %s: %d %s", n, code, b)
			}
		}()
	}
	wg.Wait()
	for i, n := range names {
		sameScores(t, "classify "+n, got[i].Scores, want[n].Scores, got[i].Labels, want[n].Labels)
		if fmt.Sprint(got[i].Names) != fmt.Sprint(want[n].Names) {
			t.Errorf("classify %s: names %v, zoo run infer %v", n, got[i].Names, want[n].Names)
		}
	}
	var top classifyAnswer
	if code, b := s.call("POST", "/v2/models/TSM/classify", "video/mp4", mustRead(t, filepath.Join(videos, "test.mp4"))); json.Unmarshal(b, &top) != nil || code != 200 || len(top.Labels) != 4 {
		t.Errorf("classify with the default topk (5, of 4 classes): %d %s", code, b)
	}

	// Infer: the same clips as tensors, concurrently, one clip a request.
	clips := map[string][]float32{}
	for _, n := range names {
		clips[n] = clipOf(t, filepath.Join(videos, n))
	}
	for round := 0; round < 2; round++ {
		for _, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, b := s.call("POST", "/v2/models/TSM/infer", "application/json", inferBody(t, []int64{1, 8, 3, 32, 32}, "FP32", clips[n]))
				var a inferAnswer
				if err := json.Unmarshal(b, &a); err != nil || code != 200 || len(a.Outputs) != 1 || fmt.Sprint(a.Outputs[0].Shape) != "[1 4]" {
					t.Errorf("infer %s: %d %s", n, code, b)
					return
				}
				idx, vals := results.TopK(a.Outputs[0].Data, 4)
				sameScores(t, "infer "+n, vals, want[n].Scores, idx, want[n].Labels)
			}()
		}
	}
	wg.Wait()
	// Two clips in one request come back as two rows.
	two := append(append([]float32(nil), clips["archery.avi"]...), clips["test.mp4"]...)
	if code, b := s.call("POST", "/v2/models/TSM/infer", "", inferBody(t, []int64{2, 8, 3, 32, 32}, "FP32", two)); code != 200 {
		t.Errorf("infer of two clips: %d %s", code, b)
	} else {
		var a inferAnswer
		json.Unmarshal(b, &a)
		idx, vals := results.TopK(a.Outputs[0].Data[4:], 4)
		sameScores(t, "infer of two clips, row 2", vals, want["test.mp4"].Scores, idx, want["test.mp4"].Labels)
	}
	batches := s.metric(`zoo_inference_batch_size_count{model="TSM"}`)
	single := s.metric(`zoo_inference_batch_size_bucket{model="TSM",le="1"}`)
	if !(batches > single) {
		t.Errorf("no batch of more than one clip: %v batches, %v of one clip", batches, single)
	}
	if n := s.metric(`zoo_requests_total{code="200",endpoint="infer",model="TSM"}`); n != 7 {
		t.Errorf("zoo_requests_total of infer 200: %v, want 7", n)
	}

	// Bad input: 4xx with a JSON error naming the problem.
	for _, c := range []struct {
		name, path, ctype string
		body              []byte
		code              int
		want              string
	}{
		{"not a video", "/v2/models/TSM/classify", "video/mp4", []byte("this is not a video\n"), 400, "not a video"},
		{"empty body", "/v2/models/TSM/classify", "video/mp4", nil, 400, "empty body"},
		{"not video/*", "/v2/models/TSM/classify", "text/plain", []byte("x"), 415, "Content-Type"},
		{"topk", "/v2/models/TSM/classify?topk=0", "video/mp4", []byte("x"), 400, "topk=0"},
		{"unknown model", "/v2/models/C3D/classify", "video/mp4", []byte("x"), 404, `unknown model \"C3D\"`},
		{"too large", "/v2/models/TSM/classify", "video/mp4", make([]byte, 2100000), 413, "larger than"},
		{"wrong shape", "/v2/models/TSM/infer", "", inferBody(t, []int64{1, 8, 3, 32, 16}, "FP32", make([]float32, 8*3*32*16)), 400, "shape [1 8 3 32 16]"},
		{"wrong dtype", "/v2/models/TSM/infer", "", inferBody(t, []int64{1, 8, 3, 32, 32}, "INT64", clips["test.mp4"]), 400, `datatype \"INT64\"`},
		{"short data", "/v2/models/TSM/infer", "", inferBody(t, []int64{1, 8, 3, 32, 32}, "FP32", []float32{1, 2}), 400, "data has 2"},
		{"wrong input name", "/v2/models/TSM/infer", "", []byte(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`), 400, `takes one input \"clip\"`},
		{"not json", "/v2/models/TSM/infer", "", []byte("{"), 400, "not a v2 infer request"},
		{"empty infer", "/v2/models/TSM/infer", "", nil, 400, "empty body"},
		{"unknown endpoint", "/v2/models/TSM/explain", "", nil, 404, "no endpoint"},
	} {
		code, b := s.call("POST", c.path, c.ctype, c.body)
		var e struct{ Error string }
		if code != c.code || json.Unmarshal(b, &e) != nil || !strings.Contains(string(b), c.want) || e.Error == "" || strings.Contains(e.Error, "\n") {
			t.Errorf("%s: %d %s, want %d with a one-line {\"error\"} containing %s", c.name, code, b, c.code, c.want)
		}
	}
	if code, b := s.call("GET", "/v2/health/ready", "", nil); code != 200 {
		t.Errorf("ready after bad input: %d %s", code, b)
	}

	// A plugin that dies is restarted and answers as before.
	pid := childPID(t, s.cmd.Process.Pid, "zoo-plugin-tsm")
	syscall.Kill(pid, syscall.SIGKILL)
	eventually(t, "the plugin's restart", func() bool {
		return s.metric(`zoo_plugin_restarts_total{model="TSM"}`) == 1 && s.metric(`zoo_model_ready{model="TSM"}`) == 1
	})
	if p := childPID(t, s.cmd.Process.Pid, "zoo-plugin-tsm"); p == pid {
		t.Errorf("plugin pid %d unchanged", p)
	}
	var after classifyAnswer
	code, b := s.call("POST", "/v2/models/TSM/classify?topk=4", "video/mp4", mustRead(t, filepath.Join(videos, "test.mp4")))
	if json.Unmarshal(b, &after); code != 200 {
		t.Errorf("classify after the restart: %d %s", code, b)
	}
	sameScores(t, "classify after the restart", after.Scores, want["test.mp4"].Scores, after.Labels, want["test.mp4"].Labels)

	// SIGTERM with a request in flight (held by the 2 s window): the
	// request is answered, zoo exits 0 and its plugin is gone.
	plugin := childPID(t, s.cmd.Process.Pid, "zoo-plugin-tsm")
	answered := make(chan int, 1)
	go func() {
		code, _ := s.call("POST", "/v2/models/TSM/infer", "", inferBody(t, []int64{1, 8, 3, 32, 32}, "FP32", clips["test.mp4"]))
		answered <- code
	}()
	eventually(t, "a request in flight", func() bool { return s.metric("zoo_requests_in_flight") == 1 })
	s.cmd.Process.Signal(syscall.SIGTERM)
	if code := <-answered; code != 200 {
		t.Errorf("the request in flight at SIGTERM: %d", code)
	}
	select {
	case <-s.exited:
		if s.err != nil {
			t.Errorf("zoo serve after SIGTERM: %v\n%s", s.err, s.stderr())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("zoo serve still running 2 minutes after SIGTERM:\n%s", s.stderr())
	}
	if syscall.Kill(plugin, 0) == nil {
		t.Errorf("plugin %d still running after zoo serve exited", plugin)
	}
	// Request logs: one JSON line per request.
	if !strings.Contains(s.stderr(), `"@message":"request"`) || !strings.Contains(s.stderr(), `"endpoint":"classify"`) {
		t.Errorf("no structured request log:\n%s", s.stderr())
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// childPID finds the child of parent whose command is name (Linux /proc).
func childPID(t *testing.T, parent int, name string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "("+name) {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == strconv.Itoa(parent) {
			return pid
		}
	}
	t.Fatalf("no %s child of %d", name, parent)
	return 0
}

// TestServeUsage: bad command lines are one-line errors before anything
// starts.
func TestServeUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"serve"}, 2, "at least one model"},
		{[]string{"serve", "TSM", "--addr", "8080"}, 2, `--addr "8080"`},
		{[]string{"serve", "TSM", "--weights", "/nonexistent"}, 2, "--weights /nonexistent"},
		{[]string{"serve", "TSM", "--max-batch", "0"}, 2, "--max-batch 0"},
		{[]string{"serve", "C3D"}, 1, "C3D"},
		{[]string{"serve", "TSM", "--save_dir", "empty"}, 1, "no TSM checkpoint"},
	} {
		oneLineError(t, zoo(t, nil, c.args...), c.code, c.want)
	}
}

// TestServeDemoPage opens the demo page in headless Chromium (Debian's
// chromium, installed by scripts/deps.sh) as a user would: the page lists
// the models, classifies a video (given as ?video=URL, since a headless
// browser cannot pick a file) and draws the top classes as bars. The test
// reads the DOM for the names and scores and checks a screenshot for the
// bars.
func TestServeDemoPage(t *testing.T) {
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: install it (Debian: apt-get install chromium; scripts/deps.sh does)")
	}
	cfg, ckpt := servedTSM(t)
	videos := filepath.Join(shareddata.Dir(t), "videos")
	want := runInfer(t, cfg, ckpt, filepath.Join(videos, "test.mp4"))
	s := startServe(t, "TSM", "--config", cfg, "--weights", ckpt)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		http.ServeFile(w, r, filepath.Join(videos, filepath.Base(r.URL.Path)))
	}))
	defer files.Close()
	page := s.url + "/?video=" + files.URL + "/test.mp4"
	chrome := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir(),
			"--virtual-time-budget=60000", "--window-size=800,600"}, append(args, page)...)
		out, err := exec.CommandContext(ctx, browser, args...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return string(out)
	}

	dom := chrome("--dump-dom")
	if !strings.Contains(dom, "<option>TSM</option>") {
		t.Errorf("the page did not list the models:\n%s", dom)
	}
	// The frames the model saw, with their indices: those the classify
	// endpoint answers for the same video.
	var ref struct {
		Frames []struct {
			Index int64 `json:"index"`
		} `json:"frames"`
	}
	if code, b := s.call("POST", "/v2/models/TSM/classify?frames=1", "video/mp4", mustRead(t, filepath.Join(videos, "test.mp4"))); code != 200 || json.Unmarshal(b, &ref) != nil || len(ref.Frames) != 8 {
		t.Fatalf("classify?frames=1: %d %s, want 8 frames", code, b)
	}
	frames := regexp.MustCompile(`<figure class="frame"><img src="data:image/png;base64,[A-Za-z0-9+/=]+" alt="frame (\d+)"><figcaption>frame (\d+)</figcaption></figure>`).FindAllStringSubmatch(dom, -1)
	if len(frames) != len(ref.Frames) {
		t.Errorf("%d frames on the page, want %d:\n%s", len(frames), len(ref.Frames), dom)
	}
	for i, f := range frames {
		if i < len(ref.Frames) && (f[1] != strconv.FormatInt(ref.Frames[i].Index, 10) || f[2] != f[1]) {
			t.Errorf("frame %d: index %s (caption %s), classify says %d", i, f[1], f[2], ref.Frames[i].Index)
		}
	}
	bars := regexp.MustCompile(`<span class="name">([^<]*)</span><span class="fill"[^>]*></span><span class="score">([^<]*)</span>`).FindAllStringSubmatch(dom, -1)
	if len(bars) != len(want.Names) {
		t.Fatalf("%d bars, want %d (zoo run infer: %v):\n%s", len(bars), len(want.Names), want.Names, dom)
	}
	for i, b := range bars {
		if b[1] != want.Names[i] || b[2] != strconv.FormatFloat(float64(want.Scores[i]), 'f', 4, 32) {
			t.Errorf("bar %d: %s %s, zoo run infer %s %.4f", i, b[1], b[2], want.Names[i], want.Scores[i])
		}
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	chrome("--screenshot=" + shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	// The bars are #3a7bd5, as wide as 300 px times the score and about
	// 18 px high: count their pixels against the scores.
	blue := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near8(r, 0x3a) && near8(g, 0x7b) && near8(b, 0xd5) {
				blue++
			}
		}
	}
	width := 0.0
	for _, sc := range want.Scores {
		width += max(1, math.Round(float64(sc)*300))
	}
	if lo := width * 10; float64(blue) < lo {
		t.Errorf("screenshot: %d bar pixels, want at least %.0f (bars of %.0f px in all)", blue, lo, width)
	}
	checkFrameBoxes(t, img, len(frames))
}

// checkFrameBoxes finds the demo page's frames in a screenshot by their
// magenta borders (#ff00ff): n boxes, each with a picture inside (not
// blank: most of it differs from the page's white).
func checkFrameBoxes(t *testing.T, img image.Image, n int) {
	t.Helper()
	b := img.Bounds()
	magenta := func(x, y int) bool {
		r, g, bl, _ := img.At(x, y).RGBA()
		return near8(r, 0xff) && near8(g, 0) && near8(bl, 0xff)
	}
	seen := map[image.Point]bool{}
	var boxes []image.Rectangle
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if seen[image.Pt(x, y)] || !magenta(x, y) {
				continue
			}
			// The border's connected pixels and their bounding box.
			box := image.Rect(x, y, x+1, y+1)
			stack := []image.Point{{x, y}}
			seen[image.Pt(x, y)] = true
			for len(stack) > 0 {
				p := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				box = box.Union(image.Rect(p.X, p.Y, p.X+1, p.Y+1))
				for _, d := range []image.Point{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
					q := p.Add(d)
					if q.In(b) && !seen[q] && magenta(q.X, q.Y) {
						seen[q] = true
						stack = append(stack, q)
					}
				}
			}
			if box.Dx() > 20 && box.Dy() > 20 {
				boxes = append(boxes, box)
			}
		}
	}
	if len(boxes) != n {
		t.Fatalf("screenshot: %d framed pictures, want %d (the sampled frames)", len(boxes), n)
	}
	for i, box := range boxes {
		in := box.Inset(4)
		filled := 0
		for y := in.Min.Y; y < in.Max.Y; y++ {
			for x := in.Min.X; x < in.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				if !(near8(r, 0xff) && near8(g, 0xff) && near8(bl, 0xff)) {
					filled++
				}
			}
		}
		if area := in.Dx() * in.Dy(); filled < area/2 {
			t.Errorf("screenshot: frame %d at %v is blank (%d of %d pixels not white)", i, box, filled, area)
		}
	}
}

func near8(v uint32, want uint8) bool {
	d := int(v>>8) - int(want)
	return d >= -8 && d <= 8
}

// TestServeResNet: `zoo serve ResNet` answers the v2 infer endpoint
// (input [N, 3, H, W]) with the numbers `zoo run ResNet infer` gives for
// the same images. The images are 32x32 PNGs at short_size = target_size
// = 32, so the reader's resize_short and centre crop leave them as they
// are and the tensor is their pixels normalised (video.Normalize, as the
// reader does).
func TestServeResNet(t *testing.T) {
	save := t.TempDir()
	r := zoo(t, nil, "run", "ResNet", "train", "--epoch", "1", "--save_dir", save, "--set", "MODEL.base_width=4",
		"--set", "SYNTHETIC.train_images=64", "--set", "SYNTHETIC.valid_images=32")
	if r.code != 0 {
		t.Fatalf("train: %d\n%s", r.code, r.stderr)
	}
	ckpt := filepath.Join(save, "ResNet_epoch0")
	cfg := filepath.Join(t.TempDir(), "small.txt")
	if err := os.WriteFile(cfg, []byte("[MODEL]\nnum_classes = 4\nnum_layers = 18\nbase_width = 4\n\n[INFER]\nshort_size = 32\ntarget_size = 32\nbatch_size = 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	names := []string{"a.png", "b.png", "c.png"}
	tensors := map[string][]float32{}
	for i, n := range names {
		img := image.NewRGBA(image.Rect(0, 0, 32, 32))
		frame := video.NewImage(32, 32)
		for y := 0; y < 32; y++ {
			for x := 0; x < 32; x++ {
				c := color.RGBA{uint8(x*7 + y*13 + i*50), uint8(x*x + 3*y*i), uint8((x^y)*9 + i*30), 255}
				if (x+2*i)/4%2 == 0 {
					c.R, c.G = c.G, c.R
				}
				img.Set(x, y, c)
				copy(frame.Pix[y*frame.Stride+3*x:], []uint8{c.R, c.G, c.B})
			}
		}
		f, err := os.Create(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		f.Close()
		tensors[n] = make([]float32, 3*32*32)
		video.Normalize(tensors[n], []*video.Image{frame}, [3]float32{0.485, 0.456, 0.406}, [3]float32{0.229, 0.224, 0.225}, false)
	}
	out := t.TempDir()
	r = zoo(t, nil, "run", "ResNet", "infer", "--config", cfg, "--weights", ckpt, "--image_path", dir, "--save_dir", out, "--infer_topk", "4")
	var recs []results.InferRecord
	readJSON(t, filepath.Join(out, "ResNet_infer_result.json"), &recs)
	if r.code != 0 || len(recs) != len(names) {
		t.Fatalf("zoo run ResNet infer: %d %+v\n%s", r.code, recs, r.stderr)
	}
	want := map[string]results.InferRecord{}
	for _, rec := range recs {
		want[filepath.Base(rec.VideoID)] = rec
	}

	s := startServe(t, "ResNet", "--config", cfg, "--weights", ckpt)
	if code, b := s.call("GET", "/v2/models/ResNet", "", nil); code != 200 || !strings.Contains(string(b), `"shape":[-1,3,32,32]`) {
		t.Errorf("GET /v2/models/ResNet: %d %s, want the input [-1,3,32,32]", code, b)
	}
	// One image a request, then all three in one (a graph batch of 2 and
	// one padded).
	var all []float32
	for _, n := range names {
		all = append(all, tensors[n]...)
		code, b := s.call("POST", "/v2/models/ResNet/infer", "application/json", inferBody(t, []int64{1, 3, 32, 32}, "FP32", tensors[n]))
		var a inferAnswer
		if err := json.Unmarshal(b, &a); err != nil || code != 200 || len(a.Outputs) != 1 || fmt.Sprint(a.Outputs[0].Shape) != "[1 4]" {
			t.Fatalf("infer %s: %d %s", n, code, b)
		}
		idx, vals := results.TopK(a.Outputs[0].Data, 4)
		sameScores(t, "infer "+n, vals, want[n].Scores, idx, want[n].Labels)
	}
	code, b := s.call("POST", "/v2/models/ResNet/infer", "application/json", inferBody(t, []int64{3, 3, 32, 32}, "FP32", all))
	var a inferAnswer
	if err := json.Unmarshal(b, &a); err != nil || code != 200 || len(a.Outputs) != 1 || fmt.Sprint(a.Outputs[0].Shape) != "[3 4]" {
		t.Fatalf("infer of three images: %d %s", code, b)
	}
	for i, n := range names {
		idx, vals := results.TopK(a.Outputs[0].Data[4*i:4*i+4], 4)
		sameScores(t, fmt.Sprintf("infer of three images, row %d", i+1), vals, want[n].Scores, idx, want[n].Labels)
	}
	// A video model's shape is a 400 naming the image shape.
	code, b = s.call("POST", "/v2/models/ResNet/infer", "", inferBody(t, []int64{1, 1, 3, 32, 32}, "FP32", tensors["a.png"]))
	if code != 400 || !strings.Contains(string(b), "[-1 3 32 32]") {
		t.Errorf("infer of a clip shape: %d %s, want 400 naming [-1 3 32 32]", code, b)
	}
}
