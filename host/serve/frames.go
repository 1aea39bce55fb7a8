package serve

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image"
	"image/png"
	"math"

	"github.com/zoo-ml/zoo/sdk"
)

// Frame is one frame the model saw: its index in the video and the
// frame as the network got it (sampled, cropped), as a PNG.
type Frame struct {
	Index int64 `json:"index"`
	// PNG is the image, base64 (a data: URL's payload).
	PNG    string `json:"png"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// maxFrameSide bounds a frame's PNG: a 224x224 crop is shown at half size
// (the page shows eight side by side), a small one as it is.
const maxFrameSide = 112

// sampledFrames turns the first view of a decoded upload back into
// pictures: the normalisation undone (pixel = 255 (value x std + mean)),
// each segment's first frame, shrunk by a whole factor to at most
// maxFrameSide, labelled with the frame index the reader sampled.
func sampledFrames(d sdk.Decoded) ([]Frame, error) {
	s := d.Input.Shape // [views, seg_num, 3 x seglen, H, W]
	if len(s) != 5 || s[2]%3 != 0 || len(d.Mean) != 3 || len(d.Std) != 3 {
		return nil, fmt.Errorf("decoded shape %v, mean %v, std %v: want [views, segments, 3, H, W] and RGB statistics", s, d.Mean, d.Std)
	}
	seg, ch, h, w := int(s[1]), int(s[2]), int(s[3]), int(s[4])
	seglen := ch / 3
	f := int(math.Ceil(float64(max(h, w)) / maxFrameSide))
	out := make([]Frame, 0, seg)
	for i := range seg {
		img := image.NewNRGBA(image.Rect(0, 0, w/f, h/f))
		plane := func(c int) []float32 { return d.Input.Data[((i*ch+c)*h)*w:][:h*w] }
		for y := range h / f {
			for x := range w / f {
				for c := range 3 {
					p := plane(c)
					var sum float64
					for dy := range f {
						for dx := range f {
							sum += float64(p[(y*f+dy)*w+x*f+dx])
						}
					}
					v := (sum/float64(f*f)*float64(d.Std[c]) + float64(d.Mean[c])) * 255
					img.Pix[y*img.Stride+4*x+c] = uint8(math.Round(min(max(v, 0), 255)))
				}
				img.Pix[y*img.Stride+4*x+3] = 255
			}
		}
		var b bytes.Buffer
		if err := png.Encode(&b, img); err != nil {
			return nil, err
		}
		idx := int64(-1)
		if k := i * seglen; k < len(d.Frames) {
			idx = d.Frames[k]
		}
		out = append(out, Frame{Index: idx, PNG: base64.StdEncoding.EncodeToString(b.Bytes()), Width: w / f, Height: h / f})
	}
	return out, nil
}
