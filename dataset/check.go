package dataset

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	"github.com/zoo-ml/zoo/video"
)

// Reasons a video fails Check, the Reason of its FileReport.
const (
	ReasonMissing   = "missing"
	ReasonEmpty     = "zero bytes"
	ReasonNotVideo  = "not a video"
	ReasonTruncated = "truncated"
	ReasonFewFrames = "too few frames"
	ReasonUndecoded = "cannot decode"
)

// ffmpegTag is the "[mov,mp4,m4a,3gp,3g2,mj2 @ 0x5579be20ebc0] " prefix of
// a demuxer's log line: its address changes every run.
var ffmpegTag = regexp.MustCompile(`\[[^\]]* @ 0x[0-9a-f]+\] `)

// FileReport is Check's answer for one list line.
type FileReport struct {
	Path   string `json:"path"`
	Where  string `json:"where"`
	Label  int    `json:"label"`
	OK     bool   `json:"ok"`
	Size   int64  `json:"size"`
	Frames int    `json:"frames"`
	// Expected is the frame count the container promises, 0 if unknown.
	Expected int    `json:"expected_frames,omitempty"`
	Width    int    `json:"width,omitempty"`
	Height   int    `json:"height,omitempty"`
	Codec    string `json:"codec,omitempty"`
	// Reason is one of the Reason constants when !OK; Detail says more.
	Reason string `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// CheckOptions are Check's settings.
type CheckOptions struct {
	// SegNum*SegLen is the fewest frames a video may have: Paddle's
	// sampler wraps a shorter video around, repeating frames.
	SegNum, SegLen int
	// Workers decode in parallel (at least 1); each holds one ffmpeg
	// process and no frames.
	Workers int
	// Decoder runs ffmpeg; found in PATH when nil.
	Decoder *video.Decoder
	// Progress, when set, is called after each video with the counts so
	// far, from one goroutine at a time.
	Progress func(done, failed int)
}

// Check decodes every video of items and returns one report per item, in
// the items' order. A pkl item (Paddle's pickled clips) is read and its
// frames counted.
func Check(ctx context.Context, items []video.Item, o CheckOptions) ([]FileReport, error) {
	if o.Decoder == nil {
		d, err := video.NewDecoder()
		if err != nil {
			return nil, err
		}
		o.Decoder = d
	}
	o.Workers = max(o.Workers, 1)
	reps := make([]FileReport, len(items))
	next := make(chan int)
	var mu sync.Mutex
	done, failed := 0, 0
	var wg sync.WaitGroup
	for range min(o.Workers, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				reps[i] = checkOne(ctx, items[i], o)
				mu.Lock()
				done++
				if !reps[i].OK {
					failed++
				}
				if o.Progress != nil {
					o.Progress(done, failed)
				}
				mu.Unlock()
			}
		}()
	}
feed:
	for i := range items {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return reps, nil
}

func checkOne(ctx context.Context, it video.Item, o CheckOptions) FileReport {
	r := FileReport{Path: it.Path, Where: it.Where, Label: it.Label}
	fail := func(reason, detail string) FileReport {
		r.Reason, r.Detail = reason, detail
		return r
	}
	st, err := os.Stat(it.Path)
	switch {
	case err != nil:
		return fail(ReasonMissing, "no such file")
	case st.IsDir():
		return fail(ReasonNotVideo, "a directory")
	case st.Size() == 0:
		return fail(ReasonEmpty, "an empty file (an interrupted download?)")
	}
	r.Size = st.Size()
	if it.IsPKL() {
		clip, err := video.ReadPKL(it.Path)
		if err != nil {
			return fail(ReasonUndecoded, err.Error())
		}
		r.Frames, r.Codec = len(clip.Frames), "jpeg (pkl)"
	} else {
		p, err := o.Decoder.Probe(ctx, it.Path)
		r.Frames, r.Expected, r.Width, r.Height, r.Codec = p.Frames, p.Expected, p.Width, p.Height, p.Codec
		if err != nil {
			if ctx.Err() != nil {
				return fail(ReasonUndecoded, "interrupted")
			}
			msg := strings.TrimPrefix(err.Error(), "decode "+it.Path+": ")
			if p.Errors != "" {
				msg = "ffmpeg: " + p.Errors
			}
			msg = ffmpegTag.ReplaceAllString(strings.ReplaceAll(msg, "file:"+it.Path+": ", ""), "")
			switch {
			case errors.Is(err, video.ErrNoFFmpeg):
				return fail(ReasonUndecoded, err.Error())
			case video.Container(it.Path) == "":
				return fail(ReasonNotVideo, msg)
			case p.Frames > 0 || strings.Contains(msg, "moov atom not found") || strings.Contains(msg, "partial file") ||
				strings.Contains(msg, "Invalid data found") || strings.Contains(msg, "End of file"):
				// A container that starts right and cannot be read
				// to its end: a download cut short.
				return fail(ReasonTruncated, msg)
			}
			return fail(ReasonUndecoded, msg)
		}
		if p.Expected > 0 && p.Frames < p.Expected*9/10 {
			return fail(ReasonTruncated, fmt.Sprintf("decoded %d of the %d frames the container indexes", p.Frames, p.Expected))
		}
		if p.Errors != "" && strings.Contains(p.Errors, "partial file") {
			return fail(ReasonTruncated, p.Errors)
		}
	}
	if need := o.SegNum * max(o.SegLen, 1); r.Frames < need {
		return fail(ReasonFewFrames, fmt.Sprintf("%d frames, fewer than seg_num*seglen = %d: the sampler would repeat frames", r.Frames, need))
	}
	r.OK = true
	return r
}

// ReadList reads a "path label" list (labels optional) or a directory of
// videos as the readers do (video.ParseList).
func ReadList(path string) ([]video.Item, error) { return video.ParseList(path, false) }

// VideoExts are the extensions taken as videos.
var VideoExts = video.VideoExts
