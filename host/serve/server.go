package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zoo-ml/zoo/host/results"
)

// Server serves models over HTTP. Add the models, then serve Handler;
// Close after the HTTP server has drained.
type Server struct {
	opts     Options
	log      hclog.Logger
	met      *metrics
	workers  map[string]*worker
	order    []string
	stopping atomic.Bool
}

// New returns a server with no models; log receives one line per request.
func New(opts Options, log hclog.Logger) *Server {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Queue < 1 {
		opts.Queue = DefaultQueue
	}
	if opts.Decoders < 1 {
		opts.Decoders = DefaultDecoders
	}
	return &Server{opts: opts, log: log, met: newMetrics(), workers: map[string]*worker{}}
}

// Add serves a model whose session is already open; its labels (from
// Open) replace m.Labels when not empty.
func (s *Server) Add(m Model, sess Session, labels []string) error {
	if _, dup := s.workers[m.Name]; dup {
		return fmt.Errorf("model %s is listed twice", m.Name)
	}
	w, err := newWorker(m, sess, labels, s.opts, s.log, s.met)
	if err != nil {
		return err
	}
	s.workers[m.Name] = w
	s.order = append(s.order, m.Name)
	go w.loop()
	return nil
}

// Drain marks the server not ready (load balancers stop sending) while
// http.Server.Shutdown finishes the requests in flight.
func (s *Server) Drain() { s.stopping.Store(true) }

// Close stops the workers and the plugins; call it after the HTTP server
// has shut down, so no request is waiting.
func (s *Server) Close() {
	for _, n := range s.order {
		w := s.workers[n]
		close(w.stop)
		<-w.done
		if w.sess != nil {
			w.sess.Close()
		}
	}
}

// Handler is the server's HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern, endpoint string, f func(http.ResponseWriter, *http.Request) error) {
		mux.Handle(pattern, s.instrument(endpoint, f))
	}
	h("GET /v2/health/live", "live", func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]bool{"live": true})
	})
	h("GET /v2/health/ready", "ready", func(w http.ResponseWriter, r *http.Request) error {
		ready := s.ready()
		return writeJSON(w, readyCode(ready), map[string]bool{"ready": ready})
	})
	h("GET /v2", "server", func(w http.ResponseWriter, r *http.Request) error {
		return writeJSON(w, http.StatusOK, map[string]any{"name": "zoo", "version": s.opts.Version, "extensions": []string{"classify"}, "models": s.order})
	})
	h("GET /v2/models/{name}", "model", func(w http.ResponseWriter, r *http.Request) error {
		m, err := s.model(r)
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, m.metadata())
	})
	h("GET /v2/models/{name}/ready", "model_ready", func(w http.ResponseWriter, r *http.Request) error {
		m, err := s.model(r)
		if err != nil {
			return err
		}
		ready := s.modelReady(m)
		return writeJSON(w, readyCode(ready), map[string]any{"name": m.Name, "ready": ready})
	})
	h("POST /v2/models/{name}/infer", "infer", s.infer)
	h("POST /v2/models/{name}/classify", "classify", s.classify)
	metricsH := promhttp.HandlerFor(s.met.reg, promhttp.HandlerOpts{})
	h("GET /metrics", "metrics", func(w http.ResponseWriter, r *http.Request) error {
		metricsH.ServeHTTP(w, r)
		return nil
	})
	h("GET /{$}", "page", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, err := w.Write(page)
		return err
	})
	h("/", "other", func(w http.ResponseWriter, r *http.Request) error {
		return errorf(http.StatusNotFound, "no endpoint %s %s: see GET /v2 and docs/serve.md", r.Method, r.URL.Path)
	})
	return mux
}

