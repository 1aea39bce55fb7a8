package resnet

import (
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // the formats Paddle's ImageNet lists hold
	_ "image/png"
	"iter"
	"math"
	"math/rand/v2"
	"os"
	"sync"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/video"
)

// imageExts are the extensions a directory listing picks up.
var imageExts = []string{".jpg", ".jpeg", ".png"}

// readImage decodes a JPEG or PNG file into an RGB image.
func readImage(path string) (*video.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cfg, _, err := image.DecodeConfig(f)
	if err != nil {
		return nil, fmt.Errorf("not a JPEG or PNG image: %w", err)
	}
	// Cap the size before allocating: a header can claim anything.
	const maxPixels = 100 << 20
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxPixels {
		return nil, fmt.Errorf("image size %dx%d is out of range", cfg.Width, cfg.Height)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return nil, err
	}
	src, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	b := src.Bounds()
	out := video.NewImage(b.Dx(), b.Dy())
	for y := 0; y < out.H; y++ {
		row := out.Pix[y*out.Stride:]
		for x := 0; x < out.W; x++ {
			r, g, bl, _ := src.At(b.Min.X+x, b.Min.Y+y).RGBA()
			row[3*x], row[3*x+1], row[3*x+2] = uint8(r>>8), uint8(g>>8), uint8(bl>>8)
		}
	}
	return out, nil
}

// resizeShort is Paddle's resize_short: the short side becomes size, the
// long side keeps the aspect ratio (rounded). Paddle resamples with
// Lanczos; zoo uses video's Pillow-exact bilinear filter, which, widened
// when downscaling, also antialiases.
func resizeShort(img *video.Image, size int) *video.Image {
	p := float64(size) / float64(min(img.W, img.H))
	w, h := int(math.RoundToEven(float64(img.W)*p)), int(math.RoundToEven(float64(img.H)*p))
	return video.ResizeBilinear(img, max(w, size), max(h, size))
}

// centerCrop is Paddle's crop_image(center=True): integer halves.
func centerCrop(img *video.Image, size int) (*video.Image, error) {
	return img.Crop((img.W-size)/2, (img.H-size)/2, size, size)
}

// randomResizedCrop is Paddle's random_crop (scale [0.08, 1], ratio
// [3/4, 4/3]) followed by the resize to size x size.
func randomResizedCrop(r *rand.Rand, img *video.Image, size int) (*video.Image, error) {
	ar := math.Sqrt(3.0/4 + r.Float64()*(4.0/3-3.0/4))
	w, h := ar, 1/ar
	iw, ih := float64(img.W), float64(img.H)
	// Paddle's bound keeps the crop inside the image: (W/H)/w^2 caps the
	// width, (H/W)/h^2 the height.
	bound := min((iw/ih)/(w*w), (ih/iw)/(h*h))
	smax, smin := min(1.0, bound), min(0.08, bound)
	area := iw * ih * (smin + r.Float64()*(smax-smin))
	t := math.Sqrt(area)
	cw, ch := max(int(t*w), 1), max(int(t*h), 1)
	cw, ch = min(cw, img.W), min(ch, img.H)
	c, err := img.Crop(r.IntN(img.W-cw+1), r.IntN(img.H-ch+1), cw, ch)
	if err != nil {
		return nil, err
	}
	return video.ResizeBilinear(c, size, size), nil
}

// preprocess turns an image into the network's [3, size, size] input:
// training takes a random resized crop and a random flip (drawn from r),
// evaluation resizes the short side to short and crops the centre.
func preprocess(dst []float32, img *video.Image, train bool, r *rand.Rand, short, size int, mean, std [3]float32) error {
	flip := false
	var err error
	if train {
		img, err = randomResizedCrop(r, img, size)
		flip = r.Float64() < 0.5
	} else {
		img, err = centerCrop(resizeShort(img, short), size)
	}
	if err != nil {
		return err
	}
	video.Normalize(dst, []*video.Image{img}, mean, std, flip)
	return nil
}

// imageSource reads a list of image files in batches, decoding a batch's
// images in parallel. A file that fails to read is skipped with a warning.
type imageSource struct {
	items       []video.Item
	train       bool
	batch       int
	workers     int
	short, size int
	mean, std   [3]float32
	numClasses  int
	seed        uint64
	warn        func(path string, err error)
	// comm, in training under ranks: each reads only its share of every
	// batch (share).
	comm dist.Communicator
}

