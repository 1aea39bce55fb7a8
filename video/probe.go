package video

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"os"
	"strings"
)

// Probe is what decoding a whole video found.
type Probe struct {
	// Frames is the number of frames decoded, as the reader counts them.
	Frames int
	// Width and Height are the first frame's, after autorotation.
	Width, Height int
	// Codec is the video stream's codec as ffmpeg names it.
	Codec string
	// Expected is the frame count the container's index promises (an
	// MP4's sample table, an AVI's header), 0 when unknown.
	Expected int
	// Errors are ffmpeg's last error lines, joined by "; ", "" when it
	// printed none: a decode can end well and still have skipped damaged
	// data.
	Errors string
}

// Probe decodes every frame of path with the options the reader's
// training decode uses, keeping none of them (memory stays at the pipe's
// buffers whatever the video's size), and reports what it found. The error
// is the decode's, as the reader would meet it.
func (d *Decoder) Probe(ctx context.Context, path string) (Probe, error) {
	var p Probe
	var lg ffmpegLog
	n, err := d.run(ctx, path, runOpts{log: &lg}, func(i, w, h int, r *bufio.Reader) error {
		if i == 0 {
			p.Width, p.Height = w, h
		}
		_, err := r.Discard(3 * w * h)
		return noEOF(err)
	})
	p.Frames, p.Codec, p.Errors = n, lg.Codec, lg.errors.joined()
	if c, ok := mp4PacketCount(path); ok {
		p.Expected = c
	} else if c, ok := aviFrameCount(path); ok {
		p.Expected = c
	}
	return p, err
}

// aviFrameCount reads dwTotalFrames of an AVI's main header (RIFF "AVI "
// LIST hdrl avih), which sits at a fixed offset in every AVI writer's
// output.
func aviFrameCount(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var h [52]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return 0, false
	}
	if string(h[0:4]) != "RIFF" || string(h[8:12]) != "AVI " || string(h[12:16]) != "LIST" ||
		string(h[20:24]) != "hdrl" || string(h[24:28]) != "avih" {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(h[48:52])
	if n == 0 || n > 1<<24 {
		return 0, false
	}
	return int(n), true
}

// Container names the container format path's first bytes announce, ""
// when none of those the reader meets in practice.
func Container(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var h [12]byte
	n, _ := io.ReadFull(f, h[:])
	b := h[:n]
	switch {
	case len(b) >= 8 && (string(b[4:8]) == "ftyp" || string(b[4:8]) == "moov" || string(b[4:8]) == "mdat" || string(b[4:8]) == "wide" || string(b[4:8]) == "free"):
		return "mp4"
	case len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "AVI ":
		return "avi"
	case len(b) >= 4 && string(b[0:4]) == "\x1a\x45\xdf\xa3":
		return "matroska"
	case len(b) >= 3 && (string(b[0:3]) == "FLV"):
		return "flv"
	case len(b) >= 4 && strings.HasPrefix(string(b), "\x00\x00\x01\xba"):
		return "mpeg-ps"
	}
	return ""
}
