package tsm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/video"
)

// batch is one batch of clips laid out [N, seg_num, 3, H, W].
type batch struct {
	data   []float32
	labels []int
	ids    []string
	next   int // the position in the epoch's order after this batch
	// global is, when the batch holds one rank's share of a global
	// batch (shareSource, a synthSource with ranks), the global batch's
	// clips; 0 when the batch is whole.
	global int
	// decoded is the clips this rank decoded (or generated) for the
	// batch, unreadable ones included.
	decoded int
	// busy is the wall time spent decoding (or generating) the batch's
	// clips, unreadable ones included, summed over the reader's workers
	// (video.Stats.Busy): an infer pass reports it as decode_s.
	busy time.Duration
	// wait is how long the pass waited for the batch (waited).
	wait time.Duration
}

// waited sets each batch's wait: the wall time from the consumer's asking
// for the next batch (its previous iteration done) to getting it. A reader
// that decodes ahead while the consumer runs the network makes this less
// than the batch's busy time; the difference is the decoding the forward
// passes hid.
func waited(seq iter.Seq2[batch, error]) iter.Seq2[batch, error] {
	return func(yield func(batch, error) bool) {
		t := time.Now()
		for b, err := range seq {
			b.wait = time.Since(t)
			if !yield(b, err) {
				return
			}
			t = time.Now()
		}
	}
}

// source yields the batches of one pass.
type source interface {
	// size returns the number of batches and clips of a pass; -1 unknown.
	count() (batches, clips int)
	// epoch yields the batches of an epoch from position start of its
	// order on; the clips before it are not read.
	epoch(ctx context.Context, epoch, start int) iter.Seq2[batch, error]
	// batchSize is the clips per batch: a resume without a recorded
	// position starts at step * batchSize.
	batchSize() int
}

// synthSource is the built-in dataset.
type synthSource struct {
	split, videos, batch, segNum, size int
	first                              int // the index of the source's first clip (a rank's share)
	// rank of ranks: with ranks > 1 (training under MPI) a batch holds
	// only this rank's share of the global batch (dist.Split), the only
	// clips it generates.
	rank, ranks int
	noise       float64
	shuffle     bool
	dropLast    bool
	seed        uint64
}

func (s *synthSource) count() (int, int) {
	if s.dropLast {
		n := s.videos / s.batch
		return n, n * s.batch
	}
	return (s.videos + s.batch - 1) / s.batch, s.videos
}

func (s *synthSource) batchSize() int { return s.batch }

func (s *synthSource) epoch(ctx context.Context, epoch, first int) iter.Seq2[batch, error] {
	return func(yield func(batch, error) bool) {
		order := make([]int, s.videos)
		for i := range order {
			order[i] = i
		}
		if s.shuffle {
			r := rand.New(rand.NewPCG(s.seed, uint64(epoch)))
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		clip := s.segNum * 3 * s.size * s.size
		for start := first; start < len(order); start += s.batch {
			n := min(s.batch, len(order)-start)
			if n < s.batch && s.dropLast {
				return
			}
			// Under ranks the pass's step agreement stops every rank at
			// once (session.Run): no rank stops alone.
			if err := ctx.Err(); err != nil && s.ranks <= 1 {
				yield(batch{}, err)
				return
			}
			lo, hi := 0, n
			if s.ranks > 1 {
				lo, hi = dist.Split(n, s.rank, s.ranks)
			}
			b := batch{data: make([]float32, (hi-lo)*clip), labels: make([]int, hi-lo), ids: make([]string, hi-lo), next: start + n}
			if s.ranks > 1 {
				b.global = n
			}
			b.decoded = hi - lo
			t := time.Now()
			for j := lo; j < hi; j++ {
				i := s.first + order[start+j]
				b.labels[j-lo] = synthClip(b.data[(j-lo)*clip:(j-lo+1)*clip], s.split, i, s.segNum, s.size, s.noise)
				b.ids[j-lo] = fmt.Sprintf("synthetic-%d", i)
			}
			b.busy = time.Since(t)
			if !yield(b, nil) {
				return
			}
		}
	}
}

// videoSource reads a list of videos with Paddle's reader.
type videoSource struct {
	r     *video.Reader
	batch int
	mode  video.Mode
	warn  func(path string, err error)
}

func newVideoSource(mode video.Mode, m ModelConfig, rc ReaderConfig, items []video.Item, seed int64, warn func(string, error)) (*videoSource, error) {
	r, err := newReader(mode, m, rc, items, seed, warn)
	if err != nil {
		return nil, err
	}
	return &videoSource{r: r, batch: rc.BatchSize, mode: mode, warn: warn}, nil
}

// newReader is Paddle's reader of a list.
func newReader(mode video.Mode, m ModelConfig, rc ReaderConfig, items []video.Item, seed int64, warn func(string, error)) (*video.Reader, error) {
	workers := min(max(rc.NumReaderThreads, 1), runtime.NumCPU())
	// Paddle's buf_size counts clips; 1024 clips of 8x224x224 are 5 GB.
	// Two batches ahead keeps the model fed.
	buf := min(max(rc.BufSize, workers), max(2*rc.BatchSize, workers))
	var mean, std [3]float32
	for i := 0; i < 3; i++ {
		mean[i], std[i] = float32(m.ImageMean[i]), float32(m.ImageStd[i])
	}
	r, err := video.NewReader(video.Config{
		Mode: mode, SegNum: m.SegNum, SegLen: m.SegLen, ShortSize: rc.ShortSize, TargetSize: rc.TargetSize,
		Mean: mean, Std: std, BatchSize: rc.BatchSize, Workers: workers, BufSize: buf, Seed: uint64(seed),
		NumClasses: m.NumClasses, SkipMultiScaleCrop: m.Name != "TSM", OnSkip: warn,
		NumClips: rc.NumClips, NumCrops: rc.NumCrops,
	}, items)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeInvalidArgument, "%v", err)
	}
	return r, nil
}

// emptySource is an evaluation share with no video (more ranks or shards
// than videos): it yields nothing, and the rank still takes part in the
// gather.
type emptySource struct{ batch int }

func (emptySource) count() (int, int) { return 0, 0 }

func (e emptySource) batchSize() int { return e.batch }

func (emptySource) epoch(context.Context, int, int) iter.Seq2[batch, error] {
	return func(func(batch, error) bool) {}
}

func (v *videoSource) count() (int, int) {
	n := v.r.Len()
	if v.mode == video.Train {
		return n / v.batch, n / v.batch * v.batch
	}
	return (n + v.batch - 1) / v.batch, n
}

func (v *videoSource) batchSize() int { return v.batch }

func (v *videoSource) epoch(ctx context.Context, epoch, start int) iter.Seq2[batch, error] {
	return func(yield func(batch, error) bool) {
		e := v.r.EpochFrom(ctx, epoch, start)
		defer e.Close()
		var busy time.Duration // the epoch's, up to the last batch
		for {
			b, err := e.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(batch{}, err)
				return
			}
			// A clip that failed to read was consumed too: the position
			// counts what the epoch took from its order, read or skipped.
			st := e.Stats()
			bb := batch{data: b.Data, labels: b.Labels, ids: b.IDs, next: start + st.Read + st.Skipped, busy: st.Busy - busy}
			busy = st.Busy
			if !yield(bb, nil) {
				return
			}
		}
	}
}