func readyCode(ready bool) int {
	if ready {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code  int
	bytes int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// instrument bounds the body and the time of a request, turns its error
// into a JSON {"error"} answer, counts and times it and logs one line.
func (s *Server) instrument(endpoint string, f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		probe := endpoint == "metrics" || endpoint == "live" || endpoint == "ready"
		if !probe {
			s.met.inflight.Inc()
			defer s.met.inflight.Dec()
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		r.Body = http.MaxBytesReader(rw, r.Body, s.opts.MaxBody)
		w := &statusWriter{ResponseWriter: rw}
		err := f(w, r)
		if err != nil {
			code := http.StatusInternalServerError
			var se *statusError
			var mb *http.MaxBytesError
			switch {
			case errors.As(err, &se):
				code = se.code
			case errors.As(err, &mb):
				code = http.StatusRequestEntityTooLarge
				err = fmt.Errorf("the body is larger than the server's limit of %d bytes (zoo serve --max-body)", mb.Limit)
			}
			writeJSON(w, code, map[string]string{"error": err.Error()})
		}
		d := time.Since(start)
		model := s.observe(r.PathValue("name"), endpoint, strconv.Itoa(w.code), d)
		if probe {
			return // probes would drown the log
		}
		args := []any{"method", r.Method, "path", r.URL.Path, "endpoint", endpoint, "model", model,
			"code", w.code, "duration_ms", float64(d.Microseconds()) / 1000, "bytes_out", w.bytes, "remote", r.RemoteAddr}
		if err != nil {
			args = append(args, "error", err.Error())
		}
		s.log.Info("request", args...)
	})
}

// observe counts and times a request of HTTP or gRPC and returns its
// model label: "" for a name no model has, which would grow the series
// without bound.
func (s *Server) observe(model, endpoint, code string, d time.Duration) string {
	if _, ok := s.workers[model]; !ok {
		model = ""
	}
	s.met.requests.WithLabelValues(model, endpoint, code).Inc()
	s.met.latency.WithLabelValues(model, endpoint).Observe(d.Seconds())
	return model
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

// ready: every model's plugin is up and the server is not draining.
func (s *Server) ready() bool {
	ready := !s.stopping.Load()
	for _, w := range s.workers {
		ready = ready && w.ready.Load()
	}
	return ready
}

// modelReady: the model's plugin is up and the server is not draining.
func (s *Server) modelReady(m *worker) bool { return m.ready.Load() && !s.stopping.Load() }

func (s *Server) model(r *http.Request) (*worker, error) {
	return s.lookup(r.PathValue("name"), "")
}

// lookup finds a model by name and, when given, version.
func (s *Server) lookup(name, version string) (*worker, error) {
	w, ok := s.workers[name]
	if !ok {
		return nil, errorf(http.StatusNotFound, "unknown model %q: this server serves %s", name, strings.Join(s.order, ", "))
	}
	if version != "" && version != w.Version {
		return nil, errorf(http.StatusNotFound, "model %s has no version %q: it serves version %s", name, version, w.Version)
	}
	return w, nil
}

// usable is the model of the request when it can take work now.
func (s *Server) usable(r *http.Request) (*worker, error) {
	m, err := s.model(r)
	if err != nil {
		return nil, err
	}
	return m, s.takesWork(m)
}

// takesWork says why a model cannot take a request now, if it cannot.
func (s *Server) takesWork(m *worker) error {
	if s.stopping.Load() {
		return errorf(http.StatusServiceUnavailable, "zoo serve is shutting down")
	}
	if !m.ready.Load() {
		return m.errRestarting()
	}
	return nil
}

type v2Tensor struct {
	Name     string          `json:"name"`
	Shape    []int64         `json:"shape"`
	Datatype string          `json:"datatype"`
	Data     json.RawMessage `json:"data,omitempty"`
}

type v2Request struct {
	ID     string     `json:"id,omitempty"`
	Inputs []v2Tensor `json:"inputs"`
}

type v2Output struct {
	Name     string    `json:"name"`
	Shape    []int64   `json:"shape"`
	Datatype string    `json:"datatype"`
	Data     []float32 `json:"data"`
}

type v2Response struct {
	ModelName    string     `json:"model_name"`
	ModelVersion string     `json:"model_version,omitempty"`
	ID           string     `json:"id,omitempty"`
	Outputs      []v2Output `json:"outputs"`
}

// InputName and OutputName are the v2 tensor names of every zoo model.
const (
	InputName  = "clip"
	OutputName = "probabilities"
)

// inShape and outShape are the v2 input's and output's shapes, N open
// (-1); the model metadata of HTTP and gRPC.
func (w *worker) inShape() []int64  { return append([]int64{-1}, w.Input...) }
func (w *worker) outShape() []int64 { return []int64{-1, int64(len(w.names()))} }

func (w *worker) metadata() map[string]any {
	return map[string]any{
		"name": w.Name, "versions": []string{w.Version}, "platform": "zoo",
		"inputs":  []v2Tensor{{Name: InputName, Datatype: "FP32", Shape: w.inShape()}},
		"outputs": []v2Tensor{{Name: OutputName, Datatype: "FP32", Shape: w.outShape()}},
		"labels":  w.names(),
	}
}

func (s *Server) infer(rw http.ResponseWriter, r *http.Request) error {
	m, err := s.usable(r)
	if err != nil {
		return err
	}
	var req v2Request
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&req); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "empty body: send a v2 infer request, {\"inputs\": [{\"name\": %q, ...}]}", InputName)
		}
		return errorf(http.StatusBadRequest, "the body is not a v2 infer request: %v", err)
	}
	in, clips, err := m.checkInput(req.Inputs)
	if err != nil {
		return err
	}
	a := m.submit(&job{ctx: r.Context(), clips: clips, in: in})
	if a.err != nil {
		return a.err
	}
	return writeJSON(rw, http.StatusOK, v2Response{ModelName: m.Name, ModelVersion: m.Version, ID: req.ID,
		Outputs: []v2Output{{Name: OutputName, Shape: []int64{int64(clips), int64(a.k)}, Datatype: "FP32", Data: a.probs}}})
}

