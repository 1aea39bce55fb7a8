package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/zoo-ml/zoo/sdk"
)

// A job is one request's work, waiting in a model's queue: a tensor (the
// infer endpoint's, or an upload the plugin has decoded) or, from a plugin
// without Decode, an upload its infer pass reads.
type job struct {
	ctx   context.Context
	video bool // an upload for an infer pass (a plugin without Decode)
	clips int  // clips (videos) answered, what a batch counts
	// views is the rows of in per clip, whose probabilities are averaged
	// (a decoded upload's num_clips x num_crops); 1 for a plain tensor.
	views int
	in    []float32 // tensor: clips x views rows of the model's Input shape
	// decoded: an upload the plugin decoded, counted in w.decoding until
	// it is queued.
	decoded bool
	file    string // video: the upload, staged outside VideoDir
	done    chan answer
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
	opts  Options
	log   hclog.Logger
	met   *metrics
	queue chan *job
	ready atomic.Bool
	// sess is written by the worker's goroutine (restart) under mu and
	// read there freely; handlers that decode read it through current.
	mu       sync.Mutex
	sess     Session
	decoders chan struct{} // a token per decode in flight
	noDecode atomic.Bool   // the plugin has no Decode: uploads go to infer passes
	decoding atomic.Int32  // uploads decoding, not yet queued
	labels   atomic.Pointer[[]string]
	stage    string // uploads are written here, then moved into VideoDir
	seq      atomic.Int64
	stop     chan struct{}
	done     chan struct{}
}

func newWorker(m Model, sess Session, labels []string, opts Options, log hclog.Logger, met *metrics) (*worker, error) {
	m.MaxBatch = max(m.MaxBatch, 1)
	w := &worker{Model: m, opts: opts, log: log.Named(m.Name), met: met, queue: make(chan *job, opts.Queue),
		sess: sess, decoders: make(chan struct{}, max(opts.Decoders, 1)), stop: make(chan struct{}), done: make(chan struct{})}
	w.setLabels(labels)
	w.noDecode.Store(opts.NoDecode)
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

// submit queues a job and waits for its answer or its deadline. A job
// that counted in w.decoding leaves the count once queued (not before:
// the worker must not close a batch between the two).
func (w *worker) submit(j *job) answer {
	j.done = make(chan answer, 1)
	j.views = max(j.views, 1)
	select {
	case w.queue <- j:
		if j.decoded {
			w.decoding.Add(-1)
		}
	default:
		if j.decoded {
			w.decoding.Add(-1)
		}
		return answer{err: errorf(http.StatusServiceUnavailable, "model %s: %d requests already queued; retry later", w.Name, cap(w.queue))}
	}
	w.met.queue.WithLabelValues(w.Name).Set(float64(len(w.queue)))
	select {
	case a := <-j.done:
		if dl, ok := j.ctx.Deadline(); a.err == nil || !ok || time.Now().Before(dl) {
			return a
		}
		// The batch failed at the end of its --timeout, which began after
		// the request's: past the request's deadline, say so rather than
		// what the plugin said (the two timers fire in either order).
		return answer{err: w.errTimeout()}
	case <-j.ctx.Done():
		return answer{err: w.errTimeout()}
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
				if len(w.queue) > 0 || w.decoding.Load() > 0 && !first.video {
					// Uploads still decoding would join this batch had
					// they arrived with it, as an infer pass's would:
					// wait for them rather than run a padded batch. (A
					// job queued as the timer fired is taken too: an
					// upload leaves the decoding count once queued.)
					timer.Reset(w.opts.Window)
					continue
				}
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
		w.failAll(live, w.errRestarting())
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
		err = w.infer(ctx, live)
	}
	if err == nil {
		return
	}
	if w.sess.Exited() {
		w.failAll(live, w.errDied(err))
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

// The errors a worker answers from more than one place.

// errTimeout: the request's deadline passed first.
func (w *worker) errTimeout() error {
	return errorf(http.StatusGatewayTimeout, "model %s: no answer within %v", w.Name, w.opts.Timeout)
}

// errRestarting: the plugin is being restarted.
func (w *worker) errRestarting() error {
	return errorf(http.StatusServiceUnavailable, "model %s is restarting; retry later", w.Name)
}

// errDied: the plugin died in the call that failed with err.
func (w *worker) errDied(err error) error {
	return errorf(http.StatusServiceUnavailable, "model %s: the plugin died (%v); it is being restarted, retry later", w.Name, err)
}

// errUnreadable: the plugin's reader could not read an upload; msg names
// it by the upload's path, file, which the client is not shown.
func (w *worker) errUnreadable(msg, file string) error {
	msg = strings.ReplaceAll(msg, file, "the uploaded video")
	return errorf(http.StatusBadRequest, "the body is not a video model %s can read: %s", w.Name, msg)
}

func (w *worker) infer(ctx context.Context, jobs []*job) error {
	rows, size := 0, len(jobs[0].in)/(jobs[0].clips*jobs[0].views)
	for _, j := range jobs {
		rows += j.clips * j.views
	}
	in := make([]float32, 0, rows*size)
	for _, j := range jobs {
		in = append(in, j.in...)
	}
	shape := append([]int64{int64(rows)}, w.Input...)
	out, err := w.sess.Infer(ctx, sdk.Tensor{Shape: shape, Data: in})
	if err != nil {
		return err
	}
	if len(out.Shape) != 2 || out.Shape[0] != int64(rows) {
		return fmt.Errorf("the plugin answered shape %v for %d clips", out.Shape, rows)
	}
	k := int(out.Shape[1])
	at := 0
	for _, j := range jobs {
		n := j.clips * j.views
		j.reply(answer{probs: averageViews(out.Data[at*k:(at+n)*k], k, j.views), k: k})
		at += n
	}
	return nil
}

// averageViews averages each clip's views' probabilities (views
// consecutive rows of k per clip), as the plugin's infer pass does.
func averageViews(probs []float32, k, views int) []float32 {
	if views == 1 {
		return probs
	}
	out := make([]float32, len(probs)/views)
	for c := range len(out) / k {
		for i := range k {
			var p float64
			for v := range views {
				p += float64(probs[(c*views+v)*k+i])
			}
			out[c*k+i] = float32(p / float64(views))
		}
	}
	return out
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
				reply(j, answer{err: w.errUnreadable(e.Warning.Message, j.file)})
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

func (w *worker) setSession(s Session) {
	w.mu.Lock()
	w.sess = s
	w.mu.Unlock()
}

// current is the session for calls from outside the worker's goroutine.
func (w *worker) current() Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sess
}

// restart replaces a dead plugin, retrying with a growing pause; ready is
// false meanwhile.
func (w *worker) restart(cause error) {
	w.ready.Store(false)
	w.met.ready.WithLabelValues(w.Name).Set(0)
	w.log.Warn("plugin died; restarting", "error", cause)
	if w.sess != nil {
		w.sess.Close()
		w.setSession(nil)
	}
	pause := 500 * time.Millisecond
	for {
		sess, res, err := w.Start(context.Background())
		if err == nil {
			w.setSession(sess)
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
