package video

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/big"
	"os"

	"github.com/zoo-ml/zoo/internal/pickle"
)

// maxPKLBytes caps the size of a pkl file read into memory: a 10 s
// Kinetics clip of JPEG frames is a few MB.
const maxPKLBytes = 1 << 30

// Clip is the content of one of Paddle's pkl files: the pickled tuple
// (video_id, label, [JPEG bytes per frame]).
type Clip struct {
	ID     string
	Label  int
	Frames [][]byte
}

// ReadPKL reads a pkl clip written by Python 2's cPickle (protocol 2, str
// as BINSTRING/SHORT_BINSTRING) or Python 3 (protocol 2, where bytes are
// pickled as _codecs.encode(str, "latin1"), or protocol 3 and up). The
// frames share the memory of the file read.
func ReadPKL(path string) (*Clip, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read pkl: %w", err)
	}
	if st.Size() > maxPKLBytes {
		return nil, fmt.Errorf("read pkl %s: %d bytes, more than the %d allowed", path, st.Size(), maxPKLBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pkl: %w", err)
	}
	v, err := pickle.Decode(data, pklGlobals)
	if err != nil {
		return nil, fmt.Errorf("read pkl %s: %w", path, err)
	}
	c, err := clipFrom(v)
	if err != nil {
		return nil, fmt.Errorf("read pkl %s: %w", path, err)
	}
	return c, nil
}

func clipFrom(v any) (*Clip, error) {
	t, ok := v.(pickle.Tuple)
	if !ok {
		if l, isList := v.(*pickle.List); isList {
			t = l.Items
		} else {
			return nil, fmt.Errorf("want a tuple (video_id, label, frames), got %s", pickle.TypeName(v))
		}
	}
	if len(t) != 3 {
		return nil, fmt.Errorf("want a tuple (video_id, label, frames), got %d items", len(t))
	}
	c := &Clip{}
	switch id := t[0].(type) {
	case string:
		c.ID = id
	case []byte:
		c.ID = string(id)
	case int64:
		c.ID = fmt.Sprint(id)
	default:
		return nil, fmt.Errorf("video_id is %s, want str", pickle.TypeName(t[0]))
	}
	var label int64
	switch l := t[1].(type) {
	case int64:
		label = l
	case *big.Int:
		return nil, fmt.Errorf("label %v is not a class index", l)
	default:
		// Only the type: a hostile file's value may be nested a million deep.
		return nil, fmt.Errorf("label is %s, want a class index", pickle.TypeName(t[1]))
	}
	if label < 0 || label > 1<<30 {
		return nil, fmt.Errorf("label %d is not a class index", label)
	}
	c.Label = int(label)
	var frames []any
	switch f := t[2].(type) {
	case *pickle.List:
		frames = f.Items
	case pickle.Tuple:
		frames = f
	default:
		return nil, fmt.Errorf("frames are %s, want a list of JPEG bytes", pickle.TypeName(t[2]))
	}
	for i, f := range frames {
		b, ok := f.([]byte)
		if !ok {
			return nil, fmt.Errorf("frame %d is %s, want JPEG bytes", i, pickle.TypeName(f))
		}
		c.Frames = append(c.Frames, b)
	}
	if len(c.Frames) == 0 {
		return nil, ErrNoFrames
	}
	return c, nil
}

// DecodeJPEG decodes one pkl frame to RGB.
func DecodeJPEG(b []byte) (*Image, error) {
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode jpeg: %w", err)
	}
	r := img.Bounds()
	m := NewImage(r.Dx(), r.Dy())
	switch src := img.(type) {
	case *image.YCbCr:
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				c := src.YCbCrAt(r.Min.X+x, r.Min.Y+y)
				i := y*m.Stride + 3*x
				m.Pix[i], m.Pix[i+1], m.Pix[i+2] = color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
			}
		}
	default:
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				cr, cg, cb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
				i := y*m.Stride + 3*x
				m.Pix[i], m.Pix[i+1], m.Pix[i+2] = uint8(cr>>8), uint8(cg>>8), uint8(cb>>8)
			}
		}
	}
	return m, nil
}

// pklGlobals is a pkl clip's allow-list: only what Python 3 uses to pickle
// bytes at protocol 2.
var pklGlobals = pickle.BytesGlobals
