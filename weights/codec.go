package weights

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on what a record header may claim. They are checked before any
// allocation, together with the bytes the file really has left.
const (
	// MaxElements caps a tensor's element count. The largest tensor of a
	// zoo model is ResNet-152's 2048x2048x1x1 block conv (4M elements);
	// 1<<31 is far above that and keeps every index in an int32.
	MaxElements = 1 << 31
	// MaxRank is Paddle's own limit on tensor rank (DDim's kMaxRank).
	MaxRank = 9
	// maxLoDLevels caps the LoD levels of a record: parameters have none,
	// sequence data a few.
	maxLoDLevels = 32
	// maxDescSize caps the TensorDesc message: a type and 9 dims take at
	// most 2 + 9*11 bytes; 4096 leaves room for unknown fields.
	maxDescSize = 4096
	// chunk is how much Decode allocates at a time for data whose size
	// it cannot check against a known file size.
	chunk = 16 << 20
)

// Header is a record without its data: what Check needs.
type header struct {
	dtype DType
	dims  []int64
	lod   [][]uint64
	nbyte int64 // data bytes that follow
}

type recReader struct {
	r     io.Reader
	off   int64 // bytes consumed
	limit int64 // bytes the source may hold from the start
	buf   [8]byte
}

func (rr *recReader) fail(format string, a ...any) error {
	return &FormatError{Offset: rr.off, Reason: fmt.Sprintf(format, a...)}
}

func (rr *recReader) full(p []byte, what string) error {
	if int64(len(p)) > rr.limit-rr.off {
		return rr.fail("truncated %s: need %d bytes, %d left", what, len(p), max(rr.limit-rr.off, 0))
	}
	n, err := io.ReadFull(rr.r, p)
	rr.off += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return rr.fail("truncated %s: need %d bytes, got %d", what, len(p), n)
	}
	if err != nil {
		return fmt.Errorf("weights: read %s at offset %d: %w", what, rr.off, err)
	}
	return nil
}

func (rr *recReader) u32(what string) (uint32, error) {
	if err := rr.full(rr.buf[:4], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(rr.buf[:4]), nil
}

func (rr *recReader) u64(what string) (uint64, error) {
	if err := rr.full(rr.buf[:8], what); err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(rr.buf[:8]), nil
}

// Decode reads one LoDTensor record from r. limit is the number of bytes r
// can still deliver (the file size for a file); no size claimed by the
// header above limit is trusted or allocated. Decode stops right after the
// record: trailing bytes are the caller's business (ReadFile refuses them).
// The returned tensor has no name. Malformed input gives a *FormatError
// (errors.Is(err, ErrFormat)); a failing reader, its own error wrapped.
func Decode(r io.Reader, limit int64) (*Tensor, error) {
	rr := &recReader{r: r, limit: limit}
	h, err := rr.header()
	if err != nil {
		return nil, err
	}
	data, err := rr.data(h.nbyte, "data")
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: h.dtype, Dims: h.dims, LoD: h.lod, Data: data}, nil
}

