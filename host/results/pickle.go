package results

import (
	"encoding/binary"
	"io"
	"math"
	"math/big"
)

// InferRow is one video's top-k prediction: scores descending and the
// class index of each.
type InferRow struct {
	VideoID string
	Scores  []float32
	Labels  []int
}

// Pickle opcodes used by WritePickle (names as in Python's pickletools).
const (
	opProto      = 0x80
	opEmptyList  = ']'
	opBinPut     = 'q'
	opLongBinPut = 'r'
	opMark       = '('
	opAppend     = 'a'
	opAppends    = 'e'
	opBinUnicode = 'X'
	opBinFloat   = 'G'
	opBinInt1    = 'K'
	opBinInt2    = 'M'
	opBinInt     = 'J'
	opLong1      = 0x8a
	opTuple3     = 0x87
	opStop       = '.'
)

// pickleBatch is Python's Pickler._BATCHSIZE: APPENDS carries at most this
// many items, so the stream matches what pickle.dumps writes.
const pickleBatch = 1000

// WritePickle writes rows as Paddle's infer.py does (pickle.dump(results))
// but with protocol 2, which both Python 2 and 3 load: a list of tuples
// (video_id, [scores, descending], [class indices]). Scores are Python
// floats (numpy float32 .tolist() gives doubles), written as BINFLOAT of
// the exact float32 value; indices are Python ints; video ids are str
// (BINUNICODE). The opcode stream, memo included, is the one CPython's
// pickle.dumps(results, protocol=2) produces for the same objects.
func WritePickle(path string, rows []InferRow) error {
	return WriteFileAtomic(path, func(w io.Writer) error {
		_, err := w.Write(EncodePickle(rows))
		return err
	})
}

// EncodePickle returns the bytes WritePickle writes.
func EncodePickle(rows []InferRow) []byte {
	size := 16
	for _, r := range rows {
		size += 32 + len(r.VideoID) + 9*len(r.Scores) + 5*len(r.Labels)
	}
	e := &pickler{b: make([]byte, 0, size)}
	e.b = append(e.b, opProto, 2)
	e.list(len(rows), func(i int) {
		r := rows[i]
		e.str(r.VideoID)
		e.list(len(r.Scores), func(j int) {
			e.b = append(e.b, opBinFloat)
			e.b = binary.BigEndian.AppendUint64(e.b, math.Float64bits(float64(r.Scores[j])))
		})
		e.list(len(r.Labels), func(j int) { e.int(r.Labels[j]) })
		e.b = append(e.b, opTuple3)
		e.memoize()
	})
	e.b = append(e.b, opStop)
	return e.b
}

type pickler struct {
	b    []byte
	memo uint32 // next memo index
}

// memoize records the object just built, as Python's Pickler.memoize does
// for every list, str and tuple.
func (e *pickler) memoize() {
	if e.memo < 256 {
		e.b = append(e.b, opBinPut, byte(e.memo))
	} else {
		e.b = append(e.b, opLongBinPut)
		e.b = binary.LittleEndian.AppendUint32(e.b, e.memo)
	}
	e.memo++
}

// list writes n items the way Pickler._batch_appends does.
func (e *pickler) list(n int, item func(int)) {
	e.b = append(e.b, opEmptyList)
	e.memoize()
	for start := 0; ; start += pickleBatch {
		k := min(n-start, pickleBatch)
		switch {
		case k > 1:
			e.b = append(e.b, opMark)
			for i := start; i < start+k; i++ {
				item(i)
			}
			e.b = append(e.b, opAppends)
		case k == 1:
			item(start)
			e.b = append(e.b, opAppend)
		}
		if k < pickleBatch {
			return
		}
	}
}

func (e *pickler) str(s string) {
	e.b = append(e.b, opBinUnicode)
	e.b = binary.LittleEndian.AppendUint32(e.b, uint32(len(s)))
	e.b = append(e.b, s...)
	e.memoize()
}

// int follows Pickler.save_long for protocol 2.
func (e *pickler) int(v int) {
	switch {
	case v >= 0 && v <= 0xff:
		e.b = append(e.b, opBinInt1, byte(v))
	case v >= 0 && v <= 0xffff:
		e.b = append(e.b, opBinInt2)
		e.b = binary.LittleEndian.AppendUint16(e.b, uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		e.b = append(e.b, opBinInt)
		e.b = binary.LittleEndian.AppendUint32(e.b, uint32(int32(v)))
	default:
		enc := encodeLong(int64(v))
		e.b = append(e.b, opLong1, byte(len(enc)))
		e.b = append(e.b, enc...)
	}
}

// encodeLong is pickle's encode_long: two's complement, little endian, in
// the fewest bytes that keep the sign.
func encodeLong(v int64) []byte {
	n := (big.NewInt(v).BitLen() >> 3) + 1
	out := make([]byte, n)
	u := uint64(v)
	for i := range out {
		if i < 8 {
			out[i] = byte(u >> (8 * i))
		} else if v < 0 {
			out[i] = 0xff // sign extension past int64
		}
	}
	// Python trims a redundant sign byte: 0xff then a byte with the top bit
	// set, for negatives at a byte boundary.
	if v < 0 && n > 1 && out[n-1] == 0xff && out[n-2]&0x80 != 0 {
		out = out[:n-1]
	}
	return out
}
