package video

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"
)

// Config holds the reader settings of one section of Paddle's config
// ([TRAIN], [VALID], [TEST] or [INFER]) plus the [MODEL] values it uses.
type Config struct {
	Mode Mode
	// SegNum segments of SegLen consecutive frames per clip.
	SegNum, SegLen int
	// ShortSize is group_scale's short side; TargetSize the crop side.
	ShortSize, TargetSize int
	// Mean and Std are image_mean and image_std, RGB, on the 0..1 scale.
	Mean, Std [3]float32
	// BatchSize clips per batch. Train drops the last partial batch; the
	// other modes keep it.
	BatchSize int
	// Workers decode and transform clips in parallel (num_reader_threads);
	// 1 when 0.
	Workers int
	// BufSize bounds the clips read ahead of the consumer (buf_size); at
	// least Workers.
	BufSize int
	// Seed makes Train runs repeat exactly: the epoch's shuffle comes from
	// (Seed, epoch) and each clip's random draws from (Seed, epoch, index
	// in the list), whichever worker reads it.
	Seed uint64
	// NumClasses, when above 0, bounds the labels.
	NumClasses int
	// NumClips and NumCrops ask for multi-view samples outside Train
	// (views.go); 0 and 1 are Paddle's one centre-cropped clip.
	NumClips, NumCrops int
	// SkipMultiScaleCrop turns group_multi_scale_crop off in Train mode.
	// Paddle applies it only to the model named TSM, so a TSN-style model
	// sets this.
	SkipMultiScaleCrop bool
	// Decoder runs ffmpeg; NewReader finds one in PATH when nil.
	Decoder *Decoder
	// OnSkip is told about each clip that cannot be read; the clip is
	// skipped and counted, and reading goes on. Called from Next's
	// goroutine.
	OnSkip func(path string, err error)
}

// Batch is a batch of clips: Data holds len(IDs) clips laid out
// [N, SegNum, 3*SegLen, TargetSize, TargetSize], channels RGB.
type Batch struct {
	Data []float32
	// Shape is N, SegNum, 3*SegLen, H, W.
	Shape [5]int
	// Labels are the class indices, NoLabel where the list gave none.
	Labels []int
	// IDs name the clips: the video path, or a pkl clip's video_id.
	IDs []string
}

// Stats counts what an epoch has read so far.
type Stats struct {
	// Read clips went into a batch (for Train, including any in the dropped
	// partial batch).
	Read int
	// Skipped clips could not be decoded.
	Skipped int
	// Busy is the wall time the workers spent reading the clips counted
	// in Read and Skipped (ffmpeg, sampling, the transforms and
	// normalisation: Load), summed over clips. Workers read ahead of
	// Next, so Busy overlaps the consumer's own work and, with several
	// workers, may exceed the epoch's wall time.
	Busy time.Duration
}

// Reader turns a list of videos into batches, one Epoch at a time.
type Reader struct {
	cfg   Config
	items []Item
	// clips recycles the Data of samples that Next has copied into a
	// batch: a clip is 4.8 MB of float32 at 8x224x224, and faulting in
	// fresh memory for each cost more than normalising it.
	clips sync.Pool
}

// clipBuf returns a buffer of SampleLen values, not zeroed: Normalize
// writes every value.
func (r *Reader) clipBuf() []float32 {
	if p, ok := r.clips.Get().(*[]float32); ok {
		return *p
	}
	return make([]float32, r.SampleLen())
}