func (rr *recReader) header() (*header, error) {
	v, err := rr.u32("lodtensor version")
	if err != nil {
		return nil, err
	}
	if v != 0 {
		return nil, rr.fail("not a fluid LoDTensor file (version %d, want 0)", v)
	}
	levels, err := rr.u64("lod level")
	if err != nil {
		return nil, err
	}
	if levels > maxLoDLevels {
		// The pre-1.0 layout wrote the tensor first: uint32 version,
		// int32 desc size, desc (starting with tag 0x08), data, LoD last.
		// Read as the current layout, the desc size and the desc's first
		// bytes land in lod_level.
		if s := levels & 0xffffffff; s > 0 && s <= maxDescSize && byte(levels>>32) == 0x08 {
			return nil, rr.fail("not a fluid LoDTensor file (lod level %#x), pre-1.0 layout (tensor before LoD)?", levels)
		}
		return nil, rr.fail("not a fluid LoDTensor file (lod level %d above %d)", levels, maxLoDLevels)
	}
	var lod [][]uint64
	for i := range levels {
		n, err := rr.u64("lod level size")
		if err != nil {
			return nil, err
		}
		if n%8 != 0 {
			return nil, rr.fail("lod level %d size %d is not a multiple of 8", i, n)
		}
		if n > uint64(rr.limit-rr.off) || n > 8*MaxElements {
			return nil, rr.fail("truncated lod level %d: need %d bytes, %d left", i, n, rr.limit-rr.off)
		}
		b, err := rr.data(int64(n), "lod offsets")
		if err != nil {
			return nil, err
		}
		level := make([]uint64, n/8)
		for j := range level {
			level[j] = binary.LittleEndian.Uint64(b[8*j:])
		}
		lod = append(lod, level)
	}
	if v, err = rr.u32("tensor version"); err != nil {
		return nil, err
	}
	if v != 0 {
		return nil, rr.fail("unsupported tensor version %d, want 0", v)
	}
	ds, err := rr.u32("tensor desc size")
	if err != nil {
		return nil, err
	}
	if int32(ds) <= 0 || ds > maxDescSize {
		return nil, rr.fail("tensor desc size %d outside 1..%d", int32(ds), maxDescSize)
	}
	descOff := rr.off
	desc := make([]byte, ds)
	if err := rr.full(desc, "tensor desc"); err != nil {
		return nil, err
	}
	dt, dims, err := parseDesc(desc)
	if err != nil {
		return nil, &FormatError{Offset: descOff, Reason: "tensor desc: " + err.Error()}
	}
	n, err := numel(dims)
	if err != nil {
		return nil, &FormatError{Offset: descOff, Reason: err.Error()}
	}
	nb := n * int64(dt.Size())
	if nb > rr.limit-rr.off {
		return nil, rr.fail("truncated data: %s %v needs %d bytes, %d left", dt, dims, nb, rr.limit-rr.off)
	}
	return &header{dtype: dt, dims: dims, lod: lod, nbyte: nb}, nil
}

