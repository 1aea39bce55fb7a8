package video

import (
	"encoding/binary"
	"io"
	"os"
)

// maxMoovBytes caps the moov box read for a frame-count guess; a 10 s clip's
// is tens of kB.
const maxMoovBytes = 16 << 20

// mp4PacketCount returns the sample count of the first video track of an
// MP4/MOV file (moov/trak/mdia/minf/stbl/stsz), read without decoding. It
// is a guess of the decoded frame count, not the count itself (edit lists
// and broken streams make them differ), and false for anything it cannot
// read.
func mp4PacketCount(path string) (int, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	var off int64
	for i := 0; i < 64; i++ {
		var h [16]byte
		if _, err := f.ReadAt(h[:8], off); err != nil {
			return 0, false
		}
		size, hdr := int64(binary.BigEndian.Uint32(h[:4])), int64(8)
		if size == 1 {
			if _, err := f.ReadAt(h[8:16], off+8); err != nil {
				return 0, false
			}
			size, hdr = int64(binary.BigEndian.Uint64(h[8:16])), 16
		}
		if size < hdr {
			return 0, false
		}
		if string(h[4:8]) == "moov" {
			if size-hdr > maxMoovBytes {
				return 0, false
			}
			moov := make([]byte, size-hdr)
			if _, err := f.ReadAt(moov, off+hdr); err != nil && err != io.EOF {
				return 0, false
			}
			return moovVideoSamples(moov)
		}
		off += size
	}
	return 0, false
}

// boxes calls fn for each box in b with its type and payload.
func boxes(b []byte, fn func(typ string, payload []byte) bool) {
	for len(b) >= 8 {
		size, hdr := uint64(binary.BigEndian.Uint32(b)), uint64(8)
		if size == 1 && len(b) >= 16 {
			size, hdr = binary.BigEndian.Uint64(b[8:]), 16
		} else if size == 0 {
			size = uint64(len(b))
		}
		if size < hdr || size > uint64(len(b)) {
			return
		}
		if !fn(string(b[4:8]), b[hdr:size]) {
			return
		}
		b = b[size:]
	}
}

func child(b []byte, typ string) []byte {
	var out []byte
	boxes(b, func(t string, p []byte) bool {
		if t == typ {
			out = p
			return false
		}
		return true
	})
	return out
}

func moovVideoSamples(moov []byte) (n int, ok bool) {
	boxes(moov, func(t string, trak []byte) bool {
		if t != "trak" {
			return true
		}
		mdia := child(trak, "mdia")
		hdlr := child(mdia, "hdlr")
		// version/flags, pre_defined, then handler_type.
		if len(hdlr) < 12 || string(hdlr[8:12]) != "vide" {
			return true
		}
		stsz := child(child(child(mdia, "minf"), "stbl"), "stsz")
		// version/flags, sample_size, sample_count.
		if len(stsz) >= 12 {
			n, ok = int(binary.BigEndian.Uint32(stsz[8:12])), true
		}
		return false
	})
	return n, ok && n > 0
}
