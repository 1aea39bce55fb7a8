package video

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrNoFFmpeg is returned when the ffmpeg executable cannot be found.
var ErrNoFFmpeg = errors.New("ffmpeg not found in PATH: install it with `apt-get install ffmpeg` (Debian/Ubuntu) or `brew install ffmpeg` (macOS)")

// ErrNoFrames is returned for a file that ffmpeg opens but that yields no
// video frame.
var ErrNoFrames = errors.New("no video frames decoded")

// DefaultMaxKeepBytes bounds the decoded frames one video may hold while its
// frame count is still unknown: 512 MiB is 2000 frames of 340x256 (more
// than a 60 s Kinetics clip) but only 86 frames of 1080p, past which
// Decoder.Sample decodes the file a second time instead of keeping frames.
const DefaultMaxKeepBytes = 512 << 20

// Frame sides above this are treated as a corrupt stream rather than
// allocated.
const maxSide = 1 << 14

// Decoder decodes videos by running the ffmpeg executable, one process per
// call, reading frames from its standard output.
//
// Why an executable over pipes rather than libav through cgo: the package
// stays pure Go (no cgo toolchain, no libav headers pinned to one FFmpeg
// ABI), a crash or hang in a decoder kills one child process rather than
// the trainer, and cancellation is a kill. The price is the pipe (every
// frame crosses it when the count is unknown) and ffmpeg's start (about
// 290 ms of CPU for Debian's build, more than decoding a 10 s 340x256
// clip), which is why nothing here runs ffmpeg twice per clip when it can
// be helped; BenchmarkReadTest measures the rest against ffmpeg alone.
//
// Frames come as a stream of binary PPM images (-f image2pipe -c:v ppm)
// rather than headerless rawvideo: each frame carries its own width and
// height, after ffmpeg's autorotation, so no ffprobe process is needed (one
// ffprobe costs about as much as decoding a short clip) and no rotation
// matrix has to be interpreted here.
type Decoder struct {
	// FFmpeg is the path of the ffmpeg executable.
	FFmpeg string
	// MaxKeepBytes bounds the frames kept in Sample's single pass;
	// DefaultMaxKeepBytes when 0.
	MaxKeepBytes int64
}

// NewDecoder finds ffmpeg in PATH.
func NewDecoder() (*Decoder, error) {
	p, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, ErrNoFFmpeg
	}
	return &Decoder{FFmpeg: p}, nil
}

// runOpts are the optional parts of a decode.
type runOpts struct {
	// vf filters the frames written to the pipe.
	vf string
	// src, for sampleSelect, receives the size of the frames entering
	// vf's crop filter, from log.
	src *[2]int
	// log, when set, runs ffmpeg at the verbose log level and receives
	// what its log says (see ffmpegLog). It beats a second ffmpeg output
	// for the first frame or a frame count: each extra output costs
	// about a fifth of the decode in CPU.
	log *ffmpegLog
}

func (d *Decoder) args(path string, o runOpts) []string {
	level := "error"
	if o.log != nil {
		level = "level+verbose"
	}
	a := []string{
		"-loglevel", level, "-nostdin",
		"-i", "file:" + path,
		"-map", "0:v:0",
		// Each decoded frame exactly once: the default output sync
		// duplicates or drops frames to reach a constant rate.
		"-vsync", "passthrough",
	}
	if o.vf != "" {
		a = append(a, "-vf", o.vf)
	}
	return append(a, "-f", "image2pipe", "-c:v", "ppm", "-pix_fmt", "rgb24", "-")
}