// data reads n bytes. n is at most limit-off, but limit may be a promise
// of the caller rather than a file size, so large payloads grow in chunks
// and a short stream costs only what it delivered.
func (rr *recReader) data(n int64, what string) ([]byte, error) {
	first := min(n, chunk)
	b := make([]byte, first)
	if err := rr.full(b, what); err != nil {
		return nil, err
	}
	for int64(len(b)) < n {
		k := min(n-int64(len(b)), int64(len(b)))
		b = append(b, make([]byte, k)...)
		if err := rr.full(b[int64(len(b))-k:], what); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// parseDesc parses Paddle's TensorDesc protobuf by hand:
//
//	message TensorDesc { required Type data_type = 1; repeated int64 dims = 2; }
//
// Paddle writes each dim with its own tag (0x10); packed dims (0x12) are
// accepted too. Unknown fields are skipped.
func parseDesc(b []byte) (DType, []int64, error) {
	var (
		dt     DType
		haveDT bool
		dims   = []int64{}
	)
	for len(b) > 0 {
		tag, n := uvarint(b)
		if n <= 0 {
			return 0, nil, errors.New("bad field tag")
		}
		b = b[n:]
		field, wire := tag>>3, tag&7
		switch {
		case field == 1 && wire == 0:
			v, n := uvarint(b)
			if n <= 0 {
				return 0, nil, errors.New("bad data_type varint")
			}
			b = b[n:]
			dt, haveDT = DType(int32(v)), true
			if int64(v) != int64(dt) || !dt.Valid() {
				return 0, nil, fmt.Errorf("unsupported data type %d", int64(v))
			}
		case field == 2 && wire == 0:
			v, n := uvarint(b)
			if n <= 0 {
				return 0, nil, errors.New("bad dims varint")
			}
			b = b[n:]
			if len(dims) == MaxRank {
				return 0, nil, fmt.Errorf("rank above %d", MaxRank)
			}
			dims = append(dims, int64(v))
		case field == 2 && wire == 2:
			l, n := uvarint(b)
			if n <= 0 || l > uint64(len(b)-n) {
				return 0, nil, errors.New("bad packed dims length")
			}
			p := b[n : n+int(l)]
			b = b[n+int(l):]
			for len(p) > 0 {
				v, n := uvarint(p)
				if n <= 0 {
					return 0, nil, errors.New("bad packed dims varint")
				}
				p = p[n:]
				if len(dims) == MaxRank {
					return 0, nil, fmt.Errorf("rank above %d", MaxRank)
				}
				dims = append(dims, int64(v))
			}
		case field == 0:
			return 0, nil, errors.New("field number 0")
		default:
			var err error
			if b, err = skipField(b, wire); err != nil {
				return 0, nil, fmt.Errorf("field %d: %w", field, err)
			}
		}
	}
	if !haveDT {
		return 0, nil, errors.New("no data_type")
	}
	for _, d := range dims {
		if d < 0 {
			return 0, nil, fmt.Errorf("negative dim in %v", dims)
		}
	}
	return dt, dims, nil
}

func skipField(b []byte, wire uint64) ([]byte, error) {
	switch wire {
	case 0:
		_, n := uvarint(b)
		if n <= 0 {
			return nil, errors.New("bad varint")
		}
		return b[n:], nil
	case 1:
		if len(b) < 8 {
			return nil, errors.New("short fixed64")
		}
		return b[8:], nil
	case 2:
		l, n := uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, errors.New("bad length")
		}
		return b[n+int(l):], nil
	case 5:
		if len(b) < 4 {
			return nil, errors.New("short fixed32")
		}
		return b[4:], nil
	}
	return nil, fmt.Errorf("unsupported wire type %d", wire)
}

// uvarint is binary.Uvarint, returning n <= 0 on any error.
func uvarint(b []byte) (uint64, int) { return binary.Uvarint(b) }

// appendDesc encodes a TensorDesc as Paddle's C++ protobuf does: proto2,
// dims unpacked.
func appendDesc(b []byte, dt DType, dims []int64) []byte {
	b = append(b, 0x08)
	b = binary.AppendUvarint(b, uint64(int64(dt)))
	for _, d := range dims {
		b = append(b, 0x10)
		b = binary.AppendUvarint(b, uint64(d))
	}
	return b
}

// validate checks that t can be written as a record.
func (t *Tensor) validate() error {
	if !t.DType.Valid() {
		return fmt.Errorf("weights: %s: unsupported dtype %s", t.Name, t.DType)
	}
	n, err := numel(t.Dims)
	if err != nil {
		return fmt.Errorf("weights: %s: %v", t.Name, err)
	}
	if want := n * int64(t.DType.Size()); int64(len(t.Data)) != want {
		return fmt.Errorf("weights: %s: %d data bytes, %s %v needs %d", t.Name, len(t.Data), t.DType, t.Dims, want)
	}
	if len(t.LoD) > maxLoDLevels {
		return fmt.Errorf("weights: %s: %d lod levels above %d", t.Name, len(t.LoD), maxLoDLevels)
	}
	return nil
}

// Encode writes t as one LoDTensor record, byte for byte what Paddle's
// SerializeToStream writes.
func Encode(w io.Writer, t *Tensor) error {
	if err := t.validate(); err != nil {
		return err
	}
	b := make([]byte, 0, 64)
	b = binary.LittleEndian.AppendUint32(b, 0) // LoDTensor version
	b = binary.LittleEndian.AppendUint64(b, uint64(len(t.LoD)))
	for _, level := range t.LoD {
		b = binary.LittleEndian.AppendUint64(b, uint64(8*len(level)))
		for _, o := range level {
			b = binary.LittleEndian.AppendUint64(b, o)
		}
	}
	b = binary.LittleEndian.AppendUint32(b, 0) // tensor version
	desc := appendDesc(nil, t.DType, t.Dims)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(desc)))
	b = append(b, desc...)
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("weights: write %s: %w", t.Name, err)
	}
	if _, err := w.Write(t.Data); err != nil {
		return fmt.Errorf("weights: write %s: %w", t.Name, err)
	}
	return nil
}