// NewReader checks cfg and the items and returns a reader.
func NewReader(cfg Config, items []Item) (*Reader, error) {
	switch {
	case cfg.Mode < Train || cfg.Mode > Infer:
		return nil, fmt.Errorf("new reader: unknown mode %d", cfg.Mode)
	case cfg.SegNum <= 0 || cfg.SegLen <= 0:
		return nil, fmt.Errorf("new reader: seg_num %d and seglen %d must be positive", cfg.SegNum, cfg.SegLen)
	case cfg.TargetSize <= 0 || cfg.ShortSize < cfg.TargetSize:
		return nil, fmt.Errorf("new reader: target_size %d must be positive and at most short_size %d", cfg.TargetSize, cfg.ShortSize)
	case cfg.BatchSize <= 0:
		return nil, fmt.Errorf("new reader: batch_size %d must be positive", cfg.BatchSize)
	case cfg.NumClips < 0 || cfg.NumClips > MaxClips:
		return nil, fmt.Errorf("new reader: num_clips %d must be in [1, %d]", cfg.NumClips, MaxClips)
	case cfg.NumCrops != 0 && cfg.NumCrops != 1 && cfg.NumCrops != 3:
		return nil, fmt.Errorf("new reader: num_crops %d must be 1 or 3", cfg.NumCrops)
	case len(items) == 0:
		return nil, errors.New("new reader: no videos")
	}
	for c := 0; c < 3; c++ {
		if cfg.Std[c] == 0 {
			return nil, fmt.Errorf("new reader: image_std[%d] is 0", c)
		}
	}
	if cfg.Mode != Infer {
		for _, it := range items {
			if it.Label == NoLabel && !it.IsPKL() {
				return nil, fmt.Errorf("new reader: %s: %s mode needs a label", it.Where, cfg.Mode)
			}
		}
	}
	if cfg.NumClasses > 0 {
		if err := CheckLabels(items, cfg.NumClasses); err != nil {
			return nil, fmt.Errorf("new reader: %w", err)
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	cfg.BufSize = max(cfg.BufSize, cfg.Workers)
	if cfg.Decoder == nil {
		d, err := NewDecoder()
		if err != nil {
			return nil, fmt.Errorf("new reader: %w", err)
		}
		cfg.Decoder = d
	}
	return &Reader{cfg: cfg, items: items}, nil
}

// SampleLen is the number of float32 values of one clip.
func (r *Reader) SampleLen() int {
	return r.cfg.Views() * r.cfg.SegNum * r.cfg.SegLen * 3 * r.cfg.TargetSize * r.cfg.TargetSize
}

// Len is the number of items in the list.
func (r *Reader) Len() int { return len(r.items) }

// Sample is one transformed clip.
type Sample struct {
	Data  []float32
	Label int
	ID    string
	// Frames is the number of frames decoded, Indices those used.
	Frames  int
	Indices []int
}

func (r *Reader) rng(epoch, index int) *rand.Rand {
	return rand.New(rand.NewPCG(r.cfg.Seed, uint64(epoch)<<32|uint64(uint32(index))))
}

// Load reads item index of the list as epoch epoch would.
func (r *Reader) Load(ctx context.Context, index, epoch int) (*Sample, error) {
	c := &r.cfg
	it := r.items[index]
	rng := r.rng(epoch, index)
	s := &Sample{Label: it.Label, ID: it.Path}
	var frames []*Image
	if it.IsPKL() && c.Views() > 1 {
		return nil, fmt.Errorf("%s: multi-view (num_clips, num_crops) reads videos, not pkl clips", it.Path)
	}
	if c.Views() > 1 {
		// The whole frames: ffmpeg's centre-crop shortcut (decode) would
		// cut away the other crops.
		frames, n, err := c.Decoder.sample(ctx, it.Path, runOpts{}, func(n int) []int {
			s.Indices = MultiClipIndices(n, c.SegNum, c.SegLen, max(c.NumClips, 1))
			return s.Indices
		})
		if err != nil {
			return nil, err
		}
		s.Frames = n
		if s.Data, err = r.multiView(frames); err != nil {
			return nil, fmt.Errorf("transform %s: %w", it.Path, err)
		}
		return s, nil
	}
	if it.IsPKL() {
		clip, err := ReadPKL(it.Path)
		if err != nil {
			return nil, err
		}
		if c.NumClasses > 0 && clip.Label >= c.NumClasses {
			return nil, fmt.Errorf("%s: label %d out of range [0, %d)", it.Path, clip.Label, c.NumClasses)
		}
		s.Label, s.ID, s.Frames = clip.Label, clip.ID, len(clip.Frames)
		s.Indices = SampleIndicesPKL(c.Mode, len(clip.Frames), c.SegNum, c.SegLen, rng)
		cache := map[int]*Image{}
		for _, j := range s.Indices {
			m, ok := cache[j]
			if !ok {
				var err error
				if m, err = DecodeJPEG(clip.Frames[j]); err != nil {
					return nil, fmt.Errorf("read pkl %s: frame %d: %w", it.Path, j, err)
				}
				cache[j] = m
			}
			frames = append(frames, m)
		}
	} else {
		var err error
		var pre bool
		if frames, pre, err = r.decode(ctx, it.Path, s, rng); err != nil {
			return nil, err
		}
		if pre {
			data := r.clipBuf()
			Normalize(data, frames, c.Mean, c.Std, false)
			s.Data = data
			return s, nil
		}
	}
	data, err := r.transform(rng, frames)
	if err != nil {
		return nil, fmt.Errorf("transform %s: %w", it.Path, err)
	}
	s.Data = data
	return s, nil
}

// decode samples the frames of a video. Outside Train two shortcuts keep
// ffmpeg from writing what the clip does not use. Where an MP4's packet
// count predicts the frame count, ffmpeg writes only the frames the centre
// rule can pick for counts near it (sampleSelect), and the true count
// decides. And ffmpeg does group_scale and the center crop itself when
// group_scale would leave the frames unchanged (centerCropFilter), its
// log telling the frame size the filter saw, so whether it cropped; pre
// reports frames so cropped, which need only Normalize.
func (r *Reader) decode(ctx context.Context, path string, s *Sample, rng *rand.Rand) (frames []*Image, pre bool, err error) {
	c := &r.cfg
	pick := func(n int) []int {
		s.Indices = SampleIndices(c.Mode, n, c.SegNum, c.SegLen, rng)
		return s.Indices
	}
	if c.Mode == Train {
		frames, s.Frames, err = c.Decoder.sample(ctx, path, runOpts{}, pick)
		return frames, false, err
	}
	var src [2]int
	o := runOpts{vf: centerCropFilter(c.ShortSize, c.TargetSize), src: &src}
	ok := false
	if guess, known := mp4PacketCount(path); known {
		frames, s.Frames, ok, err = c.Decoder.sampleSelect(ctx, path, o, guess, pick)
		if err != nil {
			return nil, false, err
		}
	}
	if !ok {
		var lg ffmpegLog
		if frames, s.Frames, err = c.Decoder.sample(ctx, path, runOpts{vf: o.vf, log: &lg}, pick); err != nil {
			return nil, false, err
		}
		src = lg.CropIn
	}
	if src == [2]int{} {
		// The log did not say how the filter saw the frames.
		frames, s.Frames, err = c.Decoder.sample(ctx, path, runOpts{}, pick)
		return frames, false, err
	}
	if min(src[0], src[1]) != c.ShortSize {
		return frames, false, nil
	}
	for _, f := range frames {
		if f.W != c.TargetSize || f.H != c.TargetSize {
			// The size changed mid-stream: let the Go transforms
			// see every frame whole.
			frames, s.Frames, err = c.Decoder.sample(ctx, path, runOpts{}, pick)
			return frames, false, err
		}
	}
	return frames, true, nil
}

// transform is Paddle's imgs_transform.
func (r *Reader) transform(rng *rand.Rand, frames []*Image) ([]float32, error) {
	c := &r.cfg
	frames = GroupScale(frames, c.ShortSize)
	for _, f := range frames[1:] {
		if f.W != frames[0].W || f.H != frames[0].H {
			return nil, fmt.Errorf("frames of different sizes (%dx%d and %dx%d)", frames[0].W, frames[0].H, f.W, f.H)
		}
	}
	var err error
	flip := false
	if c.Mode == Train {
		if !c.SkipMultiScaleCrop {
			if frames, err = GroupMultiScaleCrop(rng, frames, c.ShortSize); err != nil {
				return nil, err
			}
		}
		if frames, err = GroupRandomCrop(rng, frames, c.TargetSize); err != nil {
			return nil, err
		}
		flip = FlipDraw(rng)
	} else if frames, err = GroupCenterCrop(frames, c.TargetSize); err != nil {
		return nil, err
	}
	data := r.clipBuf()
	Normalize(data, frames, c.Mean, c.Std, flip)
	return data, nil
}

// Order is the order in which epoch reads the list: shuffled from
// (Seed, epoch) in Train mode, the list's order otherwise.
func (r *Reader) Order(epoch int) []int {
	order := make([]int, len(r.items))
	for i := range order {
		order[i] = i
	}
	if r.cfg.Mode == Train {
		// A stream apart from the per-clip ones, whose second word
		// carries the epoch in its high half.
		rng := rand.New(rand.NewPCG(r.cfg.Seed^0x5eed5eed5eed5eed, uint64(epoch)))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	return order
}

type result struct {
	index int
	s     *Sample
	err   error
	busy  time.Duration // Load's wall time
}

// Epoch is one pass over the list. Its Next returns batches in Order;
// Close must be called when done with it.
type Epoch struct {
	r       *Reader
	ctx     context.Context
	cancel  context.CancelFunc
	ordered chan chan result
	wg      sync.WaitGroup
	stats   Stats
	done    bool
}

// Epoch starts Workers goroutines reading the list for epoch epoch
// (counted from 0). Cancelling ctx, or Close, stops them and kills their
// ffmpeg processes.
func (r *Reader) Epoch(ctx context.Context, epoch int) *Epoch {
	return r.EpochFrom(ctx, epoch, 0)
}

// EpochFrom is Epoch resuming at position start of Order(epoch): the
// clips before it are not read. Every clip's random draws depend on
// (Seed, epoch, index) alone, so the batches from there on are those of an
// Epoch that read the whole list (exactly so when no clip before start
// failed to read: a skipped clip shifts the later batches' boundaries).
func (r *Reader) EpochFrom(ctx context.Context, epoch, start int) *Epoch {
	ctx, cancel := context.WithCancel(ctx)
	e := &Epoch{r: r, ctx: ctx, cancel: cancel, ordered: make(chan chan result, r.cfg.BufSize)}
	type job struct {
		index int
		out   chan result
	}
	jobs := make(chan job)
	order := r.Order(epoch)
	order = order[min(max(start, 0), len(order)):]
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer close(jobs)
		defer close(e.ordered)
		for _, i := range order {
			out := make(chan result, 1)
			select {
			case e.ordered <- out:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- job{i, out}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < r.cfg.Workers; w++ {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for j := range jobs {
				t := time.Now()
				s, err := r.Load(ctx, j.index, epoch)
				j.out <- result{j.index, s, err, time.Since(t)}
			}
		}()
	}
	return e
}

// Next returns the next batch, or io.EOF when the epoch is over. Clips that
// fail to read are skipped, reported to OnSkip and counted in Stats; only
// cancellation stops the epoch early.
func (e *Epoch) Next(ctx context.Context) (*Batch, error) {
	c := &e.r.cfg
	var got []*Sample
	for len(got) < c.BatchSize && !e.done {
		var out chan result
		var ok bool
		select {
		case out, ok = <-e.ordered:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-e.ctx.Done():
			return nil, e.ctx.Err()
		}
		if !ok {
			e.done = true
			break
		}
		var res result
		select {
		case res = <-out:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-e.ctx.Done():
			return nil, e.ctx.Err()
		}
		if res.err != nil {
			if e.ctx.Err() != nil {
				return nil, e.ctx.Err()
			}
			e.stats.Busy += res.busy
			e.stats.Skipped++
			if c.OnSkip != nil {
				c.OnSkip(e.r.items[res.index].Path, res.err)
			}
			continue
		}
		e.stats.Busy += res.busy
		e.stats.Read++
		got = append(got, res.s)
	}
	if len(got) == 0 || (c.Mode == Train && len(got) < c.BatchSize) {
		return nil, io.EOF
	}
	n := e.r.SampleLen()
	b := &Batch{
		Data:   make([]float32, len(got)*n),
		Shape:  [5]int{len(got), c.SegNum, 3 * c.SegLen, c.TargetSize, c.TargetSize},
		Labels: make([]int, len(got)),
		IDs:    make([]string, len(got)),
	}
	for i, s := range got {
		copy(b.Data[i*n:], s.Data)
		e.r.clips.Put(&s.Data)
		b.Labels[i] = s.Label
		b.IDs[i] = s.ID
	}
	return b, nil
}

// Stats returns the counts so far; after io.EOF they are the epoch's.
func (e *Epoch) Stats() Stats { return e.stats }

// Close stops the epoch's goroutines and waits for them and their ffmpeg
// processes.
func (e *Epoch) Close() {
	e.cancel()
	e.wg.Wait()
}