// centerCropFilter is an ffmpeg filter that does group_scale and
// group_center_crop for frames whose short side is already short (the
// Kinetics case, 340x256 for 256), on RGB so that any offset is exact, and
// passes other frames through whole for the Go transforms: ffmpeg then
// writes 224x224 of each 340x256 frame to the pipe instead of all of it.
// The offset is Python 3's round((n - target)/2), half to even, written as
// trunc(d/2) + (d odd and trunc(d/2) odd).
func centerCropFilter(short, target int) string {
	cond := fmt.Sprintf(`eq(min(iw\,ih)\,%d)`, short)
	off := func(side string) string {
		d := fmt.Sprintf("(%s-%d)", side, target)
		return fmt.Sprintf(`'if(%s\,trunc(%s/2)+mod(%s\,2)*mod(trunc(%s/2)\,2)\,0)'`, cond, d, d, d)
	}
	return fmt.Sprintf(`format=rgb24,crop=w='if(%s\,%d\,iw)':h='if(%s\,%d\,ih)':x=%s:y=%s:exact=1`,
		cond, target, cond, target, off("iw"), off("ih"))
}

// frameFunc consumes frame i, w x h RGB, whose 3*w*h bytes must be read
// from r or skipped.
type frameFunc func(i, w, h int, r *bufio.Reader) error

// run decodes path as o asks and calls fn for every frame written to the
// pipe; it returns the number of such frames. It waits for ffmpeg in every
// case and kills it on return if it is still running (ctx cancelled, or fn
// failed).
func (d *Decoder) run(ctx context.Context, path string, o runOpts, fn frameFunc) (int, error) {
	if d.FFmpeg == "" {
		return 0, ErrNoFFmpeg
	}
	cmd := exec.CommandContext(ctx, d.FFmpeg, d.args(path, o)...)
	cmd.WaitDelay = 5 * time.Second
	stderr := &tailWriter{max: 4096}
	cmd.Stderr = stderr
	if o.log != nil {
		*o.log = ffmpegLog{}
		cmd.Stderr = o.log
		stderr = &o.log.errors
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, fmt.Errorf("decode %s: %w", path, err)
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("decode %s: %w (looked for %s)", path, ErrNoFFmpeg, d.FFmpeg)
		}
		return 0, fmt.Errorf("decode %s: start ffmpeg: %w", path, err)
	}
	setPipeSize(out)
	// The buffer only serves the few bytes of each PPM header: a read
	// of a frame's pixels, larger than it, goes from the pipe straight
	// into the frame once it is drained, where a larger buffer would copy
	// every frame once more.
	br := bufio.NewReaderSize(out, 4<<10)
	n := 0
	var readErr error
	for {
		w, h, err := readPPMHeader(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			readErr = err
			break
		}
		if err := fn(n, w, h, br); err != nil {
			readErr = err
			break
		}
		n++
	}
	if readErr != nil {
		_ = cmd.Process.Kill()
	}
	waitErr := cmd.Wait()
	if ctx.Err() != nil {
		return n, fmt.Errorf("decode %s: %w", path, ctx.Err())
	}
	if waitErr != nil {
		if last := stderr.lastLine(); last != "" {
			return n, fmt.Errorf("decode %s: ffmpeg: %s: %w", path, last, waitErr)
		}
		if readErr != nil {
			return n, fmt.Errorf("decode %s: %w", path, readErr)
		}
		return n, fmt.Errorf("decode %s: ffmpeg: %w", path, waitErr)
	}
	if readErr != nil {
		return n, fmt.Errorf("decode %s: %w", path, readErr)
	}
	if n == 0 {
		if last := stderr.lastLine(); last != "" {
			return 0, fmt.Errorf("decode %s: ffmpeg: %s: %w", path, last, ErrNoFrames)
		}
		return 0, fmt.Errorf("decode %s: %w", path, ErrNoFrames)
	}
	return n, nil
}

