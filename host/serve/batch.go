package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/sdk"
)

// A job is one request's work, waiting in a model's queue.
type job struct {
	ctx   context.Context
	video bool
	clips int
	in    []float32 // tensor: clips of the model's Input shape
	file  string    // video: the upload, staged outside VideoDir
	done  chan answer
}

// answer is a job's result: the probabilities of its clips, row after row.
type answer struct {
	probs []float32
	k     int
	err   error
}

// statusError is an error with the HTTP status it answers.
type statusError struct {
	code int
	msg  string
}

func (e *statusError) Error() string { return e.msg }

func errorf(code int, format string, a ...any) error {
	return &statusError{code: code, msg: fmt.Sprintf(format, a...)}
}

// worker owns one model's session: it is the only goroutine that calls the
// plugin, so batches never overlap (the graph is built once, for one
// batch), and it restarts the plugin when it dies.
type worker struct {
	Model
	opts   Options
	log    hclog.Logger
	met    *metrics
	queue  chan *job
	ready  atomic.Bool
	sess   Session
	labels atomic.Pointer[[]string]
	stage  string // uploads are written here, then moved into VideoDir
	seq    atomic.Int64
	stop   chan struct{}
	done   chan struct{}
}

func newWorker(m Model, sess Session, labels []string, opts Options, log hclog.Logger, met *metrics) (*worker, error) {
	m.MaxBatch = max(m.MaxBatch, 1)
	w := &worker{Model: m, opts: opts, log: log.Named(m.Name), met: met, queue: make(chan *job, opts.Queue),
		sess: sess, stop: make(chan struct{}), done: make(chan struct{})}
	w.setLabels(labels)
	if m.VideoDir != "" {
		w.stage = filepath.Join(filepath.Dir(m.VideoDir), "incoming")
		if err := os.MkdirAll(w.stage, 0o700); err != nil {
			return nil, err
		}
	}
	w.ready.Store(true)
	met.ready.WithLabelValues(m.Name).Set(1)
	return w, nil
}

func (w *worker) setLabels(l []string) {
	if len(l) == 0 {
		l = w.Model.Labels
	}
	w.labels.Store(&l)
}

func (w *worker) names() []string { return *w.labels.Load() }

// submit queues a job and waits for its answer or its deadline.
func (w *worker) submit(j *job) answer {
	j.done = make(chan answer, 1)
	select {
	case w.queue <- j:
	default:
		return answer{err: errorf(http.StatusServiceUnavailable, "model %s: %d requests already queued; retry later", w.Name, cap(w.queue))}
	}
	w.met.queue.WithLabelValues(w.Name).Set(float64(len(w.queue)))
	select {
	case a := <-j.done:
		return a
	case <-j.ctx.Done():
		return answer{err: errorf(http.StatusGatewayTimeout, "model %s: no answer within %v", w.Name, w.opts.Timeout)}
	}
}