// checkHeader checks the inputs' names, datatype and shape (not their
// data) against the model's one input and returns how many values it
// holds; shared by HTTP and gRPC.
func (m *worker) checkHeader(ins []v2Tensor) (int64, error) {
	want := m.inShape()
	if len(ins) != 1 || ins[0].Name != InputName {
		names := make([]string, len(ins))
		for i, t := range ins {
			names[i] = strconv.Quote(t.Name)
		}
		return 0, errorf(http.StatusBadRequest, "inputs [%s]: model %s takes one input %q, FP32 %v", strings.Join(names, ", "), m.Name, InputName, want)
	}
	t := ins[0]
	if t.Datatype != "FP32" {
		return 0, errorf(http.StatusBadRequest, "input %q datatype %q: model %s takes FP32", t.Name, t.Datatype, m.Name)
	}
	// N is capped so that N times a clip cannot overflow; a body of
	// --max-body bytes holds far fewer clips anyway.
	if len(t.Shape) != len(want) || t.Shape[0] < 1 || t.Shape[0] > 1<<20 || !slices.Equal(t.Shape[1:], m.Input) {
		return 0, errorf(http.StatusBadRequest, "input %q shape %v: model %s takes %v (N >= 1 clips)", t.Name, t.Shape, m.Name, want)
	}
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n, nil
}

// checkInput checks the one input tensor against the model's and returns
// its data and how many clips it holds.
func (m *worker) checkInput(ins []v2Tensor) ([]float32, int, error) {
	n, err := m.checkHeader(ins)
	if err != nil {
		return nil, 0, err
	}
	t := ins[0]
	data, err := flatten(t.Data)
	if err != nil {
		return nil, 0, errorf(http.StatusBadRequest, "input %q data: %v", t.Name, err)
	}
	if int64(len(data)) != n {
		return nil, 0, errorf(http.StatusBadRequest, "input %q shape %v holds %d values, data has %d", t.Name, t.Shape, n, len(data))
	}
	return data, int(t.Shape[0]), nil
}