func (s *imageSource) count() (int, int) {
	n := len(s.items)
	if s.train {
		return n / s.batch, n / s.batch * s.batch
	}
	return (n + s.batch - 1) / s.batch, n
}

func (s *imageSource) epoch(ctx context.Context, epoch, first int) iter.Seq2[batch, error] {
	return func(yield func(batch, error) bool) {
		order := make([]int, len(s.items))
		for i := range order {
			order[i] = i
		}
		if s.train {
			r := rand.New(rand.NewPCG(s.seed, uint64(epoch)))
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		for start := first * s.batch; start < len(order); start += s.batch {
			n := min(s.batch, len(order)-start)
			if n < s.batch && s.train {
				return
			}
			if err := ctx.Err(); err != nil && !shared(s.comm) {
				yield(batch{}, err) // under ranks, the step agreement stops every rank at once
				return
			}
			var b batch
			var err error
			if shared(s.comm) {
				b, err = s.share(ctx, order[start:start+n], epoch)
			} else {
				b = s.whole(order[start:start+n], epoch)
			}
			if err != nil {
				yield(batch{}, err)
				return
			}
			if len(b.labels) == 0 {
				continue
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// shared says a train source reads a share of each batch: under ranks.
func shared(comm dist.Communicator) bool { return comm != nil && comm.Size() > 1 }

// decode reads the images at idx (indices into items) for epoch into data,
// in parallel; errs[j] is image j's failure.
func (s *imageSource) decode(idx []int, epoch int, data []float32) []error {
	sample := 3 * s.size * s.size
	errs := make([]error, len(idx))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(s.workers, len(idx)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				i := idx[j]
				// One stream per image and epoch: augmentation does
				// not depend on the worker count, or on which rank
				// reads the image.
				r := rand.New(rand.NewPCG(s.seed^uint64(i)<<20, uint64(epoch)))
				it := s.items[i]
				if it.Label >= s.numClasses {
					errs[j] = fmt.Errorf("label %d is not below MODEL.num_classes %d", it.Label, s.numClasses)
					continue
				}
				img, err := readImage(it.Path)
				if err == nil {
					err = preprocess(data[j*sample:(j+1)*sample], img, s.train, r, s.short, s.size, s.mean, s.std)
				}
				errs[j] = err
			}
		}()
	}
	for j := range idx {
		next <- j
	}
	close(next)
	wg.Wait()
	return errs
}

// whole reads a whole batch: the images of idx that read, and in
// training, a batch that lost images refilled by repeating its good ones
// (the graph has a fixed size).
func (s *imageSource) whole(idx []int, epoch int) batch {
	sample := 3 * s.size * s.size
	data := make([]float32, len(idx)*sample)
	errs := s.decode(idx, epoch, data)
	b := batch{}
	for j, i := range idx {
		it := s.items[i]
		if errs[j] != nil {
			s.warn(it.Where, errs[j])
			continue
		}
		b.data = append(b.data, data[j*sample:(j+1)*sample]...)
		b.labels = append(b.labels, it.Label)
		b.ids = append(b.ids, it.Path)
	}
	if len(b.labels) == 0 {
		return b
	}
	if s.train && len(b.labels) < s.batch {
		for k := 0; len(b.labels) < s.batch; k++ {
			b.data = append(b.data, b.data[k*sample:(k+1)*sample]...)
			b.labels = append(b.labels, b.labels[k])
			b.ids = append(b.ids, b.ids[k])
		}
	}
	return b
}

// share reads this rank's share (dist.Split, in rank order) of the batch
// whole would read: each rank reads its share of idx, one allreduce tells
// every rank which images failed (or that a rank stops: ErrStopped), and
// a rank reads the images the refill moves into its share, which another
// rank read (an image's augmentation is a function of (seed, epoch,
// image), the same on every rank).
func (s *imageSource) share(ctx context.Context, idx []int, epoch int) (batch, error) {
	rank, size := s.comm.Rank(), s.comm.Size()
	sample := 3 * s.size * s.size
	lo, hi := dist.Split(len(idx), rank, size)
	data := make([]float32, len(idx)*sample)
	errs := s.decode(idx[lo:hi], epoch, data[lo*sample:hi*sample])
	// fails[j]: 1 + the rank that could not read image j; the last entry
	// counts the ranks that stop.
	fails := make([]float64, len(idx)+1)
	for j, err := range errs {
		if err != nil {
			fails[lo+j] = float64(rank + 1)
		}
	}
	if ctx.Err() != nil {
		fails[len(idx)] = 1
	}
	if err := s.comm.AllreduceSum64(fails); err != nil {
		return batch{}, fmt.Errorf("exchanging the images that failed to read: %w", err)
	}
	if fails[len(idx)] > 0 {
		return batch{}, classifier.ErrStopped
	}
	var good []int // positions in idx, then the refill's repeats
	for j, f := range fails[:len(idx)] {
		if f == 0 {
			good = append(good, j)
			continue
		}
		it := s.items[idx[j]]
		if by := int(f) - 1; by == rank {
			s.warn(it.Where, errs[j-lo])
		} else if rank == 0 {
			s.warn(it.Where, fmt.Errorf("rank %d could not read it (its log says why)", by))
		}
	}
	if len(good) == 0 {
		return batch{}, nil // as whole: a batch of unreadable images is skipped
	}
	for k := 0; len(good) < s.batch; k++ {
		good = append(good, good[k])
	}
	mine := good[lo:hi]
	var missing []int // images of my share another rank read
	for _, j := range mine {
		if j < lo || j >= hi {
			missing = append(missing, j)
		}
	}
	if len(missing) > 0 {
		mi := make([]int, len(missing))
		for k, j := range missing {
			mi[k] = idx[j]
		}
		buf := make([]float32, len(missing)*sample)
		for k, err := range s.decode(mi, epoch, buf) {
			if err != nil {
				return batch{}, fmt.Errorf("%s: read by another rank, not by rank %d: %w", s.items[mi[k]].Where, rank, err)
			}
			copy(data[missing[k]*sample:(missing[k]+1)*sample], buf[k*sample:(k+1)*sample])
		}
	}
	b := batch{global: len(good)}
	for _, j := range mine {
		it := s.items[idx[j]]
		b.data = append(b.data, data[j*sample:(j+1)*sample]...)
		b.labels = append(b.labels, it.Label)
		b.ids = append(b.ids, it.Path)
	}
	return b, nil
}

// synthSource is the built-in dataset.
type synthSource struct {
	split, images, batch, size int
	noise                      float64
	train                      bool
	seed                       uint64
	comm                       dist.Communicator // in training under ranks: each makes only its share
}

func (s *synthSource) count() (int, int) {
	if s.train {
		n := s.images / s.batch
		return n, n * s.batch
	}
	return (s.images + s.batch - 1) / s.batch, s.images
}

func (s *synthSource) epoch(ctx context.Context, epoch, first int) iter.Seq2[batch, error] {
	return func(yield func(batch, error) bool) {
		order := make([]int, s.images)
		for i := range order {
			order[i] = i
		}
		if s.train {
			r := rand.New(rand.NewPCG(s.seed, uint64(epoch)))
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		sample := 3 * s.size * s.size
		for start := first * s.batch; start < len(order); start += s.batch {
			n := min(s.batch, len(order)-start)
			if n < s.batch && s.train {
				return
			}
			if err := ctx.Err(); err != nil && !shared(s.comm) {
				yield(batch{}, err) // under ranks, the step agreement stops every rank at once
				return
			}
			lo, hi := 0, n
			var global int
			if shared(s.comm) {
				lo, hi = dist.Split(n, s.comm.Rank(), s.comm.Size())
				global = n
			}
			b := batch{data: make([]float32, (hi-lo)*sample), labels: make([]int, hi-lo), ids: make([]string, hi-lo), global: global}
			for j := lo; j < hi; j++ {
				i := order[start+j]
				b.labels[j-lo] = synthImage(b.data[(j-lo)*sample:(j-lo+1)*sample], s.split, i, s.size, s.noise)
				b.ids[j-lo] = fmt.Sprintf("synthetic-%d", i)
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}

// batch is one batch of images laid out [N, 3, H, W].
type batch struct {
	data   []float32
	labels []int
	ids    []string
	// global is, when the batch holds one rank's share of a train batch,
	// the whole batch's images; 0 when the batch is whole.
	global int
}

// source yields the batches of one pass.
type source interface {
	count() (batches, images int)
	// epoch yields the batches of an epoch from batch first on; the
	// batches before it are not read.
	epoch(ctx context.Context, epoch, first int) iter.Seq2[batch, error]
}