func (w *worker) loop() {
	defer close(w.done)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var held *job
	for {
		first := held
		held = nil
		if first == nil {
			select {
			case <-w.stop:
				w.failQueued()
				return
			case <-tick.C:
				if w.sess != nil && w.sess.Exited() {
					w.restart(errors.New("the plugin exited"))
				}
				continue
			case first = <-w.queue:
			}
		}
		batch, clips := []*job{first}, first.clips
		timer := time.NewTimer(w.opts.Window)
	collect:
		for clips < w.MaxBatch {
			select {
			case j := <-w.queue:
				if j.video != first.video || clips+j.clips > w.MaxBatch {
					held = j
					break collect
				}
				batch, clips = append(batch, j), clips+j.clips
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		w.met.queue.WithLabelValues(w.Name).Set(float64(len(w.queue)))
		w.run(batch)
	}
}

func (w *worker) failQueued() {
	for {
		select {
		case j := <-w.queue:
			j.reply(answer{err: errorf(http.StatusServiceUnavailable, "zoo serve is shutting down")})
		default:
			return
		}
	}
}

// run answers a batch with one plugin call.
func (w *worker) run(batch []*job) {
	live := batch[:0]
	for _, j := range batch {
		if j.ctx.Err() == nil {
			live = append(live, j)
		} else if j.file != "" {
			os.Remove(j.file)
		}
	}
	if len(live) == 0 {
		return
	}
	if w.sess == nil || !w.ready.Load() {
		w.failAll(live, errorf(http.StatusServiceUnavailable, "model %s is restarting; retry later", w.Name))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.Timeout)
	defer cancel()
	clips := 0
	for _, j := range live {
		clips += j.clips
	}
	w.met.batch.WithLabelValues(w.Name).Observe(float64(clips))
	var err error
	if live[0].video {
		err = w.classify(ctx, live)
	} else {
		err = w.infer(ctx, live, clips)
	}
	if err == nil {
		return
	}
	if w.sess.Exited() {
		w.failAll(live, errorf(http.StatusServiceUnavailable, "model %s: the plugin died (%v); it is being restarted, retry later", w.Name, err))
		w.restart(err)
		return
	}
	w.failAll(live, pluginError(w.Name, err))
}

func (w *worker) failAll(jobs []*job, err error) {
	for _, j := range jobs {
		j.reply(answer{err: err})
	}
}

// reply answers a job; the first answer wins (a pass that fails half way
// has answered some of its jobs already).
func (j *job) reply(a answer) {
	select {
	case j.done <- a:
	default:
	}
}

// pluginError turns a plugin's status into the HTTP one.
func pluginError(model string, err error) error {
	code := http.StatusInternalServerError
	switch sdk.CodeOf(err) {
	case sdk.CodeInvalidArgument, sdk.CodeFailedPrecondition:
		code = http.StatusBadRequest
	case sdk.CodeNotFound:
		code = http.StatusNotFound
	case sdk.CodeUnimplemented:
		code = http.StatusNotImplemented
	}
	return errorf(code, "model %s: %v", model, err)
}

func (w *worker) infer(ctx context.Context, jobs []*job, clips int) error {
	size := len(jobs[0].in) / jobs[0].clips
	in := make([]float32, 0, clips*size)
	for _, j := range jobs {
		in = append(in, j.in...)
	}
	shape := append([]int64{int64(clips)}, w.Input...)
	out, err := w.sess.Infer(ctx, sdk.Tensor{Shape: shape, Data: in})
	if err != nil {
		return err
	}
	if len(out.Shape) != 2 || out.Shape[0] != int64(clips) {
		return fmt.Errorf("the plugin answered shape %v for %d clips", out.Shape, clips)
	}
	k := int(out.Shape[1])
	at := 0
	for _, j := range jobs {
		j.reply(answer{probs: out.Data[at*k : (at+j.clips)*k], k: k})
		at += j.clips
	}
	return nil
}

// classify moves the batch's uploads into VideoDir and runs one infer
// pass of the plugin's own reader over them; a video it cannot decode
// comes back as a Warning naming the file.
func (w *worker) classify(ctx context.Context, jobs []*job) error {
	byName := map[string]*job{}
	for _, j := range jobs {
		dst := filepath.Join(w.VideoDir, filepath.Base(j.file))
		if err := os.Rename(j.file, dst); err != nil {
			// The request gave up (its handler removed the upload).
			j.reply(answer{err: errorf(http.StatusInternalServerError, "model %s: the upload is gone: %v", w.Name, err)})
			continue
		}
		j.file = dst
		byName[filepath.Base(dst)] = j
	}
	if len(byName) == 0 {
		return nil
	}
	defer func() {
		for _, j := range jobs {
			os.Remove(j.file)
		}
	}()
	answered := map[*job]bool{}
	// A job's upload is removed before its answer goes out, so that a
	// client that has its answer finds no upload of its left on disk.
	reply := func(j *job, a answer) {
		answered[j] = true
		os.Remove(j.file)
		j.reply(a)
	}
	for e, err := range w.sess.Run(ctx, sdk.RunRequest{Phase: sdk.PhaseInfer}) {
		if err != nil {
			return err
		}
		switch {
		case e.Prediction != nil:
			if j := byName[filepath.Base(e.Prediction.ID)]; j != nil && !answered[j] {
				reply(j, answer{probs: e.Prediction.Scores.Data, k: len(e.Prediction.Scores.Data)})
			}
		case e.Warning != nil:
			if j := byName[filepath.Base(e.Warning.Path)]; j != nil && !answered[j] {
				msg := strings.ReplaceAll(e.Warning.Message, j.file, "the uploaded video")
				reply(j, answer{err: errorf(http.StatusBadRequest, "the body is not a video model %s can read: %s", w.Name, msg)})
			}
		}
	}
	for _, j := range jobs {
		if !answered[j] {
			reply(j, answer{err: errorf(http.StatusInternalServerError, "model %s gave no prediction for the upload", w.Name)})
		}
	}
	return nil
}

// restart replaces a dead plugin, retrying with a growing pause; ready is
// false meanwhile.
func (w *worker) restart(cause error) {
	w.ready.Store(false)
	w.met.ready.WithLabelValues(w.Name).Set(0)
	w.log.Warn("plugin died; restarting", "error", cause)
	if w.sess != nil {
		w.sess.Close()
		w.sess = nil
	}
	pause := 500 * time.Millisecond
	for {
		sess, res, err := w.Start(context.Background())
		if err == nil {
			w.sess = sess
			w.setLabels(res.Labels)
			w.ready.Store(true)
			w.met.ready.WithLabelValues(w.Name).Set(1)
			w.met.restarts.WithLabelValues(w.Name).Inc()
			w.log.Info("plugin restarted")
			return
		}
		w.log.Error("restart failed", "error", err, "retry_in", pause)
		select {
		case <-w.stop:
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 30*time.Second)
	}
}