// flatten reads v2 tensor data: a flat array of numbers or nested arrays
// in row-major order.
func flatten(raw json.RawMessage) ([]float32, error) {
	var flat []float32
	if err := json.Unmarshal(raw, &flat); err == nil {
		return flat, nil
	}
	var nested any
	if err := json.Unmarshal(raw, &nested); err != nil {
		return nil, fmt.Errorf("not an array of numbers")
	}
	var walk func(v any) error
	walk = func(v any) error {
		switch v := v.(type) {
		case float64:
			if math.Abs(v) > math.MaxFloat32 {
				return fmt.Errorf("%g is beyond FP32", v)
			}
			flat = append(flat, float32(v))
		case []any:
			for _, e := range v {
				if err := walk(e); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("not an array of numbers (found %T)", v)
		}
		return nil
	}
	if err := walk(nested); err != nil {
		return nil, err
	}
	return flat, nil
}

// videoExts names an upload by its Content-Type; ffmpeg probes the
// content, so the name only has to be one the reader lists.
var videoExts = map[string]string{
	"video/mp4": ".mp4", "video/x-msvideo": ".avi", "video/avi": ".avi", "video/msvideo": ".avi",
	"video/webm": ".webm", "video/quicktime": ".mov", "video/x-matroska": ".mkv",
}

// ClassifyResult is the classify endpoint's answer: the top-k classes.
type ClassifyResult struct {
	ModelName string    `json:"model_name"`
	Labels    []int     `json:"labels"`
	Scores    []float32 `json:"scores"`
	Names     []string  `json:"names"`
	// Frames (with ?frames=1, from a plugin with Decode) are the frames
	// the model saw, as PNGs.
	Frames []Frame `json:"frames,omitempty"`
}

func (s *Server) classify(rw http.ResponseWriter, r *http.Request) error {
	m, err := s.usable(r)
	if err != nil {
		return err
	}
	if m.VideoDir == "" {
		return errorf(http.StatusNotImplemented, "model %s does not read videos: use POST /v2/models/%s/infer", m.Name, m.Name)
	}
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(strings.HasPrefix(ct, "video/") || ct == "application/octet-stream") {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q: send the video's bytes as video/* (e.g. video/mp4)", r.Header.Get("Content-Type"))
	}
	topk := 5
	if q := r.URL.Query().Get("topk"); q != "" {
		if topk, err = strconv.Atoi(q); err != nil || topk < 1 {
			return errorf(http.StatusBadRequest, "topk=%s: want a whole number of at least 1", q)
		}
	}
	frames := false
	if q := r.URL.Query().Get("frames"); q != "" {
		if frames, err = strconv.ParseBool(q); err != nil {
			return errorf(http.StatusBadRequest, "frames=%s: want 1 or 0", q)
		}
	}
	ext := videoExts[ct]
	if ext == "" {
		ext = ".mp4"
	}
	file := filepath.Join(m.stage, strconv.FormatInt(m.seq.Add(1), 10)+ext)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n == 0 {
		os.Remove(file)
		if n == 0 && err == nil {
			return errorf(http.StatusBadRequest, "empty body: send a video file's bytes")
		}
		return err
	}
	defer os.Remove(file) // still staged when the request gave up first
	j := &job{ctx: r.Context(), video: true, clips: 1, file: file}
	m.decoding.Add(1)
	d, decoded, err := m.decode(r.Context(), file)
	if err != nil {
		m.decoding.Add(-1)
		return err
	}
	if decoded {
		os.Remove(file)
		j = &job{ctx: r.Context(), clips: 1, views: int(d.Input.Shape[0]), in: d.Input.Data, decoded: true}
	} else {
		m.decoding.Add(-1) // an infer pass reads it: queued at once
	}
	a := m.submit(j)
	if a.err != nil {
		return a.err
	}
	idx, vals := results.TopK(a.probs, topk)
	names := make([]string, len(idx))
	labels := m.names()
	for i, j := range idx {
		if j < len(labels) {
			names[i] = labels[j]
		}
	}
	res := ClassifyResult{ModelName: m.Name, Labels: idx, Scores: vals, Names: names}
	if frames && decoded {
		if res.Frames, err = sampledFrames(d); err != nil {
			return err
		}
	}
	return writeJSON(rw, http.StatusOK, res)
}