// readPPMHeader reads "P6 <w> <h> 255" and the single whitespace byte
// before the pixels. io.EOF means a clean end between frames.
func readPPMHeader(r *bufio.Reader) (w, h int, err error) {
	magic := make([]byte, 2)
	if _, err := io.ReadFull(r, magic); err != nil {
		if err == io.ErrUnexpectedEOF {
			return 0, 0, fmt.Errorf("read frame header: %w", err)
		}
		return 0, 0, err
	}
	if magic[0] != 'P' || magic[1] != '6' {
		return 0, 0, fmt.Errorf("read frame header: not a binary ppm frame (%q)", magic)
	}
	var v [3]int
	for i := range v {
		if v[i], err = readPPMInt(r); err != nil {
			return 0, 0, fmt.Errorf("read frame header: %w", err)
		}
	}
	if _, err := r.ReadByte(); err != nil {
		return 0, 0, fmt.Errorf("read frame header: %w", err)
	}
	w, h = v[0], v[1]
	if w <= 0 || h <= 0 || w > maxSide || h > maxSide || v[2] != 255 {
		return 0, 0, fmt.Errorf("read frame header: unsupported frame %dx%d maxval %d", w, h, v[2])
	}
	return w, h, nil
}

func readPPMInt(r *bufio.Reader) (int, error) {
	c, err := r.ReadByte()
	for err == nil && (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
		c, err = r.ReadByte()
	}
	if err != nil {
		return 0, noEOF(err)
	}
	n, digits := 0, 0
	for err == nil && c >= '0' && c <= '9' && digits < 9 {
		n = n*10 + int(c-'0')
		digits++
		c, err = r.ReadByte()
	}
	if err != nil {
		return 0, noEOF(err)
	}
	if digits == 0 {
		return 0, fmt.Errorf("bad number in ppm header")
	}
	return n, r.UnreadByte()
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Count returns the number of frames ffmpeg decodes from path.
func (d *Decoder) Count(ctx context.Context, path string) (int, error) {
	return d.run(ctx, path, runOpts{}, func(_, w, h int, r *bufio.Reader) error {
		_, err := r.Discard(3 * w * h)
		return noEOF(err)
	})
}

// DecodeAll returns every frame of path.
func (d *Decoder) DecodeAll(ctx context.Context, path string) ([]*Image, error) {
	var frames []*Image
	_, err := d.run(ctx, path, runOpts{}, func(_, w, h int, r *bufio.Reader) error {
		m := NewImage(w, h)
		if _, err := io.ReadFull(r, m.Pix); err != nil {
			return fmt.Errorf("read frame: %w", noEOF(err))
		}
		frames = append(frames, m)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return frames, nil
}

// Sample decodes path and returns the frames at the indices pick chooses
// given the number n of frames decoded, in pick's order (an index may
// repeat), and n. The frames are kept in one pass while they fit in
// MaxKeepBytes; past that the file is decoded a second time, now keeping
// only the frames picked.
//
// The frame count is only known at the end of the stream, so the first
// pass has to keep every frame. It keeps them in pooled chunks rather than
// fresh allocations: a 10 s Kinetics clip is 73 MB of RGB, and page-faulting
// that much new memory per clip cost more than the rest of the reader.
func (d *Decoder) Sample(ctx context.Context, path string, pick func(n int) []int) ([]*Image, int, error) {
	return d.sample(ctx, path, runOpts{}, pick)
}

// sample is Sample with the options of run.
func (d *Decoder) sample(ctx context.Context, path string, o runOpts, pick func(n int) []int) ([]*Image, int, error) {
	limit := d.MaxKeepBytes
	if limit <= 0 {
		limit = DefaultMaxKeepBytes
	}
	var ks keptFrames
	defer ks.release()
	overflow := false
	n, err := d.run(ctx, path, o, func(_, w, h int, r *bufio.Reader) error {
		size := 3 * w * h
		if !overflow && ks.bytes+int64(size) <= limit {
			m := ks.alloc(w, h)
			if _, err := io.ReadFull(r, m.Pix); err != nil {
				return fmt.Errorf("read frame: %w", noEOF(err))
			}
			return nil
		}
		if !overflow {
			overflow = true
			ks.release()
		}
		_, err := r.Discard(size)
		return noEOF(err)
	})
	if err != nil {
		return nil, n, err
	}
	idx := pick(n)
	out := make([]*Image, len(idx))
	if !overflow {
		copies := make(map[int]*Image, len(idx))
		for i, j := range idx {
			if copies[j] == nil {
				copies[j] = copyImage(ks.frames[j])
			}
			out[i] = copies[j]
		}
		return out, n, nil
	}
	want := make(map[int][]int, len(idx))
	for i, j := range idx {
		want[j] = append(want[j], i)
	}
	n2, err := d.run(ctx, path, o, func(i, w, h int, r *bufio.Reader) error {
		slots, ok := want[i]
		if !ok {
			_, err := r.Discard(3 * w * h)
			return noEOF(err)
		}
		m := NewImage(w, h)
		if _, err := io.ReadFull(r, m.Pix); err != nil {
			return fmt.Errorf("read frame: %w", noEOF(err))
		}
		for _, s := range slots {
			out[s] = m
		}
		return nil
	})
	if err != nil {
		return nil, n, err
	}
	if n2 != n {
		return nil, n, fmt.Errorf("decode %s: second pass gave %d frames, first %d", path, n2, n)
	}
	return out, n, nil
}

// guessWindow is how far from a container's packet count the decoded frame
// count may fall for sampleSelect to still have the frames it needs.
const guessWindow = 3

// sampleSelect is sample for a video whose frame count is guessed to be
// about guess, and whose pick is a pure function of the count (not Train,
// where pick draws from a random stream): ffmpeg keeps only the frames pick
// chooses for any count within guessWindow of the guess (select filter, so
// the others are neither converted nor piped), and its verbose log gives
// the true count, and o.src the size entering o.vf's crop filter. ok is
// false, with no error, when the count fell
// outside the window or the log lacked a number; the caller then decodes
// with sample.
func (d *Decoder) sampleSelect(ctx context.Context, path string, o runOpts, guess int, pick func(n int) []int) (out []*Image, n int, ok bool, err error) {
	seen := map[int]bool{}
	for c := max(1, guess-guessWindow); c <= guess+guessWindow; c++ {
		for _, j := range pick(c) {
			seen[j] = true
		}
	}
	cand := make([]int, 0, len(seen))
	for j := range seen {
		cand = append(cand, j)
	}
	slices.Sort(cand)
	terms := make([]string, len(cand))
	for i, j := range cand {
		terms[i] = fmt.Sprintf(`eq(n\,%d)`, j)
	}
	sel := "select='" + strings.Join(terms, "+") + "'"
	if o.vf != "" {
		sel += "," + o.vf
	}
	src := o.src
	var lg ffmpegLog
	o = runOpts{vf: sel, log: &lg}
	var got []*Image
	if _, err := d.run(ctx, path, o, func(_, w, h int, r *bufio.Reader) error {
		m := NewImage(w, h)
		if _, err := io.ReadFull(r, m.Pix); err != nil {
			return fmt.Errorf("read frame: %w", noEOF(err))
		}
		got = append(got, m)
		return nil
	}); err != nil && !errors.Is(err, ErrNoFrames) {
		return nil, 0, false, err
	}
	if !lg.Found || (src != nil && lg.CropIn == [2]int{}) {
		return nil, 0, false, nil
	}
	n = lg.Decoded
	// The frames written are the candidates below n, in order.
	below, _ := slices.BinarySearch(cand, n)
	if n < guess-guessWindow || n > guess+guessWindow || len(got) != below {
		return nil, n, false, nil
	}
	if src != nil {
		*src = lg.CropIn
	}
	idx := pick(n)
	out = make([]*Image, len(idx))
	for i, j := range idx {
		k, _ := slices.BinarySearch(cand, j)
		out[i] = got[k]
	}
	return out, n, true, nil
}

// chunkSize is the unit of the pool that holds decoded frames until the
// frame count is known: 16 MiB holds 64 frames of 340x256 or 2 of 1080p;
// a larger frame gets its own allocation.
const chunkSize = 16 << 20

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// keptFrames places frames back to back in pooled chunks.
type keptFrames struct {
	chunks []*[]byte
	used   int // bytes used in the last chunk
	frames []*Image
	bytes  int64
}

func (k *keptFrames) alloc(w, h int) *Image {
	size := 3 * w * h
	var pix []byte
	switch {
	case size > chunkSize:
		pix = make([]byte, size)
	default:
		if len(k.chunks) == 0 || k.used+size > chunkSize {
			k.chunks = append(k.chunks, chunkPool.Get().(*[]byte))
			k.used = 0
		}
		pix = (*k.chunks[len(k.chunks)-1])[k.used : k.used+size : k.used+size]
		k.used += size
	}
	m := &Image{W: w, H: h, Stride: 3 * w, Pix: pix}
	k.frames = append(k.frames, m)
	k.bytes += int64(size)
	return m
}

// release returns the chunks to the pool; the frames must not be used
// after it.
func (k *keptFrames) release() {
	for _, c := range k.chunks {
		chunkPool.Put(c)
	}
	*k = keptFrames{}
}

// ffmpegLog reads ffmpeg's log at level+verbose: each line tagged with its
// level, the crop filter's sizes when configured, and the per-stream totals
// at exit. Error lines go to errors, without their tag, as -v error would
// print them.
type ffmpegLog struct {
	partial []byte
	errors  tailWriter
	// CropIn is the size of the frames entering the crop filter (after
	// autorotation), 0 if no crop filter was configured.
	CropIn [2]int
	// Decoded is the largest "N frames decoded" of a video input
	// stream; Found says whether one was printed.
	Decoded int
	Found   bool
	// Codec is the first input video stream's codec as ffmpeg names it
	// ("h264", "mpeg4"), from the stream's info line.
	Codec string
}

var errorTags = []string{"[error] ", "[fatal] ", "[panic] "}

func (l *ffmpegLog) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) > 64<<10 {
		l.partial = l.partial[:0]
	}
	return len(p), nil
}

func (l *ffmpegLog) line(s string) {
	for _, tag := range errorTags {
		if i := strings.Index(s, tag); i >= 0 {
			l.errors.max = 4096
			_, _ = l.errors.Write([]byte(s[:i] + s[i+len(tag):] + "\n"))
			return
		}
	}
	// [Parsed_crop_2 @ 0x...] [verbose] w:340 h:256 sar:1/1 -> w:224 h:224 sar:1/1
	if strings.Contains(s, "[Parsed_crop_") && l.CropIn == [2]int{} {
		if i := strings.Index(s, "] w:"); i >= 0 {
			var w, h int
			if _, err := fmt.Sscanf(s[i+2:], "w:%d h:%d", &w, &h); err == nil {
				l.CropIn = [2]int{w, h}
			}
		}
		return
	}
	//   Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), ...
	// The input's streams are listed before the output's.
	if l.Codec == "" && strings.Contains(s, "Stream #") {
		if i := strings.Index(s, ": Video: "); i >= 0 {
			if f := strings.FieldsFunc(s[i+len(": Video: "):], func(r rune) bool { return r == ' ' || r == ',' }); len(f) > 0 {
				l.Codec = f[0]
			}
		}
	}
	//   Input stream #0:0 (video): 280 packets read (631567 bytes); 280 frames decoded;
	if strings.Contains(s, "Input stream #") && strings.Contains(s, "(video):") {
		if i := strings.Index(s, "bytes); "); i >= 0 {
			var n int
			if _, err := fmt.Sscanf(s[i+len("bytes); "):], "%d frames decoded", &n); err == nil {
				if !l.Found || n > l.Decoded {
					l.Decoded, l.Found = n, true
				}
			}
		}
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// joined is the non-empty lines kept, each with its runs of white space
// made one space, joined by "; ".
func (t *tailWriter) joined() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lines []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// lastLine is the last non-empty line ffmpeg wrote to stderr.
func (t *tailWriter) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(string(bytes.TrimSpace(t.buf)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
